/**
 * Finding and loading the tokenizer of a model directory, and telling the model family from it
 * (the families, each with its own detector, come as a parameter: see family-facts.ts).
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { ChatGLMError } from '../errors.js';
import { ChatGLMTokenizer } from './chatglm.js';
import { SentencePieceTokenizer } from './sentencepiece.js';
import { TikTokenTokenizer, looksLikeTikToken, parseTikTokenRanks } from './tiktoken.js';
import type { Tokenizer } from './types.js';
import { familyFromConfig, familyFromFiles, type FamilyFacts, type ModelDirFiles } from './family-facts.js';

async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** config.json as an object; {} when it is absent or broken (the model loader reports that). */
async function readConfigLoosely(dir: string): Promise<Record<string, unknown>> {
  const text = await readIfExists(path.join(dir, 'config.json'));
  if (text === undefined) return {};
  try {
    const j: unknown = JSON.parse(text);
    return typeof j === 'object' && j !== null && !Array.isArray(j) ? (j as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/** The files of a model directory the families' detectors look at. */
async function modelDirFiles(dir: string, config: Record<string, unknown>, tokenizerModel?: Uint8Array): Promise<ModelDirFiles> {
  const files: ModelDirFiles = { config, tiktoken: false };
  const tokenizerConfig = await readIfExists(path.join(dir, 'tokenizer_config.json'));
  if (tokenizerConfig !== undefined) files.tokenizerConfig = tokenizerConfig;
  const tokenizationPy = await readIfExists(path.join(dir, 'tokenization_chatglm.py'));
  if (tokenizationPy !== undefined) files.tokenizationPy = tokenizationPy;
  const model = tokenizerModel ?? (await readFile(path.join(dir, 'tokenizer.model')).catch(() => undefined));
  files.tiktoken = model !== undefined && looksLikeTikToken(model);
  return files;
}

/**
 * The one place that decides a model directory's family (the model loader and the GGUF converter
 * both ask here, so they can never disagree): what config.json says, else what the tokenizer files
 * say, each family judging by its own detector.
 */
export async function detectModelFamily<F extends FamilyFacts>(dir: string, config: Record<string, unknown>, families: readonly F[]): Promise<F> {
  // A telling config.json decides without reading the tokenizer files.
  return familyFromConfig(families, config) ?? familyFromFiles(families, await modelDirFiles(dir, config));
}

async function readTokenizerFile(file: string, missingHint: string): Promise<Uint8Array> {
  try {
    const st = await stat(file);
    if (st.isDirectory()) {
      throw new ChatGLMError('BAD_ARGUMENT', `${file} is a directory: pass the tokenizer.model file inside it (or use --model DIR)`, { file });
    }
    return await readFile(file);
  } catch (err) {
    if (err instanceof ChatGLMError) throw err;
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new ChatGLMError('FILE_NOT_FOUND', missingHint, { file });
    }
    throw new ChatGLMError('FILE_NOT_FOUND', `cannot read ${file}: ${(err as Error).message}`, { file, cause: err });
  }
}

/** What a tokenizer file is, told by its content. */
export type TokenizerFileKind = 'sentencepiece' | 'tiktoken';

/**
 * Loads a tokenizer file (SentencePiece protobuf or tiktoken ranks, told apart by content).
 * `family` picks the special tokens (and must use the vocabulary kind the file is); without it the
 * plain tokenizer is returned (exactly the library's encode/decode, no extra ids).
 */
export async function loadTokenizerFile(
  file: string,
  family?: FamilyFacts,
): Promise<{ tokenizer: Tokenizer; kind: TokenizerFileKind }> {
  const data = await readTokenizerFile(file, `tokenizer file not found: ${file} (check the path)`);
  return fromData(data, file, family);
}

function fromData(data: Uint8Array, file: string, family?: FamilyFacts): { tokenizer: Tokenizer; kind: TokenizerFileKind } {
  const kind: TokenizerFileKind = looksLikeTikToken(data) ? 'tiktoken' : 'sentencepiece';
  if (family !== undefined && family.vocabulary !== kind) {
    throw new ChatGLMError('MODEL_MISMATCH', `${file} is a ${kind} tokenizer, but the model is ${family.displayName}, which uses a ${family.vocabulary} one: pass the model's own tokenizer.model`, { file });
  }
  if (kind === 'tiktoken') {
    const text = Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8');
    const tiktoken = family?.tiktoken;
    return { tokenizer: new TikTokenTokenizer(parseTikTokenRanks(text, file), { file, specials: tiktoken?.specials, pattern: tiktoken?.pattern }), kind };
  }
  const sp = SentencePieceTokenizer.fromBytes(data, file);
  return { tokenizer: family ? new ChatGLMTokenizer(sp, family) : sp, kind };
}

/**
 * The tokenizer of a Hugging Face model directory and the family it implies: the families whose
 * vocabulary kind the file is (a tiktoken rank file or a SentencePiece model) judge the directory.
 * `override` replaces dir/tokenizer.model (--tokenizer FILE).
 */
export async function loadTokenizerForModel<F extends FamilyFacts>(
  dir: string,
  families: readonly F[],
  override?: string,
): Promise<{ tokenizer: Tokenizer; family: F }> {
  const file = override ?? path.join(dir, 'tokenizer.model');
  const data = await readTokenizerFile(
    file,
    override !== undefined ? `tokenizer file not found: ${file} (check the --tokenizer path)` : `tokenizer.model not found in ${dir}: pass --tokenizer FILE`,
  );
  const kind: TokenizerFileKind = looksLikeTikToken(data) ? 'tiktoken' : 'sentencepiece';
  const sameKind = families.filter((f) => f.vocabulary === kind);
  const family = familyFromFiles(sameKind, await modelDirFiles(dir, await readConfigLoosely(dir), data));
  return { tokenizer: fromData(data, file, family).tokenizer, family };
}

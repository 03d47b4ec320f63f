/**
 * Finding and loading the tokenizer of a model directory, and telling the model family from it.
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { ChatGLMError } from '../errors.js';
import { ChatGLMTokenizer } from './chatglm.js';
import { SentencePieceTokenizer } from './sentencepiece.js';
import { TikTokenTokenizer, looksLikeTikToken, parseTikTokenRanks } from './tiktoken.js';
import type { ModelFamily, Tokenizer } from './types.js';

async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * ChatGLM3 vs ChatGLM2 for a SentencePiece model directory: ChatGLM3's tokenization_chatglm.py
 * and tokenizer_config.json mention its role tokens or its name; its config.json's
 * _name_or_path names it.
 */
export async function detectSentencePieceFamily(dir: string): Promise<'chatglm2' | 'chatglm3'> {
  for (const name of ['tokenization_chatglm.py', 'tokenizer_config.json']) {
    const text = await readIfExists(path.join(dir, name));
    if (text !== undefined && (text.includes('<|user|>') || /chatglm3/i.test(text))) return 'chatglm3';
  }
  const config = await readIfExists(path.join(dir, 'config.json'));
  if (config !== undefined) {
    try {
      const nameOrPath: unknown = (JSON.parse(config) as Record<string, unknown>)['_name_or_path'];
      if (typeof nameOrPath === 'string' && /chatglm3/i.test(nameOrPath)) return 'chatglm3';
    } catch {
      // A broken config.json is reported by the model loader; here it just is not evidence.
    }
  }
  return 'chatglm2';
}

/** What config.json alone says about the family (GLM-4's vocabulary size, a telling name), if anything. */
export function familyFromConfig(config: Record<string, unknown>): ModelFamily | undefined {
  if (config['padded_vocab_size'] === 151552) return 'glm4';
  const name = String(config['_name_or_path'] ?? '').toLowerCase();
  if (name.includes('glm-4') || name.includes('glm4')) return 'glm4';
  if (name.includes('chatglm2') || name.includes('codegeex2')) return 'chatglm2';
  return undefined;
}

/**
 * The one place that decides a model directory's family (the model loader and the GGUF converter
 * both ask here, so they can never disagree). GLM-4 shows in its config (vocabulary size, name) or
 * its tiktoken tokenizer.model; ChatGLM2 and ChatGLM3 share config shapes and the SentencePiece
 * model, so the config name or the tokenizer files decide (detectSentencePieceFamily).
 */
export async function detectModelFamily(dir: string, config: Record<string, unknown>): Promise<ModelFamily> {
  const fromConfig = familyFromConfig(config);
  if (fromConfig !== undefined) return fromConfig;
  const tokenizerConfig = await readIfExists(path.join(dir, 'tokenizer_config.json'));
  if (tokenizerConfig?.includes('<|endoftext|>')) return 'glm4';
  const tokenizerModel = await readFile(path.join(dir, 'tokenizer.model')).catch(() => undefined);
  if (tokenizerModel !== undefined && looksLikeTikToken(tokenizerModel)) return 'glm4';
  return detectSentencePieceFamily(dir);
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

/** Family a tokenizer file implies on its own: 'glm4' for tiktoken, undefined for SentencePiece. */
export type TokenizerFileKind = 'sentencepiece' | 'tiktoken';

/**
 * Loads a tokenizer file (SentencePiece protobuf or tiktoken ranks, told apart by content).
 * `family` picks the special tokens for a SentencePiece file; without it the plain
 * SentencePiece tokenizer is returned (exactly the library's encode/decode, no extra ids).
 */
export async function loadTokenizerFile(
  file: string,
  family?: ModelFamily,
): Promise<{ tokenizer: Tokenizer; kind: TokenizerFileKind }> {
  const data = await readTokenizerFile(file, `tokenizer file not found: ${file} (check the path)`);
  return fromData(data, file, family);
}

function fromData(data: Uint8Array, file: string, family?: ModelFamily): { tokenizer: Tokenizer; kind: TokenizerFileKind } {
  if (looksLikeTikToken(data)) {
    if (family !== undefined && family !== 'glm4') {
      throw new ChatGLMError('MODEL_MISMATCH', `${file} is a tiktoken (GLM-4) tokenizer, but the model is ${family}: pass the model's own tokenizer.model`, { file });
    }
    const text = Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8');
    return { tokenizer: new TikTokenTokenizer(parseTikTokenRanks(text, file), { file }), kind: 'tiktoken' };
  }
  if (family === 'glm4') {
    throw new ChatGLMError('MODEL_MISMATCH', `${file} is a SentencePiece tokenizer, but the model is GLM-4 (which uses a tiktoken rank file)`, { file });
  }
  const sp = SentencePieceTokenizer.fromBytes(data, file);
  return { tokenizer: family ? new ChatGLMTokenizer(sp, family) : sp, kind: 'sentencepiece' };
}

/**
 * The tokenizer of a Hugging Face model directory and the chat family it implies: a tiktoken
 * tokenizer.model means GLM-4; a SentencePiece one means ChatGLM3 or ChatGLM2 (see
 * detectSentencePieceFamily). `override` replaces dir/tokenizer.model (--tokenizer FILE).
 */
export async function loadTokenizerForModel(
  dir: string,
  override?: string,
): Promise<{ tokenizer: Tokenizer; family: ModelFamily }> {
  const file = override ?? path.join(dir, 'tokenizer.model');
  const data = await readTokenizerFile(
    file,
    override !== undefined ? `tokenizer file not found: ${file} (check the --tokenizer path)` : `tokenizer.model not found in ${dir}: pass --tokenizer FILE`,
  );
  if (looksLikeTikToken(data)) {
    return { tokenizer: fromData(data, file, 'glm4').tokenizer, family: 'glm4' };
  }
  const family = await detectSentencePieceFamily(dir);
  return { tokenizer: fromData(data, file, family).tokenizer, family };
}

/**
 * A tokenizer rebuilt from a GGUF file's own vocabulary (tokenizer.ggml.* metadata), so a .gguf
 * model needs no separate tokenizer.model. Takes the plain metadata object (the formats layer
 * reads it), so this module does not depend on formats.
 *
 * Two layouts, as written by our converter (src/convert/gguf-convert.ts) and llama.cpp's
 * convert_hf_to_gguf.py:
 *  - "llama" (ChatGLM2/3): the SentencePiece pieces with their scores and types (GGUF's token
 *    types use SentencePiece's numbering), then ChatGLM's specials as CONTROL tokens, then
 *    `[PADn]` UNUSED rows up to padded_vocab_size. llama.cpp renames pieces 1/2 to <bos>/<eos>.
 *  - "gpt2" (GLM-4): the tiktoken ranks in rank order, written in GPT-2's printable byte
 *    alphabet, then the specials (CONTROL), then `[PADn]` rows. The merges are derived from the
 *    ranks, so tiktoken's rank-ordered merging reproduces them and they are not needed here.
 */
import { ChatGLMError } from '../errors.js';
import { ChatGLMTokenizer } from './chatglm.js';
import { familyNamed, type FamilyFacts } from './family-facts.js';
import { PieceType, type PieceTypeValue, type SentencePieceEntry } from './sentencepiece-model.js';
import { SentencePieceTokenizer } from './sentencepiece.js';
import { TikTokenTokenizer } from './tiktoken.js';
import type { Tokenizer } from './types.js';

/** The tokenizer.ggml.* fields this needs (a structural subset of formats' GgufTokenizerInfo). */
export interface GgufVocabulary {
  /** tokenizer.ggml.model */
  model: string;
  /** tokenizer.ggml.pre */
  pre?: string;
  tokens: readonly string[];
  /** A typed array as read from the file (a Float32Array), or any list of numbers. */
  scores?: ArrayLike<number>;
  /** SentencePiece numbering: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte. */
  tokenTypes?: ArrayLike<number>;
  addSpacePrefix?: boolean;
  removeExtraWhitespaces?: boolean;
}

export interface GgufTokenizerOptions<F extends FamilyFacts = FamilyFacts> {
  /** The .gguf path, for messages. */
  file: string;
  /** The families the vocabulary may belong to; a SentencePiece one is told by its run of specials. */
  families: readonly F[];
  /** Name of the family to use instead of the one the vocabulary shows (--family / the family option). */
  family?: string;
}

function unsupported(file: string, why: string): ChatGLMError {
  return new ChatGLMError('UNSUPPORTED', `${file}: ${why}; pass --tokenizer FILE (the model's tokenizer.model)`, { file });
}

/**
 * Builds the tokenizer a GGUF vocabulary describes, and the family it shows. Throws ChatGLMError
 * (pointing at --tokenizer) for a file without a vocabulary or with one we cannot reproduce.
 */
export function tokenizerFromGguf<F extends FamilyFacts>(vocab: GgufVocabulary | undefined, options: GgufTokenizerOptions<F>): { tokenizer: Tokenizer; family: F } {
  const { file, families } = options;
  if (vocab === undefined) throw unsupported(file, 'the file carries no vocabulary (no tokenizer.ggml.model / tokenizer.ggml.tokens)');
  const kind = vocab.model === 'llama' ? 'sentencepiece' : vocab.model === 'gpt2' ? 'tiktoken' : undefined;
  if (kind === undefined) {
    throw unsupported(file, `tokenizer.ggml.model ${JSON.stringify(vocab.model)} is not a ChatGLM vocabulary ("llama" for SentencePiece, "gpt2" for byte-level BPE)`);
  }
  const asked = options.family !== undefined ? familyNamed(families, options.family) : undefined;
  if (asked !== undefined && asked.vocabulary !== kind) {
    const what = kind === 'sentencepiece' ? 'SentencePiece' : 'byte-level BPE';
    throw new ChatGLMError('MODEL_MISMATCH', `${file}: the file's vocabulary is ${what}, but the family asked for is ${asked.displayName}`, { file });
  }
  const sameKind = families.filter((f) => f.vocabulary === kind);
  if (kind === 'sentencepiece') return sentencePieceFromGguf(vocab, file, sameKind, asked);
  const family = asked ?? sameKind[sameKind.length - 1];
  if (family === undefined) throw unsupported(file, 'no known family uses a byte-level BPE vocabulary');
  return { tokenizer: tiktokenFromGguf(vocab, file, family), family };
}

function sameRun(tokens: readonly string[], types: ArrayLike<number>, at: number, names: readonly string[]): boolean {
  return names.length > 0 && names.every((n, i) => tokens[at + i] === n && types[at + i] === PieceType.CONTROL);
}

/**
 * Where the SentencePiece model ends and whose specials follow it: the first position where some
 * family's specials appear as a run of control tokens, the family with the longest such run.
 */
function findSpecials<F extends FamilyFacts>(tokens: readonly string[], types: ArrayLike<number>, families: readonly F[]): { at: number; family: F } | undefined {
  const firsts = new Set(families.map((f) => f.sentencePieceSpecials?.[0]));
  for (let i = 0; i < tokens.length; i++) {
    if (!firsts.has(tokens[i])) continue;
    let best: F | undefined;
    for (const f of families) {
      const names = f.sentencePieceSpecials ?? [];
      if (sameRun(tokens, types, i, names) && names.length > (best?.sentencePieceSpecials?.length ?? 0)) best = f;
    }
    if (best !== undefined) return { at: i, family: best };
  }
  return undefined;
}

function sentencePieceFromGguf<F extends FamilyFacts>(vocab: GgufVocabulary, file: string, families: readonly F[], asked: F | undefined): { tokenizer: Tokenizer; family: F } {
  const { tokens, scores, tokenTypes: types } = vocab;
  if (scores === undefined || types === undefined) {
    throw unsupported(file, 'the SentencePiece vocabulary lacks tokenizer.ggml.scores or tokenizer.ggml.token_type');
  }
  const found = findSpecials(tokens, types, families);
  if (found === undefined) {
    const lists = families.map((f) => f.sentencePieceSpecials ?? []).filter((l) => l.length > 0);
    const shortest = lists.reduce((a, b) => (b.length < a.length ? b : a), lists[0] ?? []);
    throw unsupported(file, `the SentencePiece vocabulary does not contain ChatGLM's special tokens (${shortest.join(' ')}) as control tokens`);
  }
  const spSize = found.at;
  const pieces: SentencePieceEntry[] = [];
  for (let i = 0; i < spSize; i++) {
    let piece = tokens[i]!;
    const type = types[i]! as PieceTypeValue;
    if (type < PieceType.NORMAL || type > PieceType.BYTE) throw unsupported(file, `token ${i} has token type ${type}, which is not a SentencePiece piece type`);
    // llama.cpp's converter writes ChatGLM's <s>/</s> as <bos>/<eos>; the model file calls them <s>/</s>.
    if (type === PieceType.CONTROL && (i === 1 || i === 2) && piece === (i === 1 ? '<bos>' : '<eos>')) piece = i === 1 ? '<s>' : '</s>';
    pieces.push({ piece, score: scores[i]!, type });
  }
  let sp: SentencePieceTokenizer;
  try {
    sp = SentencePieceTokenizer.fromPieces(pieces, {
      addDummyPrefix: vocab.addSpacePrefix ?? true,
      removeExtraWhitespaces: vocab.removeExtraWhitespaces ?? false,
      file,
    });
  } catch (err) {
    if (err instanceof ChatGLMError) throw unsupported(file, `its vocabulary is not a usable SentencePiece model (${err.message})`);
    throw err;
  }
  const chosen = asked ?? found.family;
  return { tokenizer: new ChatGLMTokenizer(sp, chosen), family: chosen };
}

/** GPT-2's printable character -> byte (the inverse of its bytes_to_unicode table). */
function unicodeToBytes(): Map<number, number> {
  const m = new Map<number, number>();
  let n = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    m.set(printable ? b : 256 + n++, b);
  }
  return m;
}

function tiktokenFromGguf(vocab: GgufVocabulary, file: string, family: FamilyFacts): TikTokenTokenizer {
  const pres = family.tiktoken?.ggufPre ?? [];
  if (vocab.pre !== undefined && !pres.includes(vocab.pre)) {
    const known = pres.length > 0 ? `${family.displayName}'s (${pres.map((p) => JSON.stringify(p)).join(', ')})` : `one ${family.displayName} declares`;
    throw unsupported(file, `the byte-level BPE vocabulary uses pre-tokenizer ${JSON.stringify(vocab.pre)}, not ${known}`);
  }
  const { tokens } = vocab;
  const types = vocab.tokenTypes ?? tokens.map(() => PieceType.NORMAL);
  const dec = unicodeToBytes();
  const ranks: { bytes: Uint8Array; rank: number }[] = [];
  let lastNormal = -1;
  for (let i = 0; i < tokens.length; i++) {
    if (types[i] !== PieceType.NORMAL) continue;
    const s = tokens[i]!;
    const bytes = new Uint8Array(s.length);
    let k = 0;
    for (const ch of s) {
      const b = dec.get(ch.codePointAt(0)!);
      if (b === undefined) throw unsupported(file, `token ${i} (${JSON.stringify(s)}) is not written in GPT-2's byte alphabet`);
      bytes[k++] = b;
    }
    ranks.push({ bytes: bytes.subarray(0, k), rank: i });
    lastNormal = i;
  }
  if (ranks.length === 0) throw unsupported(file, 'the byte-level BPE vocabulary has no ordinary tokens');
  // Specials: the run of control / user-defined tokens right after the ranks (151329.. in GLM-4).
  const specials: string[] = [];
  for (let i = lastNormal + 1; i < tokens.length && (types[i] === PieceType.CONTROL || types[i] === PieceType.USER_DEFINED); i++) {
    specials.push(tokens[i]!);
  }
  try {
    return new TikTokenTokenizer(ranks, { specials, specialStart: lastNormal + 1, pattern: family.tiktoken?.pattern, file });
  } catch (err) {
    if (err instanceof ChatGLMError) throw unsupported(file, `its vocabulary is not a usable BPE rank table (${err.message})`);
    throw err;
  }
}

/**
 * Small tokenizer fixtures the tests build themselves: a hand-designed SentencePiece BPE model
 * written with our own protobuf writer, and a small tiktoken rank file.
 */
import {
  ModelType,
  PieceType,
  defaultNormalizerSpec,
  defaultTrainerSpec,
  writeModelProto,
  type ModelProtoFields,
  type SentencePieceEntry,
} from '../../src/tokenizer/index.js';

export const BYTE_BASE = 3;
export const byteId = (b: number): number => BYTE_BASE + b;

/**
 * Ids: 0 <unk>, 1 <s>, 2 </s>, 3..258 <0x00>..<0xFF>, then NORMAL_PIECES in order, then the
 * user-defined <|u|>. Scores are chosen so every merge is easy to follow by hand:
 *  - "ab" and "bc" tie at -1 (the leftmost pair must win), "cd" (-0.5) beats both;
 *  - "▁a" (-3) only merges when nothing better is left; "你好" (-4); no "abc" piece.
 */
export const NORMAL_PIECES: [string, number][] = [
  ['\u2581', -5],
  ['a', -6],
  ['b', -6],
  ['c', -6],
  ['d', -6],
  ['你', -6],
  ['好', -6],
  ['ab', -1],
  ['bc', -1],
  ['cd', -0.5],
  ['\u2581a', -3],
  ['你好', -4],
  ['\u2581\u2581', -2],
];

/** <unk> <s> </s> and the 256 byte-fallback pieces <0x00>..<0xFF>: ids 0..258 of every small model. */
export function controlAndBytePieces(): SentencePieceEntry[] {
  const pieces: SentencePieceEntry[] = [
    { piece: '<unk>', score: 0, type: PieceType.UNKNOWN },
    { piece: '<s>', score: 0, type: PieceType.CONTROL },
    { piece: '</s>', score: 0, type: PieceType.CONTROL },
  ];
  for (let b = 0; b < 256; b++) {
    pieces.push({ piece: `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`, score: 0, type: PieceType.BYTE });
  }
  return pieces;
}

export function smallPieces(extra: SentencePieceEntry[] = []): SentencePieceEntry[] {
  const pieces = controlAndBytePieces();
  for (const [piece, score] of NORMAL_PIECES) pieces.push({ piece, score, type: PieceType.NORMAL });
  pieces.push({ piece: '<|u|>', score: 0, type: PieceType.USER_DEFINED });
  pieces.push(...extra);
  return pieces;
}

/** Id of a piece of smallPieces(). */
export function pid(piece: string): number {
  const i = smallPieces().findIndex((p) => p.piece === piece);
  if (i < 0) throw new Error(`no piece ${piece}`);
  return i;
}

export function smallModelProto(extra: SentencePieceEntry[] = [], opts: { byteFallback?: boolean; removeExtra?: boolean } = {}): ModelProtoFields {
  const trainerSpec = defaultTrainerSpec();
  trainerSpec.modelType = ModelType.BPE;
  trainerSpec.byteFallback = opts.byteFallback ?? true;
  const normalizerSpec = defaultNormalizerSpec();
  normalizerSpec.name = 'identity';
  normalizerSpec.removeExtraWhitespaces = opts.removeExtra ?? false;
  let pieces = smallPieces(extra);
  if (!trainerSpec.byteFallback) pieces = pieces.filter((p) => p.type !== PieceType.BYTE);
  trainerSpec.vocabSize = pieces.length;
  return { pieces, trainerSpec, normalizerSpec };
}

/** The small model as tokenizer.model bytes, written by our own protobuf writer. */
export function smallModelBytes(extra: SentencePieceEntry[] = [], opts: { byteFallback?: boolean; removeExtra?: boolean } = {}): Uint8Array {
  return writeModelProto(smallModelProto(extra, opts));
}

/**
 * Tiktoken ranks: the 256 single bytes at rank = byte value, then merges:
 * 256 "he", 257 "ll", 258 "llo", 259 "hello", 260 "bc", 261 "ab", 262 "aa", 263 " w", 264 "or",
 * 265 "ld", 266 " wor", 267 " world", 268 "你好" (6 bytes).
 */
export const TIKTOKEN_MERGES = ['he', 'll', 'llo', 'hello', 'bc', 'ab', 'aa', ' w', 'or', 'ld', ' wor', ' world', '你好'];

export function smallRankFile(): string {
  const lines: string[] = [];
  for (let b = 0; b < 256; b++) lines.push(`${Buffer.from([b]).toString('base64')} ${b}`);
  TIKTOKEN_MERGES.forEach((m, i) => lines.push(`${Buffer.from(m, 'utf8').toString('base64')} ${256 + i}`));
  return lines.join('\n') + '\n';
}

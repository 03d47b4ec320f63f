/**
 * The bytes each token id stands for, as a grammar matcher needs them: SentencePiece pieces with
 * U+2581 as a space and `<0xNN>` byte-fallback pieces as that one byte; tiktoken ranks as their raw
 * bytes (which may be part of a UTF-8 character). Specials, control and unknown pieces have no
 * bytes (null): a grammar never allows them, only a stop id where the grammar may end.
 */
import { ChatGLMTokenizer } from './chatglm.js';
import { PieceType } from './sentencepiece-model.js';
import { SentencePieceTokenizer } from './sentencepiece.js';
import { TikTokenTokenizer } from './tiktoken.js';
import type { Tokenizer } from './types.js';

const utf8 = new TextEncoder();

/** Whether computeTokenBytes knows this tokenizer (the project's SentencePiece and tiktoken classes). */
export function hasTokenBytes(tokenizer: Tokenizer): boolean {
  return tokenizer instanceof TikTokenTokenizer || tokenizer instanceof ChatGLMTokenizer || tokenizer instanceof SentencePieceTokenizer;
}

/** Token bytes by id (length = vocabSize). Computing it walks the whole vocabulary: do it once per tokenizer. */
export function computeTokenBytes(tokenizer: Tokenizer): (Uint8Array | null)[] {
  if (tokenizer instanceof TikTokenTokenizer) {
    const out = new Array<Uint8Array | null>(tokenizer.vocabSize).fill(null);
    for (const { bytes, rank } of tokenizer.listRanks()) out[rank] = bytes;
    return out;
  }
  const sp = tokenizer instanceof ChatGLMTokenizer ? tokenizer.sp : tokenizer instanceof SentencePieceTokenizer ? tokenizer : undefined;
  if (sp === undefined) throw new TypeError('computeTokenBytes: unsupported tokenizer');
  const out = new Array<Uint8Array | null>(tokenizer.vocabSize).fill(null);
  for (let id = 0; id < sp.vocabSize; id++) {
    const info = sp.decodeInfo(id);
    if (info.type === PieceType.BYTE) out[id] = Uint8Array.of(info.byte);
    else if (info.type === PieceType.NORMAL || info.type === PieceType.USER_DEFINED) out[id] = utf8.encode(info.surface);
  }
  return out;
}

/** UTF-8 helpers with SentencePiece's rules for malformed bytes (one U+FFFD per bad byte). */

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Lone surrogates become U+FFFD, which is what the C++ library sees after UTF-8 encoding. */
export function toWellFormed(s: string): string {
  return /[\uD800-\uDFFF]/.test(s) ? s.replace(LONE_SURROGATE, '\uFFFD') : s;
}

/**
 * Decodes one character at bytes[pos..end) like SentencePiece's DecodeUTF8. Returns the code
 * point and length, or -1 with length 1 when malformed, or -2 when the bytes so far are a valid
 * prefix of a longer character that has not fully arrived (only possible when `partial`).
 */
export function decodeUtf8Char(bytes: ArrayLike<number>, pos: number, end: number, partial: boolean): [number, number] {
  const b0 = bytes[pos]!;
  if (b0 < 0x80) return [b0, 1];
  let need: number;
  let cp: number;
  let min: number;
  if ((b0 & 0xe0) === 0xc0) {
    need = 2;
    cp = b0 & 0x1f;
    min = 0x80;
  } else if ((b0 & 0xf0) === 0xe0) {
    need = 3;
    cp = b0 & 0x0f;
    min = 0x800;
  } else if ((b0 & 0xf8) === 0xf0) {
    need = 4;
    cp = b0 & 0x07;
    min = 0x10000;
  } else return [-1, 1];
  const avail = end - pos;
  for (let k = 1; k < need; k++) {
    if (k >= avail) return partial ? [-2, 0] : [-1, 1];
    const b = bytes[pos + k]!;
    if ((b & 0xc0) !== 0x80) return [-1, 1];
    cp = (cp << 6) | (b & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000)) return [-1, 1];
  return [cp, need];
}

/** Decodes bytes; each malformed byte becomes U+FFFD (SentencePiece's ProcessBytePieces). */
export function decodeUtf8Lenient(bytes: ArrayLike<number>, start = 0, end = bytes.length): string {
  let out = '';
  let pos = start;
  while (pos < end) {
    const [cp, n] = decodeUtf8Char(bytes, pos, end, false);
    out += cp < 0 ? '\uFFFD' : String.fromCodePoint(cp);
    pos += n;
  }
  return out;
}

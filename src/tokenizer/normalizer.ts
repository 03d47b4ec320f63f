/**
 * SentencePiece's normalizer (normalizer.cc): precompiled character map (a Darts-clone
 * double-array trie over UTF-8 bytes), removal of extra whitespace, whitespace escaped as
 * U+2581 and the dummy prefix. Works on UTF-8 bytes, exactly like the C++ code, because the
 * trie and the whitespace rules are defined on bytes.
 */
import { badFormat } from '../errors.js';
import type { NormalizerSpecFields } from './sentencepiece-model.js';
import { toWellFormed } from './utf8.js';

export const SPACE_SYMBOL = '\u2581';
const SPACE_BYTES = [0xe2, 0x96, 0x81];
const MAX_REPLACEMENT_BYTES = 256;

/** Darts-clone DoubleArray::commonPrefixSearch, longest match only. */
class CharsMap {
  private readonly units: Uint32Array;
  private readonly normalized: Uint8Array;

  constructor(blob: Uint8Array, file: string) {
    if (blob.length <= 4) throw badFormat(file, 'precompiled_charsmap is broken (shorter than 5 bytes): the tokenizer.model is corrupt (download it again)');
    const dv = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
    const trieSize = dv.getUint32(0, true);
    if (trieSize >= blob.length) throw badFormat(file, `precompiled_charsmap trie size ${trieSize} exceeds the blob: the tokenizer.model is corrupt (download it again)`);
    // Copy so the Uint32Array is aligned regardless of where the blob sits in the file.
    const trieBytes = new Uint8Array(trieSize);
    trieBytes.set(blob.subarray(4, 4 + trieSize));
    this.units = new Uint32Array(trieBytes.buffer, 0, trieSize >>> 2);
    this.normalized = blob.subarray(4 + trieSize);
    // Replacements are NUL-terminated strings; real rules (NFKC) expand a character to at most a
    // few dozen bytes. A longer one would let each input character grow the text without bound.
    let runStart = 0;
    for (let i = 0; i <= this.normalized.length; i++) {
      if (i === this.normalized.length || this.normalized[i] === 0) {
        if (i - runStart > MAX_REPLACEMENT_BYTES) {
          throw badFormat(file, `precompiled_charsmap has a ${i - runStart}-byte replacement, more than ${MAX_REPLACEMENT_BYTES}: the tokenizer.model is corrupt`);
        }
        runStart = i + 1;
      }
    }
  }

  /**
   * Longest rule matching a prefix of bytes[pos..end): returns [matchedLength, replacementStart,
   * replacementEnd] into `normalized`, or null.
   */
  match(bytes: Uint8Array, pos: number, end: number): [number, number, number] | null {
    const u = this.units;
    if (u.length === 0) return null;
    let unit = u[0]!;
    let nodePos = offsetOf(unit);
    let bestLen = 0;
    let bestValue = 0;
    for (let i = pos; i < end; i++) {
      const c = bytes[i]!;
      nodePos ^= c;
      if (nodePos >= u.length) break;
      unit = u[nodePos]!;
      if ((unit & 0x800000ff) >>> 0 !== c) break;
      nodePos ^= offsetOf(unit);
      if ((unit >>> 8) & 1) {
        if (nodePos >= u.length) break;
        bestLen = i + 1 - pos;
        bestValue = u[nodePos]! & 0x7fffffff;
      }
    }
    if (bestLen === 0) return null;
    let e = bestValue;
    const n = this.normalized;
    while (e < n.length && n[e] !== 0) e++;
    return [bestLen, bestValue, e];
  }

  replacement(start: number, end: number): Uint8Array {
    return this.normalized.subarray(start, end);
  }
}

function offsetOf(unit: number): number {
  return (unit >>> 10) << ((unit & (1 << 9)) >>> 6);
}

/** Length of the UTF-8 sequence starting with `lead` (SentencePiece's OneCharLen table). */
function utf8CharLen(lead: number): number {
  return lead < 0xc0 ? 1 : lead < 0xe0 ? 2 : lead < 0xf0 ? 3 : lead < 0xf8 ? 4 : 1;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { ignoreBOM: true });

class ByteBuilder {
  buf = new Uint8Array(256);
  len = 0;
  push(b: number): void {
    if (this.len === this.buf.length) this.grow(1);
    this.buf[this.len++] = b;
  }
  grow(n: number): void {
    const next = new Uint8Array(Math.max(this.buf.length * 2, this.len + n));
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
  }
  endsWith(bytes: readonly number[]): boolean {
    if (this.len < bytes.length) return false;
    for (let i = 0; i < bytes.length; i++) if (this.buf[this.len - bytes.length + i] !== bytes[i]) return false;
    return true;
  }
}

export class Normalizer {
  private readonly charsMap: CharsMap | null;
  /** User-defined pieces as UTF-8, longest first; they pass through normalization untouched. */
  private readonly userDefined: Uint8Array[];
  private readonly fast: boolean;

  constructor(
    private readonly spec: NormalizerSpecFields,
    private readonly treatWhitespaceAsSuffix: boolean,
    userDefinedPieces: readonly string[],
    file: string,
  ) {
    this.charsMap = spec.precompiledCharsmap.length > 0 ? new CharsMap(spec.precompiledCharsmap, file) : null;
    this.userDefined = userDefinedPieces.map((p) => encoder.encode(p)).sort((a, b) => b.length - a.length);
    // Without a character map, normalization is per character; user-defined pieces only change
    // the outcome when they contain a space (they are copied whole, spaces included).
    this.fast = this.charsMap === null && !userDefinedPieces.some((p) => p.includes(' '));
  }

  normalize(input: string): string {
    if (input.length === 0) return '';
    input = toWellFormed(input);
    return this.fast ? this.normalizeFast(input) : this.normalizeBytes(input);
  }

  private normalizeFast(s: string): string {
    const spec = this.spec;
    if (spec.removeExtraWhitespaces) {
      let i = 0;
      while (i < s.length && s.charCodeAt(i) === 32) i++;
      if (i === s.length) return '';
      s = s.slice(i);
      if (s.includes('  ')) s = s.replace(/ {2,}/g, ' ');
    }
    const ws = spec.escapeWhitespaces ? SPACE_SYMBOL : ' ';
    if (spec.escapeWhitespaces && s.includes(' ')) s = s.replaceAll(' ', SPACE_SYMBOL);
    const dummy = spec.addDummyPrefix;
    if (dummy && !this.treatWhitespaceAsSuffix) s = ws + s;
    if (spec.removeExtraWhitespaces) {
      let e = s.length;
      while (e > 0 && s.charCodeAt(e - 1) === ws.charCodeAt(0)) e--;
      s = s.slice(0, e);
    }
    if (dummy && this.treatWhitespaceAsSuffix) s += ws;
    return s;
  }

  /** NormalizePrefix: [bytes consumed, what they normalize to]. */
  private prefix(bytes: Uint8Array, pos: number, end: number): [number, Uint8Array] {
    for (const ud of this.userDefined) {
      if (ud.length <= end - pos) {
        let ok = true;
        for (let k = 0; k < ud.length; k++) {
          if (bytes[pos + k] !== ud[k]) {
            ok = false;
            break;
          }
        }
        if (ok) return [ud.length, bytes.subarray(pos, pos + ud.length)];
      }
    }
    if (this.charsMap) {
      const m = this.charsMap.match(bytes, pos, end);
      if (m) return [m[0], this.charsMap.replacement(m[1], m[2])];
    }
    const n = Math.min(utf8CharLen(bytes[pos]!), end - pos);
    return [n, bytes.subarray(pos, pos + n)];
  }

  private normalizeBytes(input: string): string {
    const spec = this.spec;
    const bytes = encoder.encode(input);
    const end = bytes.length;
    let pos = 0;
    if (spec.removeExtraWhitespaces) {
      while (pos < end) {
        const [n, out] = this.prefix(bytes, pos, end);
        if (!(out.length === 1 && out[0] === 32)) break;
        pos += n;
      }
    }
    if (pos === end) return '';
    const out = new ByteBuilder();
    const addWs = () => {
      if (spec.escapeWhitespaces) for (const b of SPACE_BYTES) out.push(b);
      else out.push(32);
    };
    if (!this.treatWhitespaceAsSuffix && spec.addDummyPrefix) addWs();
    let isPrevSpace = spec.removeExtraWhitespaces;
    while (pos < end) {
      const [n, sp] = this.prefix(bytes, pos, end);
      let i = 0;
      while (isPrevSpace && i < sp.length && sp[i] === 32) i++;
      if (i < sp.length) {
        for (; i < sp.length; i++) {
          const b = sp[i]!;
          if (spec.escapeWhitespaces && b === 32) for (const s of SPACE_BYTES) out.push(s);
          else out.push(b);
        }
        isPrevSpace = sp[sp.length - 1] === 32;
      }
      pos += n;
      if (!spec.removeExtraWhitespaces) isPrevSpace = false;
    }
    if (spec.removeExtraWhitespaces) {
      const ws = spec.escapeWhitespaces ? SPACE_BYTES : [32];
      while (out.endsWith(ws)) out.len -= ws.length;
    }
    if (this.treatWhitespaceAsSuffix && spec.addDummyPrefix) addWs();
    return decoder.decode(out.buf.subarray(0, out.len));
  }
}

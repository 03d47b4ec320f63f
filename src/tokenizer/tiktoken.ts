/**
 * Tiktoken-style byte-level BPE (GLM-4's tokenizer). tokenizer.model is a text file of
 * `base64(token bytes) rank` lines; text is split by the pre-tokenizer regex, each piece's
 * UTF-8 bytes are merged pairwise, always the lowest-ranked adjacent pair first (leftmost on
 * ties), exactly like tiktoken's _byte_pair_merge. Specials follow the ranks (151329.. in the
 * real file) and are never produced by encode().
 */
import { readFile } from 'node:fs/promises';
import { ChatGLMError, badFormat, notFound } from '../errors.js';
import type { StreamDecoder, Tokenizer } from './types.js';
import { toWellFormed } from './utf8.js';

// tiktoken's cl100k_base pattern (GLM-4 uses it): (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|
//  ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
// rewritten for JS: no inline (?i:) (Rust's simple case folding adds only ſ for s), and \s
// spelled out as Unicode White_Space (JS's \s adds U+FEFF and lacks U+0085).
const WS = '\\t-\\r \\x85\\xA0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F\\u3000';
export const CL100K_PATTERN = new RegExp(
  [
    "'[sS\\u017F]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD]",
    '[^\\r\\n\\p{L}\\p{N}]?\\p{L}+',
    '\\p{N}{1,3}',
    ` ?[^${WS}\\p{L}\\p{N}]+[\\r\\n]*`,
    `[${WS}]*[\\r\\n]+`,
    `[${WS}]+(?![^${WS}])`,
    `[${WS}]+`,
  ].join('|'),
  'gu',
);

export interface TikTokenOptions {
  /**
   * Special token names, ids assigned from `specialStart` (default: one past the highest rank).
   * Default none: they belong to the model family (families/glm4.ts), which the loaders pass in.
   */
  specials?: readonly string[];
  specialStart?: number;
  /** Pre-tokenizer; must have the g and u flags. Default CL100K_PATTERN. */
  pattern?: RegExp;
  file?: string;
}

const MAX_CACHE_ENTRIES = 200_000;
const latin1 = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('latin1');

export class TikTokenTokenizer implements Tokenizer {
  readonly kind = 'tiktoken' as const;
  readonly vocabSize: number;
  readonly file: string;
  readonly specialStart: number;
  readonly specialTokens: readonly string[];
  /** Token bytes as latin1 strings (one char per byte) -> rank. */
  private readonly ranks = new Map<string, number>();
  private readonly tokenBytes: (Uint8Array | undefined)[];
  private readonly specialIds = new Map<string, number>();
  private readonly pattern: RegExp;
  private readonly cache = new Map<string, number[]>();

  constructor(ranks: ReadonlyArray<{ bytes: Uint8Array; rank: number }>, options: TikTokenOptions = {}) {
    this.file = options.file ?? '<ranks>';
    let maxRank = -1;
    // Ranks index an array: bound them by the number of entries (or the declared special start),
    // so a corrupt rank near 2^32 is an error here rather than a 4-billion-slot array.
    const rankLimit = Math.max(ranks.length, options.specialStart ?? 0);
    const rankSeen = new Set<number>();
    for (const { bytes, rank } of ranks) {
      const key = latin1(bytes);
      if (!Number.isSafeInteger(rank) || rank < 0 || rank >= rankLimit) {
        throw badFormat(this.file, `token ${JSON.stringify(key)} has rank ${rank}, outside 0..${rankLimit - 1} (one rank per entry); the rank file is corrupt`);
      }
      if (rankSeen.has(rank)) throw badFormat(this.file, `rank ${rank} is given to two tokens; the rank file is corrupt`);
      rankSeen.add(rank);
      if (this.ranks.has(key)) throw badFormat(this.file, `token ${JSON.stringify(key)} appears twice`);
      this.ranks.set(key, rank);
      if (rank > maxRank) maxRank = rank;
    }
    this.specialStart = options.specialStart ?? maxRank + 1;
    this.specialTokens = options.specials ?? [];
    if (this.specialStart <= maxRank) throw badFormat(this.file, `special ids start at ${this.specialStart}, inside the ranks (max ${maxRank})`);
    this.vocabSize = this.specialStart + this.specialTokens.length;
    this.tokenBytes = new Array<Uint8Array | undefined>(this.specialStart);
    for (const { bytes, rank } of ranks) this.tokenBytes[rank] = bytes;
    this.specialTokens.forEach((name, i) => this.specialIds.set(name, this.specialStart + i));
    this.pattern = options.pattern ?? CL100K_PATTERN;
  }

  /** All ranks in rank order (for writing GGUF or other formats). Gaps are skipped. */
  listRanks(): { bytes: Uint8Array; rank: number }[] {
    const out: { bytes: Uint8Array; rank: number }[] = [];
    this.tokenBytes.forEach((bytes, rank) => {
      if (bytes) out.push({ bytes, rank });
    });
    return out;
  }

  /** The pre-tokenizer's split of `text` (exposed for tests). */
  splitPieces(text: string): string[] {
    const re = new RegExp(this.pattern.source, this.pattern.flags);
    return Array.from(toWellFormed(text).matchAll(re), (m) => m[0]);
  }

  /** Ordinary text to ids (tiktoken encode_ordinary): special names are encoded as text. */
  encode(text: string): number[] {
    const out: number[] = [];
    text = toWellFormed(text);
    const re = new RegExp(this.pattern.source, this.pattern.flags);
    for (const m of text.matchAll(re)) {
      const piece = m[0];
      if (piece.length === 0) continue;
      let ids = this.cache.get(piece);
      if (ids === undefined) {
        ids = this.encodePiece(piece);
        if (this.cache.size >= MAX_CACHE_ENTRIES) this.cache.clear();
        this.cache.set(piece, ids);
      }
      for (let i = 0; i < ids.length; i++) out.push(ids[i]!);
    }
    return out;
  }

  private encodePiece(piece: string): number[] {
    const key = Buffer.from(piece, 'utf8').toString('latin1');
    const whole = this.ranks.get(key);
    if (whole !== undefined) return [whole];
    const n = key.length;
    // Parts are identified by their start byte; next[i] is the start of the part after i (n at the
    // end), prev[i] the one before (-1 at the start). Candidate merges sit in a min-heap keyed by
    // (rank, start), which pops exactly the pair tiktoken's scan picks (lowest rank, leftmost);
    // entries made stale by a merge are skipped when popped. O(n log n) where a rescan after
    // each merge is quadratic on one long word.
    const next = new Int32Array(n);
    const prev = new Int32Array(n);
    const alive = new Uint8Array(n).fill(1);
    /** Current rank of the pair starting at part i (Infinity when unranked or at the end). */
    const pairRank = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      next[i] = i + 1;
      prev[i] = i - 1;
    }
    const rankOf = (i: number): number => {
      const j = next[i]!;
      if (j >= n) return Infinity;
      return this.ranks.get(key.slice(i, next[j] ?? n)) ?? Infinity;
    };
    const heap = new MergeHeap();
    for (let i = 0; i < n; i++) {
      pairRank[i] = rankOf(i);
      if (pairRank[i]! !== Infinity) heap.push(pairRank[i]!, i);
    }
    while (heap.size > 0) {
      const [rank, i] = heap.pop();
      if (!alive[i] || pairRank[i] !== rank) continue;
      // Merge part i with the part after it.
      const j = next[i]!;
      alive[j] = 0;
      next[i] = next[j]!;
      if (next[i]! < n) prev[next[i]!] = i;
      pairRank[i] = rankOf(i);
      if (pairRank[i]! !== Infinity) heap.push(pairRank[i]!, i);
      const p = prev[i]!;
      if (p >= 0) {
        pairRank[p] = rankOf(p);
        if (pairRank[p]! !== Infinity) heap.push(pairRank[p]!, p);
      }
    }
    const ids: number[] = [];
    for (let i = 0; i < n; i = next[i]!) {
      const r = this.ranks.get(key.slice(i, next[i]));
      if (r === undefined) {
        throw new ChatGLMError(
          'BAD_FORMAT',
          `${this.file}: byte 0x${key.charCodeAt(i).toString(16)} has no rank, so the text cannot be encoded (the rank file must contain all 256 single bytes)`,
          { file: this.file },
        );
      }
      ids.push(r);
    }
    return ids;
  }

  decode(ids: readonly number[]): string {
    const d = this.createStreamDecoder();
    let out = '';
    for (const id of ids) out += d.push(id);
    return out + d.flush();
  }

  /** Bytes of a token: rank bytes, or the UTF-8 of a special's name. */
  tokenToBytes(id: number): Uint8Array {
    if (Number.isInteger(id) && id >= 0) {
      if (id < this.specialStart) {
        const b = this.tokenBytes[id];
        if (b) return b;
      } else if (id < this.vocabSize) {
        return new TextEncoder().encode(this.specialTokens[id - this.specialStart]!);
      }
    }
    throw new ChatGLMError(
      'BAD_ARGUMENT',
      `token id ${id} is out of range for ${this.file} (ids 0..${this.vocabSize - 1}${this.listRanks().length < this.specialStart ? ', with gaps' : ''})`,
      { file: this.file },
    );
  }

  specialId(name: string): number | undefined {
    return this.specialIds.get(name);
  }

  isSpecial(id: number): boolean {
    return id >= this.specialStart && id < this.vocabSize;
  }

  createStreamDecoder(): StreamDecoder {
    const decoder = new TextDecoder('utf-8', { ignoreBOM: true });
    return {
      push: (id: number) => decoder.decode(this.tokenToBytes(id), { stream: true }),
      flush: () => decoder.decode(),
    };
  }
}

/** A binary min-heap of (rank, start) pairs, smaller start first on equal ranks. */
class MergeHeap {
  private ranks: number[] = [];
  private starts: number[] = [];

  get size(): number {
    return this.ranks.length;
  }

  private less(a: number, b: number): boolean {
    const ra = this.ranks[a]!;
    const rb = this.ranks[b]!;
    return ra < rb || (ra === rb && this.starts[a]! < this.starts[b]!);
  }

  private swap(a: number, b: number): void {
    const r = this.ranks[a]!;
    this.ranks[a] = this.ranks[b]!;
    this.ranks[b] = r;
    const s = this.starts[a]!;
    this.starts[a] = this.starts[b]!;
    this.starts[b] = s;
  }

  push(rank: number, start: number): void {
    this.ranks.push(rank);
    this.starts.push(start);
    let k = this.ranks.length - 1;
    while (k > 0) {
      const parent = (k - 1) >> 1;
      if (!this.less(k, parent)) break;
      this.swap(k, parent);
      k = parent;
    }
  }

  pop(): [number, number] {
    const top: [number, number] = [this.ranks[0]!, this.starts[0]!];
    const lastRank = this.ranks.pop()!;
    const lastStart = this.starts.pop()!;
    if (this.ranks.length > 0) {
      this.ranks[0] = lastRank;
      this.starts[0] = lastStart;
      let k = 0;
      for (;;) {
        const l = 2 * k + 1;
        const r = l + 1;
        let m = k;
        if (l < this.ranks.length && this.less(l, m)) m = l;
        if (r < this.ranks.length && this.less(r, m)) m = r;
        if (m === k) break;
        this.swap(k, m);
        k = m;
      }
    }
    return top;
  }
}

/** Parses a tiktoken rank file (`base64 rank` per line). */
export function parseTikTokenRanks(text: string, file: string): { bytes: Uint8Array; rank: number }[] {
  const out: { bytes: Uint8Array; rank: number }[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    const m = /^([A-Za-z0-9+/]*={0,2}) (\d+)$/.exec(line);
    if (!m) throw badFormat(file, `line ${i + 1} is not "base64 rank": ${JSON.stringify(line.slice(0, 60))}`);
    out.push({ bytes: new Uint8Array(Buffer.from(m[1]!, 'base64')), rank: Number(m[2]) });
  }
  if (out.length === 0) throw badFormat(file, 'the rank file is empty');
  return out;
}

/** Loads a tiktoken rank file; the family's specials and pattern come in `options`. */
export async function loadTikToken(file: string, options: Omit<TikTokenOptions, 'file'> = {}): Promise<TikTokenTokenizer> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw notFound('tiktoken rank file', file, 'check the path, or pass --tokenizer FILE');
    throw new ChatGLMError('FILE_NOT_FOUND', `cannot read ${file}: ${(err as Error).message}`, { file, cause: err });
  }
  return new TikTokenTokenizer(parseTikTokenRanks(text, file), { ...options, file });
}

/** True when the bytes look like a tiktoken rank file rather than a protobuf. */
export function looksLikeTikToken(head: Uint8Array): boolean {
  const s = Buffer.from(head.subarray(0, 256)).toString('latin1');
  const first = s.split('\n')[0] ?? '';
  return /^[A-Za-z0-9+/]+={0,2} \d+\r?$/.test(first);
}

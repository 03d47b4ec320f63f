/**
 * SentencePiece BPE merging over one stretch of normalized text, exactly as bpe_model.cc: split
 * into character symbols (user-defined pieces matched longest-first and frozen), then repeatedly
 * merge the adjacent pair whose concatenation is a piece with the highest score, ties to the
 * leftmost pair; UNUSED pieces are re-split (the library's rev_merge/resegment); unknown symbols
 * become byte pieces when byte_fallback is on.
 */
import { PieceType } from './sentencepiece-model.js';
import { MergeHeap } from './bpe-tables.js';
import type { SentencePieceVocabulary, SymbolTables } from './sentencepiece-vocab.js';

/** Below this many symbols a linear scan for the best pair beats a heap. */
const SCAN_LIMIT = 24;
const utf8 = new TextEncoder();

export class BpeMerger {
  // Scratch space reused across calls (encode is synchronous, so no sharing hazards).
  private sym = new Int32Array(64);
  private start = new Int32Array(64);
  private prev = new Int32Array(64);
  private next = new Int32Array(64);
  private frozen = new Uint8Array(64);
  private heap = new MergeHeap();
  /** UNUSED piece -> the pair of symbols that formed it, for resegment(). */
  private revMerge = new Map<number, [number, number]>();

  constructor(
    private readonly v: SentencePieceVocabulary,
    private readonly sy: SymbolTables,
  ) {}

  private grow(m: number): void {
    if (this.sym.length >= m) return;
    let cap = this.sym.length;
    while (cap < m) cap *= 2;
    this.sym = new Int32Array(cap);
    this.start = new Int32Array(cap);
    this.prev = new Int32Array(cap);
    this.next = new Int32Array(cap);
    this.frozen = new Uint8Array(cap);
  }

  /** BPE over s[from, to) (normalized text); appends output ids (byte fallback applied). */
  encodeSegment(s: string, from: number, to: number, out: number[]): void {
    this.grow(to - from + 1);
    const sym = this.sym;
    const start = this.start;
    const frozen = this.frozen;
    const bmp = this.sy.bmpSym;
    const hasUD = this.v.userDefined.size > 0;
    let m = 0;
    let pos = from;
    while (pos < to) {
      const c = s.charCodeAt(pos);
      start[m] = pos;
      frozen[m] = 0;
      if (hasUD) {
        const list = this.v.userDefined.get(c);
        if (list) {
          let hit = false;
          for (const ud of list) {
            if (ud.text.length <= to - pos && s.startsWith(ud.text, pos)) {
              sym[m++] = ud.id;
              frozen[m - 1] = 1;
              pos += ud.text.length;
              hit = true;
              break;
            }
          }
          if (hit) continue;
        }
      }
      if (c >= 0xd800 && c < 0xdc00 && pos + 1 < to) {
        const cp = s.codePointAt(pos)!;
        sym[m++] = this.sy.astralSym.get(cp) ?? this.sy.noSym;
        pos += 2;
      } else {
        const v = bmp[c]!;
        sym[m++] = v >= 0 ? v : this.sy.noSym;
        pos += 1;
      }
    }
    start[m] = to;
    if (m === 0) return;
    if (m >= 2) {
      if (m <= SCAN_LIMIT && !this.v.hasUnused) this.mergeByScan(m);
      else this.mergeByHeap(m);
    } else {
      this.next[0] = -1;
    }
    // Emit: walk the linked list.
    const next = this.next;
    const resolve = this.sy.resolve;
    for (let i = 0; i !== -1; i = next[i]!) {
      const sid = sym[i]!;
      const id = resolve[sid]!;
      if (id === this.v.unkId && this.v.byteFallback) {
        const end = next[i] === -1 ? to : start[next[i]!]!;
        const bytes = utf8.encode(s.slice(start[i]!, end));
        for (let k = 0; k < bytes.length; k++) out.push(this.v.byteIds[bytes[k]!]!);
      } else if (this.v.hasUnused && this.v.types[id] === PieceType.UNUSED) {
        this.resegment(sid, out);
      } else {
        out.push(id);
      }
    }
  }

  /** Small words: pick the best pair by linear scans (same order as the library's heap). */
  private mergeByScan(m: number): void {
    const sym = this.sym;
    const frozen = this.frozen;
    const next = this.next;
    const scores = this.v.scores;
    const pairs = this.sy.pairs;
    // Work on a compact array of live symbol indices.
    const live: number[] = [];
    for (let i = 0; i < m; i++) live.push(i);
    const merged: number[] = new Array<number>(m - 1);
    for (let k = 0; k + 1 < live.length; k++) {
      merged[k] = frozen[k] || frozen[k + 1] ? -1 : pairs.get(sym[k]!, sym[k + 1]!);
    }
    while (live.length > 1) {
      let best = -1;
      let bestScore = -Infinity;
      for (let k = 0; k + 1 < live.length; k++) {
        const id = merged[k]!;
        if (id >= 0 && (best < 0 || scores[id]! > bestScore)) {
          best = k;
          bestScore = scores[id]!;
        }
      }
      if (best < 0) break;
      const l = live[best]!;
      sym[l] = merged[best]!;
      live.splice(best + 1, 1);
      merged.splice(best, 1);
      if (best > 0) {
        const pl = live[best - 1]!;
        merged[best - 1] = frozen[pl] ? -1 : pairs.get(sym[pl]!, sym[l]!);
      }
      if (best + 1 < live.length) {
        const nr = live[best + 1]!;
        merged[best] = frozen[nr] ? -1 : pairs.get(sym[l]!, sym[nr]!);
      }
    }
    for (let k = 0; k < live.length; k++) next[live[k]!] = k + 1 < live.length ? live[k + 1]! : -1;
  }

  /** Long runs (e.g. Chinese without spaces): the library's priority-queue algorithm. */
  private mergeByHeap(m: number): void {
    const sym = this.sym;
    const frozen = this.frozen;
    const prev = this.prev;
    const next = this.next;
    const scores = this.v.scores;
    const pairs = this.sy.pairs;
    const heap = this.heap;
    const trackUnused = this.v.hasUnused;
    if (trackUnused) this.revMerge.clear();
    heap.reset();
    for (let i = 0; i < m; i++) {
      prev[i] = i - 1;
      next[i] = i + 1 < m ? i + 1 : -1;
    }
    const add = (l: number, r: number) => {
      if (l < 0 || r < 0 || frozen[l] || frozen[r]) return;
      const id = pairs.get(sym[l]!, sym[r]!);
      if (id < 0) return;
      heap.push(scores[id]!, l, r, sym[l]!, sym[r]!, id);
      if (trackUnused && this.v.types[id] === PieceType.UNUSED) this.revMerge.set(id, [sym[l]!, sym[r]!]);
    };
    for (let i = 1; i < m; i++) add(i - 1, i);
    while (heap.size > 0) {
      const e = heap.pop();
      const l = heap.left[e]!;
      const r = heap.right[e]!;
      // Stale: one side already merged away or changed since this pair was queued.
      if (sym[l] !== heap.symL[e] || sym[r] !== heap.symR[e] || next[l] !== r) continue;
      sym[l] = heap.merged[e]!;
      const rn = next[r]!;
      next[l] = rn;
      if (rn >= 0) prev[rn] = l;
      sym[r] = -1;
      add(prev[l]!, l);
      add(l, rn);
    }
  }

  /** The library's resegment(): UNUSED pieces are split back into the pair that formed them. */
  private resegment(root: number, out: number[]): void {
    // Iterative: a crafted model can chain UNUSED pieces thousands deep.
    const stack = [root];
    while (stack.length > 0) {
      const sid = stack.pop()!;
      const id = this.sy.resolve[sid]!;
      const p = this.v.types[id] === PieceType.UNUSED ? this.revMerge.get(id) : undefined;
      if (!p) out.push(id);
      else stack.push(p[1], p[0]);
    }
  }
}

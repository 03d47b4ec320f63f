/**
 * The two tables SentencePiece BPE merging runs on: a hash table from a pair of adjacent symbols
 * to the piece they merge into, and the priority queue of candidate merges (the library's agenda).
 */

const EMPTY = -1;

/** Open-addressing hash table (left symbol, right symbol) -> merged piece id. */
export class PairTable {
  private mask: number;
  private keysL: Int32Array;
  private keysR: Int32Array;
  private vals: Int32Array;

  constructor(expected: number) {
    let cap = 16;
    while (cap < expected * 2) cap *= 2;
    this.mask = cap - 1;
    this.keysL = new Int32Array(cap).fill(EMPTY);
    this.keysR = new Int32Array(cap);
    this.vals = new Int32Array(cap);
  }

  private slot(l: number, r: number): number {
    return (Math.imul(l, 0x9e3779b1) ^ Math.imul(r + 0x7f4a7c15, 0x85ebca77)) >>> 0;
  }

  set(l: number, r: number, v: number): void {
    let i = this.slot(l, r) & this.mask;
    for (;;) {
      const k = this.keysL[i]!;
      if (k === EMPTY) {
        this.keysL[i] = l;
        this.keysR[i] = r;
        this.vals[i] = v;
        return;
      }
      if (k === l && this.keysR[i] === r) return; // same string, same piece
      i = (i + 1) & this.mask;
    }
  }

  get(l: number, r: number): number {
    let i = this.slot(l, r) & this.mask;
    for (;;) {
      const k = this.keysL[i]!;
      if (k === EMPTY) return -1;
      if (k === l && this.keysR[i] === r) return this.vals[i]!;
      i = (i + 1) & this.mask;
    }
  }
}


/** Min-heap ordering of the library's agenda: higher score first, then smaller left index. */
export class MergeHeap {
  score = new Float64Array(256);
  left = new Int32Array(256);
  right = new Int32Array(256);
  symL = new Int32Array(256);
  symR = new Int32Array(256);
  merged = new Int32Array(256);
  private order = new Int32Array(256);
  private count = 0;
  size = 0;

  reset(): void {
    this.count = 0;
    this.size = 0;
  }

  private growTo(n: number): void {
    if (n <= this.score.length) return;
    const cap = Math.max(n, this.score.length * 2);
    const g = <T extends Float64Array | Int32Array>(a: T, mk: (n: number) => T): T => {
      const b = mk(cap);
      b.set(a);
      return b;
    };
    this.score = g(this.score, (c) => new Float64Array(c));
    this.left = g(this.left, (c) => new Int32Array(c));
    this.right = g(this.right, (c) => new Int32Array(c));
    this.symL = g(this.symL, (c) => new Int32Array(c));
    this.symR = g(this.symR, (c) => new Int32Array(c));
    this.merged = g(this.merged, (c) => new Int32Array(c));
    this.order = g(this.order, (c) => new Int32Array(c));
  }

  private before(a: number, b: number): boolean {
    const sa = this.score[a]!;
    const sb = this.score[b]!;
    return sa > sb || (sa === sb && this.left[a]! < this.left[b]!);
  }

  push(score: number, l: number, r: number, sl: number, sr: number, merged: number): void {
    const e = this.count++;
    this.growTo(this.count);
    if (this.size + 1 > this.order.length) this.growTo(this.size + 1);
    this.score[e] = score;
    this.left[e] = l;
    this.right[e] = r;
    this.symL[e] = sl;
    this.symR[e] = sr;
    this.merged[e] = merged;
    const h = this.order;
    let i = this.size++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(e, h[p]!)) break;
      h[i] = h[p]!;
      i = p;
    }
    h[i] = e;
  }

  /** Removes and returns the entry index of the best pair. */
  pop(): number {
    const h = this.order;
    const top = h[0]!;
    const last = h[--this.size]!;
    if (this.size > 0) {
      let i = 0;
      const n = this.size;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && this.before(h[r]!, h[l]!) ? r : l;
        if (!this.before(h[c]!, last)) break;
        h[i] = h[c]!;
        i = c;
      }
      h[i] = last;
    }
    return top;
  }
}

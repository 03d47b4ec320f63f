/**
 * SentencePiece Unigram encoding: the library's EncodeOptimized (unigram_model.cc), a Viterbi
 * pass that keeps only the best path ending at each position. Scores follow the C++ types: piece
 * scores are float32, candidates are compared in double and stored as float32, the unknown
 * score is min(NORMAL scores) - 10 in float32, user-defined pieces score
 * bytes * max(NORMAL scores, FLT_MIN) - 0.1 so they always win.
 */
import { PieceType } from './sentencepiece-model.js';

interface TrieNode {
  id: number;
  next: Map<number, TrieNode>;
}

const FLT_MIN = 1.1754943508222875e-38;
const utf8Length = (s: string) => Buffer.byteLength(s, 'utf8');

export class UnigramEncoder {
  private readonly root: TrieNode = { id: -1, next: new Map() };
  private readonly byteLen: Int32Array;
  private readonly unkScore: number;
  private readonly maxScore: number;

  constructor(
    pieces: readonly { piece: string; score: number; type: number }[],
    private readonly scores: Float64Array,
    private readonly types: Uint8Array,
    private readonly unkId: number,
  ) {
    let min = 3.4028234663852886e38;
    let max = FLT_MIN;
    this.byteLen = new Int32Array(pieces.length);
    pieces.forEach((p, id) => {
      const t = p.type;
      if (t === PieceType.NORMAL) {
        min = Math.min(min, p.score);
        max = Math.max(max, p.score);
      }
      if (t !== PieceType.NORMAL && t !== PieceType.USER_DEFINED && t !== PieceType.UNUSED) return;
      this.byteLen[id] = utf8Length(p.piece);
      let node = this.root;
      for (const ch of p.piece) {
        const cp = ch.codePointAt(0)!;
        let child = node.next.get(cp);
        if (!child) node.next.set(cp, (child = { id: -1, next: new Map() }));
        node = child;
      }
      node.id = id;
    });
    this.unkScore = Math.fround(min - 10);
    this.maxScore = max;
  }

  /**
   * Best segmentation of s[from, to): calls emit(start, end, id) left to right, id = unkId for
   * characters no piece covers.
   */
  encode(s: string, from: number, to: number, emit: (start: number, end: number, id: number) => void): void {
    const n = to - from;
    if (n <= 0) return;
    const bestScore = new Float64Array(n + 1);
    const startsAt = new Int32Array(n + 1).fill(-1);
    const bestId = new Int32Array(n + 1).fill(-1);
    for (let pos = 0; pos < n; ) {
      const till = bestScore[pos]!;
      const cp0 = s.codePointAt(from + pos)!;
      const charUnits = cp0 > 0xffff ? 2 : 1;
      let hasSingle = false;
      let node: TrieNode | undefined = this.root;
      for (let k = pos; k < n; ) {
        const cp = s.codePointAt(from + k)!;
        node = node.next.get(cp);
        if (!node) break;
        k += cp > 0xffff ? 2 : 1;
        const id = node.id;
        if (id < 0 || this.types[id] === PieceType.UNUSED) continue;
        const score =
          this.types[id] === PieceType.USER_DEFINED ? Math.fround(this.byteLen[id]! * this.maxScore) - 0.1 : this.scores[id]!;
        const cand = score + till;
        if (startsAt[k] === -1 || cand > bestScore[k]!) {
          bestScore[k] = Math.fround(cand);
          startsAt[k] = pos;
          bestId[k] = id;
        }
        if (k - pos === charUnits) hasSingle = true;
      }
      if (!hasSingle) {
        const k = pos + charUnits;
        const cand = Math.fround(this.unkScore + till);
        if (startsAt[k] === -1 || cand > bestScore[k]!) {
          bestScore[k] = cand;
          startsAt[k] = pos;
          bestId[k] = this.unkId;
        }
      }
      pos += charUnits;
    }
    const path: number[] = [];
    for (let end = n; end > 0; end = startsAt[end]!) path.push(end);
    let start = 0;
    for (let i = path.length - 1; i >= 0; i--) {
      const end = path[i]!;
      emit(from + start, from + end, bestId[end]!);
      start = end;
    }
  }
}

/**
 * Causal grouped-query attention, FlashAttention style: for every query, keys and values are
 * visited in tiles of KEY_TILE positions while a running maximum `m`, running denominator `l`
 * and running weighted sum `acc` are rescaled as the maximum grows (online softmax). The only
 * scratch is one tile of scores and one head-sized accumulator, so memory does not grow with the
 * square of the sequence length; no [n x seq] score matrix exists anywhere.
 */
import { ChatGLMError } from '../../errors.js';
import type { AttentionParams, AttentionSeq } from '../types.js';
import { roundTripQ8 } from '../kv-type.js';
import { ReferenceKVCache } from './kv-cache.js';

export const KEY_TILE = 64;

/** Runs attention for every sequence; returns the bytes of scratch memory it allocated. */
export function flashAttention(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  out: Float32Array,
  seqs: readonly AttentionSeq[],
  params: AttentionParams,
): number {
  const { layer, nHeads, nGroups, headDim, scale } = params;
  if (nHeads % nGroups !== 0) {
    throw new ChatGLMError('BAD_ARGUMENT', `attention: ${nHeads} heads cannot be split evenly over ${nGroups} KV groups`);
  }
  const qRow = nHeads * headDim;
  const kvRow = nGroups * headDim;
  const scores = new Float64Array(KEY_TILE);
  const acc = new Float64Array(headDim);
  const scratchBytes = scores.byteLength + acc.byteLength;

  for (const seq of seqs) {
    const cache = seq.cache;
    if (!(cache instanceof ReferenceKVCache)) {
      throw new ChatGLMError('BACKEND', 'the reference backend can only use KV caches it created (backend.createKVCache)');
    }
    if (cache.groups !== nGroups || cache.headDim !== headDim || layer >= cache.layers) {
      throw new ChatGLMError('BACKEND', `KV cache shape (${cache.layers} layers, ${cache.groups} groups x ${cache.headDim}) does not fit this model`);
    }
    const end = seq.startPos + seq.nTokens;
    cache.reserve(end);
    const K = cache.keysOf(layer);
    const V = cache.valuesOf(layer);
    // Append this step's keys/values (already rotated) at their cache slots.
    K.set(k.subarray(seq.rowStart * kvRow, (seq.rowStart + seq.nTokens) * kvRow), seq.startPos * kvRow);
    V.set(v.subarray(seq.rowStart * kvRow, (seq.rowStart + seq.nTokens) * kvRow), seq.startPos * kvRow);
    if (cache.kvType === 'q8_0') {
      for (let t = seq.startPos; t < end; t++) {
        for (let g = 0; g < nGroups; g++) {
          roundTripQ8(K, t * kvRow + g * headDim, headDim);
          roundTripQ8(V, t * kvRow + g * headDim, headDim);
        }
      }
    }

    for (let i = 0; i < seq.nTokens; i++) {
      const row = seq.rowStart + i;
      const last = seq.startPos + i; // causal: this query sees slots 0..last
      for (let h = 0; h < nHeads; h++) {
        const g = Math.floor((h * nGroups) / nHeads);
        const qOff = row * qRow + h * headDim;
        let m = -Infinity;
        let l = 0;
        acc.fill(0);
        for (let t0 = 0; t0 <= last; t0 += KEY_TILE) {
          const t1 = Math.min(t0 + KEY_TILE, last + 1);
          let tileMax = -Infinity;
          for (let t = t0; t < t1; t++) {
            const kOff = t * kvRow + g * headDim;
            let s = 0;
            for (let d = 0; d < headDim; d++) s += q[qOff + d]! * K[kOff + d]!;
            s *= scale;
            scores[t - t0] = s;
            if (s > tileMax) tileMax = s;
          }
          const mNew = Math.max(m, tileMax);
          const correction = Math.exp(m - mNew); // 0 on the first tile (m = -Infinity)
          l *= correction;
          for (let d = 0; d < headDim; d++) acc[d]! *= correction;
          for (let t = t0; t < t1; t++) {
            const p = Math.exp(scores[t - t0]! - mNew);
            l += p;
            const vOff = t * kvRow + g * headDim;
            for (let d = 0; d < headDim; d++) acc[d]! += p * V[vOff + d]!;
          }
          m = mNew;
        }
        const oOff = row * qRow + h * headDim;
        for (let d = 0; d < headDim; d++) out[oOff + d] = acc[d]! / l;
      }
    }
  }
  return scratchBytes;
}

/**
 * The backend interface: a small set of numeric ops that the model is written against once.
 * Implementations: `reference` (plain TypeScript, the oracle) and `native` (C SIMD kernels and a thread pool per backend instance).
 *
 * Conventions
 * - Activations are Float32Array, row-major, one row per token: x[n, dim].
 * - Weights are `Matrix` objects created by the backend from raw checkpoint bytes
 *   (`backend.loadMatrix`), so each backend may keep them in the layout it computes fastest on
 *   (the reference backend keeps the bytes as they came; a fast backend may repack or quantize).
 * - A KV cache belongs to one sequence; a forward step may carry several sequences at once
 *   (continuous batching): linear layers run over all their tokens together, attention runs
 *   per sequence on its own cache.
 */
import type { KVType } from './kv-type.js';
import type { WeightType } from '../numeric/dtype.js';

export type { WeightType } from '../numeric/dtype.js';
export { weightTypeOf } from '../numeric/dtype.js';

/** A 2-D weight [rows = out features, cols = in features], as in PyTorch's Linear. */
export interface Matrix {
  readonly type: WeightType;
  readonly rows: number;
  readonly cols: number;
  /** Backend-private storage; only the backend that made it reads it. */
  readonly data: Uint8Array;
}

/** Per-sequence, per-layer K/V storage for the KV groups only (never the expanded heads). */
export interface KVCache {
  readonly layers: number;
  readonly groups: number;
  readonly headDim: number;
  /** Maximum number of positions this cache can hold. */
  readonly capacity: number;
  /** Number of positions filled so far (the next token's position). */
  length: number;
  /** Drops positions >= n (used when reusing a cache for a prompt that shares a prefix). */
  truncate(n: number): void;
}

/** One sequence's part of an attention call. Queries are rows [rowStart, rowStart+nTokens). */
export interface AttentionSeq {
  cache: KVCache;
  /** First row of this sequence in the batched q/k/v/out buffers. */
  rowStart: number;
  nTokens: number;
  /** Position of the first of these tokens (= cache.length before the step). */
  startPos: number;
}

export interface AttentionParams {
  layer: number;
  nHeads: number;
  nGroups: number;
  headDim: number;
  /** Softmax scale, normally 1/sqrt(headDim). */
  scale: number;
}

/** The weights of one GLM decoder layer, as `Backend.layer` takes them. */
export interface DecoderLayerWeights {
  inputNorm: Float32Array;
  /** Fused [Q | K | V], rows nHeads*headDim + 2*nGroups*headDim, cols hidden. */
  qkv: Matrix;
  qkvBias?: Float32Array;
  dense: Matrix;
  postNorm: Float32Array;
  /** rows 2*ffn: the first ffn rows are the SwiGLU gate. */
  up: Matrix;
  down: Matrix;
}

export interface DecoderLayerParams extends AttentionParams {
  /** Channels of each head RoPE rotates, and its base (see `rope`). */
  rotaryDim: number;
  ropeBase: number;
  /** RMSNorm epsilon. */
  eps: number;
  ffnHidden: number;
}

export interface Backend {
  readonly name: string;

  /** Builds a weight matrix from raw checkpoint bytes of the given type and shape [rows, cols]. */
  loadMatrix(type: WeightType, rows: number, cols: number, bytes: Uint8Array): Matrix;

  /** out[n, w.rows] = x[n, w.cols] · wᵀ (+ bias). */
  matmul(w: Matrix, x: Float32Array, n: number, out: Float32Array, bias?: Float32Array): void;

  /** out[i, :] = row ids[i] of the embedding matrix, as f32. */
  embedding(w: Matrix, ids: ArrayLike<number>, out: Float32Array): void;

  /** out[n, dim] = weight ⊙ x / sqrt(mean(x²) + eps), row by row. `out` may alias `x`. */
  rmsnorm(x: Float32Array, weight: Float32Array, n: number, dim: number, eps: number, out: Float32Array): void;

  /**
   * In-place GLM rotary embedding on x[n, nHeads, headDim]: the first `rotaryDim` channels of every
   * head as adjacent pairs (x[2i], x[2i+1]) rotated by angle pos·θ_i, θ_i = base^(-2i/rotaryDim).
   * `positions[t]` is token t's position (already divided by any position-interpolation ratio).
   */
  rope(x: Float32Array, n: number, nHeads: number, headDim: number, rotaryDim: number, positions: Float32Array, base: number): void;

  /** out[n, half] = silu(x[:, :half]) * x[:, half:], with x[n, 2*half]. */
  swiglu(x: Float32Array, n: number, half: number, out: Float32Array): void;

  /** a += b, elementwise over the first `len` elements. */
  add(a: Float32Array, b: Float32Array, len: number): void;

  /** `kvType` (default 'f16'): the cache's element type (../backend/kv-type.ts). */
  createKVCache(layers: number, groups: number, headDim: number, capacity: number, kvType?: KVType): KVCache;

  /**
   * Appends k/v rows of every sequence to its cache for `params.layer`, then computes causal
   * attention FlashAttention-style (K/V tiles, online softmax; never an [n x seq] score matrix).
   * q[N, nHeads*headDim], k/v[N, nGroups*headDim] (RoPE already applied), out[N, nHeads*headDim],
   * N = total rows over all sequences. Query head h reads KV group floor(h * nGroups / nHeads).
   * Does not advance cache.length: the model does that once per step after the last layer.
   */
  attention(
    q: Float32Array,
    k: Float32Array,
    v: Float32Array,
    out: Float32Array,
    seqs: readonly AttentionSeq[],
    params: AttentionParams,
  ): void;

  /**
   * Optional: one whole GLM decoder layer for a single sequence whose rows are all of x[n, hidden]
   * (seq.rowStart 0), updated in place: x += dense(attention(rope(qkv(rmsnorm(x))))), then
   * x += down(swiglu(up(rmsnorm(x)))). Must give exactly what the separate ops give; a backend
   * offers it when one call is cheaper than a dozen (the native backend: no per-op crossing).
   */
  layer?(x: Float32Array, w: DecoderLayerWeights, seq: AttentionSeq, positions: Float32Array, params: DecoderLayerParams): void;

  /**
   * Optional: `layer` for several sequences in one step (continuous batching), their rows one after
   * another in x[N, hidden] (seqs[0].rowStart 0, each next one where the previous ends, N rows in
   * all); positions[N] per row. The linear layers run over all N rows, attention per sequence on
   * its own cache. Must give every row exactly what its sequence gets alone.
   */
  batchLayer?(x: Float32Array, w: DecoderLayerWeights, seqs: readonly AttentionSeq[], positions: Float32Array, params: DecoderLayerParams): void;

  /** Bytes of scratch memory the last attention call allocated (tests check it grows linearly). */
  lastAttentionScratchBytes?(): number;

  /** Frees native resources (thread pool). Safe to call twice. */
  dispose?(): void;
}

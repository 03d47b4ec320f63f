/**
 * The native backend: the same ops as the reference backend, computed by the C addon
 * (native/*.c) with SIMD kernels chosen at run time and a persistent thread pool. q8_0/q4_0
 * matrices, and the k-quants the context's kernels read interleaved (info.repackTypes), are
 * repacked once at load time into the row-interleaved layout the kernels read; other weights are
 * read in place.
 *
 * Each backend owns a native context (pool, kernel table, scratch), so two backends in one process,
 * e.g. two models in one server, keep their own thread counts and kernel choices.
 */
import type { KVType } from '../kv-type.js';
import { ChatGLMError } from '../../errors.js';
import type { AttentionParams, AttentionSeq, Backend, DecoderLayerParams, DecoderLayerWeights, KVCache, Matrix, WeightType } from '../types.js';
import { loadAddon, type NativeAddon, type NativeContext, type NativeInfo, type NativeLayer } from './addon.js';
import { NativeKVCache } from './kv-cache.js';
import { rowBytes } from '../../numeric/dtype.js';

export { NativeKVCache } from './kv-cache.js';
export { loadAddon, addonPath, type NativeAddon, type NativeContext, type NativeInfo } from './addon.js';

/**
 * The addon's codes for the weight types (native/kernels.h WT_*). Every type a checkpoint may hold
 * runs on its own blocks: q8_0/q4_0 repacked row-interleaved, the k-quants against q8_K activations
 * (native/kernels_kquants.inc), q4_1/q5_0/q5_1 against 8-bit activations, all as ggml computes them.
 */
const TYPE_CODE: Record<WeightType, number> = {
  f32: 0,
  f16: 1,
  bf16: 2,
  q8_0: 3,
  q4_0: 4,
  q2_K: 5,
  q3_K: 6,
  q4_K: 7,
  q5_K: 8,
  q6_K: 9,
  q4_1: 10,
  q5_0: 11,
  q5_1: 12,
};

class NativeMatrix implements Matrix {
  constructor(
    readonly type: WeightType,
    readonly rows: number,
    readonly cols: number,
    readonly data: Uint8Array,
  ) {}
}

export interface NativeBackendOptions {
  /** Worker threads including the caller; default: all online cores. */
  threads?: number;
  /** Force a kernel variant (tests compare them); default: the best this CPU runs. */
  isa?: string;
  /**
   * Keep repacked weights in transparent huge pages where the OS offers them (default
   * true; $CHATGLM_HUGEPAGES=0 turns it off, for measuring what it brings).
   */
  hugePages?: boolean;
}

export class NativeBackend implements Backend {
  readonly name = 'native';
  readonly info: NativeInfo;
  private readonly addon: NativeAddon;
  private readonly ctx: NativeContext;
  /** Each layer's weights checked and handed to C once, on first use (the model keeps the weights object). */
  private readonly layers = new WeakMap<DecoderLayerWeights, { handle: NativeLayer; key: string }>();
  private scratchBytes = 0;
  private readonly idScratch = { ids: new Int32Array(0) };
  private readonly hugePages: boolean;
  /** Backend.batchLayer, offered when the compiled addon has it (see runBatchLayer). */
  readonly batchLayer?: (x: Float32Array, w: DecoderLayerWeights, seqs: readonly AttentionSeq[], positions: Float32Array, params: DecoderLayerParams) => void;
  /** Reused by every batchLayer call, so a decode step allocates nothing here. */
  private readonly batchScratch = { meta: new Int32Array(0), k: [] as (Uint16Array | Uint8Array)[], v: [] as (Uint16Array | Uint8Array)[] };

  constructor(addon: NativeAddon, options: NativeBackendOptions = {}) {
    this.addon = addon;
    if (addon.batchLayer !== undefined) this.batchLayer = (x, w, seqs, positions, params) => this.runBatchLayer(x, w, seqs, positions, params);
    const threads = options.threads ?? 0;
    if (!Number.isSafeInteger(threads) || threads < 0) {
      throw new ChatGLMError('BAD_ARGUMENT', `threads must be a positive integer, got ${options.threads}`);
    }
    const available = addon.isas();
    const envIsa = process.env['CHATGLM_ISA'];
    const isa = options.isa ?? (envIsa !== undefined && envIsa !== '' && available.includes(envIsa) ? envIsa : available[available.length - 1]!);
    if (!available.includes(isa)) {
      throw new ChatGLMError('UNSUPPORTED', `this CPU cannot run the ${isa} kernels (available: ${available.join(', ')})`);
    }
    try {
      this.ctx = addon.createContext(threads, isa);
    } catch (err) {
      throw new ChatGLMError('BACKEND', `native backend: ${err instanceof Error ? err.message : String(err)}`);
    }
    this.info = addon.info(this.ctx);
    this.hugePages = options.hugePages ?? process.env['CHATGLM_HUGEPAGES'] !== '0';
  }

  loadMatrix(type: WeightType, rows: number, cols: number, bytes: Uint8Array): Matrix {
    if (!Number.isSafeInteger(rows) || !Number.isSafeInteger(cols) || rows <= 0 || cols <= 0) {
      throw new ChatGLMError('BAD_ARGUMENT', `matrix shape [${rows}, ${cols}] is not valid`);
    }
    if (type.endsWith('_K') && cols % 256 !== 0) {
      throw new ChatGLMError('BAD_FORMAT', `a ${type} matrix needs a multiple of 256 columns, got ${cols}`);
    }
    if ((type === 'q8_0' || type === 'q4_0' || type === 'q4_1' || type === 'q5_0' || type === 'q5_1') && cols % 32 !== 0) {
      throw new ChatGLMError('BAD_FORMAT', `a ${type} matrix needs a multiple of 32 columns, got ${cols}`);
    }
    const expected = rows * rowBytes(type, cols);
    if (bytes.byteLength !== expected) {
      throw new ChatGLMError('BAD_FORMAT', `a ${type} matrix [${rows}, ${cols}] needs ${expected} bytes, got ${bytes.byteLength}`);
    }
    if (this.info.repackTypes.includes(TYPE_CODE[type])) {
      // Decode reads every weight byte per token: huge pages spare the TLB a miss every 4 KiB.
      const packed = (this.hugePages ? this.addon.allocWeights(bytes.byteLength) : null) ?? new Uint8Array(bytes.byteLength);
      callNative('repack', () => this.addon.repack(TYPE_CODE[type], rows, cols, bytes, packed));
      return new NativeMatrix(type, rows, cols, packed);
    }
    return new NativeMatrix(type, rows, cols, bytes);
  }

  matmul(w: Matrix, x: Float32Array, n: number, out: Float32Array, bias?: Float32Array): void {
    callNative('matmul', () => this.addon.matmul(this.ctx, TYPE_CODE[w.type], w.rows, w.cols, w.data, x, n, out, bias ?? null));
  }

  embedding(w: Matrix, ids: ArrayLike<number>, out: Float32Array): void {
    let idArr: Int32Array;
    if (ids instanceof Int32Array) {
      idArr = ids;
    } else {
      if (this.idScratch.ids.length !== ids.length) this.idScratch.ids = new Int32Array(ids.length);
      idArr = this.idScratch.ids;
      for (let i = 0; i < ids.length; i++) idArr[i] = ids[i]!;
    }
    for (let i = 0; i < idArr.length; i++) {
      const id = idArr[i]!;
      if (id < 0 || id >= w.rows || id !== ids[i]) {
        throw new ChatGLMError('BAD_ARGUMENT', `token id ${ids[i]} is outside the vocabulary (0..${w.rows - 1})`);
      }
    }
    callNative('embedding', () => this.addon.embedding(this.ctx, TYPE_CODE[w.type], w.rows, w.cols, w.data, idArr, out));
  }

  rmsnorm(x: Float32Array, weight: Float32Array, n: number, dim: number, eps: number, out: Float32Array): void {
    callNative('rmsnorm', () => this.addon.rmsnorm(this.ctx, x, weight, n, dim, eps, out));
  }

  rope(x: Float32Array, n: number, nHeads: number, headDim: number, rotaryDim: number, positions: Float32Array, base: number): void {
    if (rotaryDim % 2 !== 0 || rotaryDim > headDim) {
      throw new ChatGLMError('BAD_ARGUMENT', `rope: rotaryDim ${rotaryDim} must be even and at most headDim ${headDim}`);
    }
    callNative('rope', () => this.addon.rope(this.ctx, x, n, nHeads, headDim, rotaryDim, positions, base));
  }

  swiglu(x: Float32Array, n: number, half: number, out: Float32Array): void {
    callNative('swiglu', () => this.addon.swiglu(this.ctx, x, n, half, out));
  }

  add(a: Float32Array, b: Float32Array, len: number): void {
    callNative('add', () => this.addon.add(this.ctx, a, b, len));
  }

  createKVCache(layers: number, groups: number, headDim: number, capacity: number, kvType: KVType = 'f16'): KVCache {
    return new NativeKVCache(layers, groups, headDim, capacity, kvType);
  }

  layer(x: Float32Array, w: DecoderLayerWeights, seq: AttentionSeq, positions: Float32Array, params: DecoderLayerParams): void {
    const { layer, nHeads, nGroups, headDim } = params;
    const hidden = w.qkv.cols;
    const qDim = nHeads * headDim;
    const kvDim = nGroups * headDim;
    checkLayerShapes('layer', w, params);
    if (seq.rowStart !== 0 || x.length !== seq.nTokens * hidden) {
      throw new ChatGLMError('BAD_ARGUMENT', `layer: x must hold exactly the sequence's ${seq.nTokens} rows of ${hidden}`);
    }
    const cache = this.cacheFor(seq, layer, nGroups, headDim);
    if (w.inputNorm.length !== hidden || w.postNorm.length !== hidden || positions.length < seq.nTokens || (w.qkvBias !== undefined && w.qkvBias.length !== qDim + 2 * kvDim)) {
      throw new ChatGLMError('BAD_ARGUMENT', 'layer: norm weights, qkv bias or positions do not fit the layer');
    }
    try {
      this.scratchBytes = this.callLayer(x, w, seq, cache, positions, params);
    } catch (err) {
      // The addon throws plain errors (out of memory, a size it refuses): callers expect ChatGLMError.
      if (err instanceof ChatGLMError) throw err;
      throw new ChatGLMError('BACKEND', `native layer: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  private callLayer(x: Float32Array, w: DecoderLayerWeights, seq: AttentionSeq, cache: NativeKVCache, positions: Float32Array, params: DecoderLayerParams): number {
    const { layer } = params;
    return this.addon.layer(this.ctx, this.layerHandle(w, params), x, seq.nTokens, cache.keysOf(layer), cache.valuesOf(layer), cache.allocatedPositions, seq.startPos, positions, cache.kvType === 'q8_0' ? 1 : 0);
  }

  /**
   * One decoder layer for every sequence of a step in one addon call (native/batch_ops.c): the
   * linear layers over all rows, each sequence's attention on its own cache, the one-token
   * sequences' attention spread over the pool together.
   */
  private runBatchLayer(x: Float32Array, w: DecoderLayerWeights, seqs: readonly AttentionSeq[], positions: Float32Array, params: DecoderLayerParams): void {
    const { layer, nGroups, headDim } = params;
    const hidden = w.qkv.cols;
    checkLayerShapes('batchLayer', w, params);
    const S = seqs.length;
    const sc = this.batchScratch;
    if (sc.meta.length < 5 * S) sc.meta = new Int32Array(5 * S);
    const meta = sc.meta.subarray(0, 5 * S);
    sc.k.length = S;
    sc.v.length = S;
    let rows = 0;
    for (let s = 0; s < S; s++) {
      const seq = seqs[s]!;
      if (seq.rowStart !== rows) throw new ChatGLMError('BAD_ARGUMENT', 'batchLayer: the sequences must take the rows of x one after another');
      rows += seq.nTokens;
      const cache = this.cacheFor(seq, layer, nGroups, headDim);
      meta[5 * s] = seq.rowStart;
      meta[5 * s + 1] = seq.nTokens;
      meta[5 * s + 2] = seq.startPos;
      meta[5 * s + 3] = cache.allocatedPositions;
      meta[5 * s + 4] = cache.kvType === 'q8_0' ? 1 : 0;
      sc.k[s] = cache.keysOf(layer);
      sc.v[s] = cache.valuesOf(layer);
    }
    if (rows * hidden !== x.length || positions.length < rows) {
      throw new ChatGLMError('BAD_ARGUMENT', `batchLayer: x must hold exactly the sequences' ${rows} rows of ${hidden}, with a position for each`);
    }
    try {
      this.scratchBytes = this.addon.batchLayer!(this.ctx, this.layerHandle(w, params), x, rows, meta, sc.k, sc.v, positions);
    } catch (err) {
      if (err instanceof ChatGLMError) throw err;
      const code = err instanceof RangeError || err instanceof TypeError ? 'BAD_ARGUMENT' : 'BACKEND';
      throw new ChatGLMError(code, `native batchLayer: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    } finally {
      // The arrays must not keep caches alive past the step.
      sc.k.length = 0;
      sc.v.length = 0;
    }
  }

  /** The C-side handle of a layer's weights, made on first use; the same weights with other parameters get a new one. */
  private layerHandle(w: DecoderLayerWeights, params: DecoderLayerParams): NativeLayer {
    const { nHeads, nGroups, headDim, rotaryDim, ropeBase, eps, scale, ffnHidden } = params;
    const key = `${nHeads},${nGroups},${headDim},${rotaryDim},${ropeBase},${eps},${scale},${ffnHidden}`;
    const known = this.layers.get(w);
    if (known !== undefined && known.key === key) return known.handle;
    const handle = this.addon.layerWeights(
      w.inputNorm,
      w.postNorm,
      w.qkvBias ?? null,
      TYPE_CODE[w.qkv.type],
      w.qkv.data,
      TYPE_CODE[w.dense.type],
      w.dense.data,
      TYPE_CODE[w.up.type],
      w.up.data,
      TYPE_CODE[w.down.type],
      w.down.data,
      nHeads,
      nGroups,
      headDim,
      rotaryDim,
      ropeBase,
      eps,
      scale,
      w.qkv.cols,
      ffnHidden,
    );
    this.layers.set(w, { handle, key });
    return handle;
  }

  /** The sequence's cache, checked to be ours and to fit, with room for this step's positions. */
  private cacheFor(seq: AttentionSeq, layer: number, nGroups: number, headDim: number): NativeKVCache {
    const cache = seq.cache;
    if (!(cache instanceof NativeKVCache)) {
      throw new ChatGLMError('BACKEND', 'the native backend can only use KV caches it created (backend.createKVCache)');
    }
    if (cache.groups !== nGroups || cache.headDim !== headDim || layer >= cache.layers) {
      throw new ChatGLMError('BACKEND', `KV cache shape (${cache.layers} layers, ${cache.groups} groups x ${cache.headDim}) does not fit this model`);
    }
    cache.reserve(seq.startPos + seq.nTokens);
    return cache;
  }

  attention(q: Float32Array, k: Float32Array, v: Float32Array, out: Float32Array, seqs: readonly AttentionSeq[], params: AttentionParams): void {
    const { layer, nHeads, nGroups, headDim, scale } = params;
    if (nHeads % nGroups !== 0) {
      throw new ChatGLMError('BAD_ARGUMENT', `attention: ${nHeads} heads cannot be split evenly over ${nGroups} KV groups`);
    }
    let scratch = 0;
    for (const seq of seqs) {
      const cache = this.cacheFor(seq, layer, nGroups, headDim);
      const bytes = callNative('attention', () => this.addon.attention(
        this.ctx,
        q,
        k,
        v,
        out,
        cache.keysOf(layer),
        cache.valuesOf(layer),
        cache.allocatedPositions,
        seq.rowStart,
        seq.nTokens,
        seq.startPos,
        nHeads,
        nGroups,
        headDim,
        scale,
        cache.kvType === 'q8_0' ? 1 : 0,
      ));
      scratch = Math.max(scratch, bytes);
    }
    this.scratchBytes = scratch;
  }

  lastAttentionScratchBytes(): number {
    return this.scratchBytes;
  }

  /** Read bandwidth of this machine in GB/s (all pool threads), for the benchmark. */
  memoryBandwidth(mib = 1024, iters = 5): number {
    return this.addon.membw(this.ctx, mib, iters);
  }

  dispose(): void {
    this.addon.release(this.ctx);
  }
}

/** True when the compiled addon is present and loads. */
export function nativeAvailable(): boolean {
  return loadAddon().addon !== undefined;
}

/** Creates the native backend; throws ChatGLMError (code BACKEND) naming the reason when the addon is missing. */
export function createNativeBackend(options: NativeBackendOptions = {}): NativeBackend {
  const load = loadAddon();
  if (load.addon === undefined) throw new ChatGLMError('BACKEND', `native backend unavailable: ${load.reason}`);
  return new NativeBackend(load.addon, options);
}

/**
 * Runs one addon call. The addon checks sizes and throws plain RangeError/TypeError for arrays
 * that do not fit the shapes passed: for callers those are a bad argument, like every other
 * error this backend reports, never a raw JS error.
 */
function callNative<T>(op: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof ChatGLMError) throw err;
    const message = err instanceof Error ? err.message : String(err);
    const code = err instanceof RangeError || err instanceof TypeError ? 'BAD_ARGUMENT' : 'BACKEND';
    throw new ChatGLMError(code, `native ${op}: ${message}`, { cause: err });
  }
}

/** Throws a ChatGLMError (naming `op`) when a layer's weights do not fit its parameters. */
function checkLayerShapes(op: string, w: DecoderLayerWeights, params: DecoderLayerParams): void {
  const { nHeads, nGroups, headDim, ffnHidden } = params;
  const hidden = w.qkv.cols;
  const qDim = nHeads * headDim;
  const kvDim = nGroups * headDim;
  if (nHeads % nGroups !== 0) {
    throw new ChatGLMError('BAD_ARGUMENT', `${op}: ${nHeads} heads cannot be split evenly over ${nGroups} KV groups`);
  }
  if (
    w.qkv.rows !== qDim + 2 * kvDim ||
    w.dense.rows !== hidden ||
    w.dense.cols !== qDim ||
    w.up.rows !== 2 * ffnHidden ||
    w.up.cols !== hidden ||
    w.down.rows !== hidden ||
    w.down.cols !== ffnHidden
  ) {
    throw new ChatGLMError('BAD_ARGUMENT', `${op}: weight shapes do not fit the layer parameters`);
  }
}

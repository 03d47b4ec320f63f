/**
 * The GLM-2/3/4 decoder, written once against the Backend interface and readable top to bottom
 * (in the spirit of llama2.c's run.c). See ../../../shared/notes/chatglm-reference.md §1.3-1.4 for
 * the original PyTorch code this follows.
 *
 * One `forward` step may carry several sequences (each with its own KV cache): the linear layers
 * run over all their rows together, attention runs per sequence on its own cache.
 */
import { checkKVType, type KVType } from '../backend/kv-type.js';
import { ChatGLMError } from '../errors.js';
import type { AttentionSeq, Backend, DecoderLayerWeights, KVCache, Matrix } from '../backend/types.js';
import { qkvSize, type GLMConfig } from './config.js';

/** One layer's weights: the shape `Backend.layer` takes (up = dense_h_to_4h, down = dense_4h_to_h). */
export type GLMLayerWeights = DecoderLayerWeights;

export interface GLMWeights {
  embedding: Matrix;
  layers: GLMLayerWeights[];
  finalNorm: Float32Array;
  output: Matrix;
  /**
   * P-Tuning v2 prefix as the past keys/values it stands for: [preSeqLen, numLayers*2, numGroups,
   * headDim] (layer l's keys at 2l, values at 2l+1), already in f32.
   */
  prefix?: Float32Array;
}

/** One sequence's part of a forward step. */
export interface ForwardInput {
  cache: KVCache;
  ids: ArrayLike<number>;
  /** Logits for every position of `ids` ([n * vocab]) instead of only the last one. */
  allLogits?: boolean;
}

export class GLMModel {
  readonly config: GLMConfig;
  readonly weights: GLMWeights;
  readonly backend: Backend;
  /** Element type of the caches newCache makes: 'q8_0' halves their memory (checked against the head size here). */
  private cacheType: KVType = 'f16';

  constructor(config: GLMConfig, weights: GLMWeights, backend: Backend) {
    if (weights.layers.length !== config.numLayers) {
      throw new ChatGLMError('MODEL_MISMATCH', `the model has ${weights.layers.length} layers but its config says ${config.numLayers}`);
    }
    this.config = config;
    this.weights = weights;
    this.backend = backend;
  }

  /** Positions the P-Tuning prefix occupies at the start of every cache (0 without one). */
  get prefixLength(): number {
    return this.weights.prefix === undefined ? 0 : this.config.preSeqLen;
  }

  /**
   * A fresh KV cache for one sequence; `capacity` counts tokens (default: the trained context).
   * With a P-Tuning prefix the cache starts holding the prefix's keys and values.
   */
  get kvType(): KVType {
    return this.cacheType;
  }

  set kvType(t: KVType) {
    checkKVType(t, this.config.headDim);
    this.cacheType = t;
  }

  newCache(capacity: number = this.config.seqLength): KVCache {
    const c = this.config;
    if (!Number.isSafeInteger(capacity) || capacity <= 0) {
      throw new ChatGLMError('BAD_ARGUMENT', `cache capacity must be a positive integer, got ${capacity}`);
    }
    const cache = this.backend.createKVCache(c.numLayers, c.numGroups, c.headDim, capacity + this.prefixLength, this.cacheType);
    if (this.weights.prefix !== undefined) this.loadPrefix(cache, this.weights.prefix);
    return cache;
  }

  /** Tokens a cache can still take. */
  remaining(cache: KVCache): number {
    return cache.capacity - cache.length;
  }

  /** Tokens of the sequence held by a cache (the prefix does not count). */
  tokenCount(cache: KVCache): number {
    return cache.length - this.prefixLength;
  }

  /** Keeps the first `tokens` tokens of a cache's sequence (never drops a P-Tuning prefix). */
  truncate(cache: KVCache, tokens: number): void {
    cache.truncate(this.prefixLength + Math.max(0, tokens));
  }

  /**
   * Runs one step and returns, per input, the logits of its last token ([vocab]) or of all its
   * tokens ([n * vocab]) with `allLogits`. Each cache advances by its number of ids.
   */
  forward(inputs: readonly ForwardInput[]): Float32Array[] {
    const hidden = this.forwardHidden(inputs);
    const { hiddenSize: H, vocabSize } = this.config;
    if (inputs.length > 1 && inputs.every((input) => input.allLogits !== true)) {
      // Several sequences (a batched decode step): one pass over the output matrix for all their last rows.
      const S = inputs.length;
      const rows = new Float32Array(S * H);
      inputs.forEach((input, s) => {
        const n = input.ids.length;
        rows.set(hidden[s]!.subarray((n - 1) * H, n * H), s * H);
      });
      const logits = new Float32Array(S * vocabSize);
      this.backend.matmul(this.weights.output, rows, S, logits);
      return inputs.map((_, s) => logits.subarray(s * vocabSize, (s + 1) * vocabSize));
    }
    return inputs.map((input, s) => {
      const h = hidden[s]!;
      const n = input.ids.length;
      const rows = input.allLogits === true ? h : h.subarray((n - 1) * H, n * H);
      const m = input.allLogits === true ? n : 1;
      const logits = new Float32Array(m * vocabSize);
      this.backend.matmul(this.weights.output, rows, m, logits);
      return logits;
    });
  }

  /**
   * The same step without the output layer: per input, the final-RMSNorm hidden states of all
   * its tokens ([n * hiddenSize]).
   */
  forwardHidden(inputs: readonly ForwardInput[]): Float32Array[] {
    const c = this.config;
    const be = this.backend;
    const w = this.weights;
    const H = c.hiddenSize;
    const hd = c.headDim;
    const ffn = c.ffnHiddenSize;

    // Lay the sequences out one after another in the batch and check they fit their caches.
    const seqs: AttentionSeq[] = [];
    const caches = new Set<KVCache>();
    let N = 0;
    for (const input of inputs) {
      const n = input.ids.length;
      if (n === 0) throw new ChatGLMError('BAD_ARGUMENT', 'forward: a sequence needs at least one token');
      if (caches.has(input.cache)) throw new ChatGLMError('BAD_ARGUMENT', 'forward: the same KV cache appears twice in one step');
      caches.add(input.cache);
      for (let i = 0; i < n; i++) {
        const id = input.ids[i]!;
        if (!Number.isInteger(id) || id < 0 || id >= c.vocabSize) {
          throw new ChatGLMError('BAD_ARGUMENT', `token id ${id} is outside the model's vocabulary (0..${c.vocabSize - 1})`);
        }
      }
      if (input.cache.length + n > input.cache.capacity) {
        throw new ChatGLMError(
          'CONTEXT_OVERFLOW',
          `the context is full: ${this.tokenCount(input.cache)} tokens + ${n} new exceed the cache's ${input.cache.capacity - this.prefixLength}; start a new conversation or use a larger context`,
        );
      }
      seqs.push({ cache: input.cache, rowStart: N, nTokens: n, startPos: input.cache.length });
      N += n;
    }
    const ids = new Int32Array(N);
    const positions = new Float32Array(N);
    // The prefix sits in the cache but does not shift positions (as in modeling_chatglm.py).
    const positionScale = c.ropeScaling === 'position' ? 1 / c.ropeRatio : 1;
    for (const [s, input] of inputs.entries()) {
      const seq = seqs[s]!;
      for (let i = 0; i < seq.nTokens; i++) {
        ids[seq.rowStart + i] = input.ids[i]!;
        positions[seq.rowStart + i] = (seq.startPos - this.prefixLength + i) * positionScale;
      }
    }
    const ropeBase = 10000 * (c.ropeScaling === 'base' ? c.ropeRatio : 1);
    const rotaryDim = hd / 2; // GLM rotates the first half of every head

    const x = new Float32Array(N * H); // residual stream

    // 1. token embedding (no scaling)
    be.embedding(w.embedding, ids, x);

    if (be.layer !== undefined && seqs.length === 1) {
      // One sequence: the backend runs each whole layer in one call (the same ops as below).
      const params = { layer: 0, nHeads: c.numHeads, nGroups: c.numGroups, headDim: hd, scale: 1 / Math.sqrt(hd), rotaryDim, ropeBase, eps: c.eps, ffnHidden: ffn };
      for (let l = 0; l < c.numLayers; l++) {
        params.layer = l;
        be.layer(x, w.layers[l]!, seqs[0]!, positions, params);
      }
    } else if (be.batchLayer !== undefined && seqs.length > 1) {
      // Several sequences (a batched step): one call per layer for all of them (the same ops as below).
      const params = { layer: 0, nHeads: c.numHeads, nGroups: c.numGroups, headDim: hd, scale: 1 / Math.sqrt(hd), rotaryDim, ropeBase, eps: c.eps, ffnHidden: ffn };
      for (let l = 0; l < c.numLayers; l++) {
        params.layer = l;
        be.batchLayer(x, w.layers[l]!, seqs, positions, params);
      }
    } else {
      this.layersUnfused(x, N, seqs, positions, ropeBase, rotaryDim);
    }

    // every layer has written its keys/values: the caches now hold the new tokens
    for (const seq of seqs) seq.cache.length += seq.nTokens;

    // 7. final RMSNorm
    be.rmsnorm(x, w.finalNorm, N, H, c.eps, x);
    // Views, not copies: x belongs to this call, and forward() reads only the last row of each.
    return seqs.map((seq) => x.subarray(seq.rowStart * H, (seq.rowStart + seq.nTokens) * H));
  }

  /** Steps 2-6 of every layer as separate backend ops, for any number of sequences. */
  private layersUnfused(x: Float32Array, N: number, seqs: AttentionSeq[], positions: Float32Array, ropeBase: number, rotaryDim: number): void {
    const c = this.config;
    const be = this.backend;
    const w = this.weights;
    const H = c.hiddenSize;
    const hd = c.headDim;
    const qDim = c.numHeads * hd;
    const kvDim = c.numGroups * hd;
    const qkvDim = qkvSize(c);
    const ffn = c.ffnHiddenSize;
    const xb = new Float32Array(N * H); // normed input of a sub-block
    const xb2 = new Float32Array(N * H); // output of a sub-block
    const qkv = new Float32Array(N * qkvDim);
    const q = new Float32Array(N * qDim);
    const k = new Float32Array(N * kvDim);
    const v = new Float32Array(N * kvDim);
    const att = new Float32Array(N * qDim);
    const hb = new Float32Array(N * 2 * ffn);
    const hb2 = new Float32Array(N * ffn);

    for (let l = 0; l < c.numLayers; l++) {
      const lw = w.layers[l]!;

      // 2. attention: RMSNorm, fused QKV (+bias), split Q|K|V per row
      be.rmsnorm(x, lw.inputNorm, N, H, c.eps, xb);
      be.matmul(lw.qkv, xb, N, qkv, lw.qkvBias);
      for (let t = 0; t < N; t++) {
        const off = t * qkvDim;
        q.set(qkv.subarray(off, off + qDim), t * qDim);
        k.set(qkv.subarray(off + qDim, off + qDim + kvDim), t * kvDim);
        v.set(qkv.subarray(off + qDim + kvDim, off + qkvDim), t * kvDim);
      }

      // 3. RoPE on queries and keys (adjacent pairs in the first half of each head)
      be.rope(q, N, c.numHeads, hd, rotaryDim, positions, ropeBase);
      be.rope(k, N, c.numGroups, hd, rotaryDim, positions, ropeBase);

      // 4. causal grouped-query attention against each sequence's cache
      be.attention(q, k, v, att, seqs, { layer: l, nHeads: c.numHeads, nGroups: c.numGroups, headDim: hd, scale: 1 / Math.sqrt(hd) });

      // 5. output projection and residual
      be.matmul(lw.dense, att, N, xb2);
      be.add(x, xb2, N * H);

      // 6. MLP: RMSNorm, dense_h_to_4h, SwiGLU (first half gates), dense_4h_to_h, residual
      be.rmsnorm(x, lw.postNorm, N, H, c.eps, xb);
      be.matmul(lw.up, xb, N, hb);
      be.swiglu(hb, N, ffn, hb2);
      be.matmul(lw.down, hb2, N, xb2);
      be.add(x, xb2, N * H);
    }
  }

  /**
   * Writes the P-Tuning v2 past keys/values into slots [0, preSeqLen) of a fresh cache. The only
   * way the Backend interface writes a cache is `attention`, which appends before it attends, so
   * the prefix goes in through one attention call per layer whose output is discarded.
   */
  private loadPrefix(cache: KVCache, prefix: Float32Array): void {
    const c = this.config;
    const P = c.preSeqLen;
    const kvDim = c.numGroups * c.headDim;
    const k = new Float32Array(P * kvDim);
    const v = new Float32Array(P * kvDim);
    const q = new Float32Array(P * c.numHeads * c.headDim);
    const out = new Float32Array(q.length);
    for (let l = 0; l < c.numLayers; l++) {
      for (let t = 0; t < P; t++) {
        const kOff = (t * c.numLayers * 2 + 2 * l) * kvDim;
        k.set(prefix.subarray(kOff, kOff + kvDim), t * kvDim);
        v.set(prefix.subarray(kOff + kvDim, kOff + 2 * kvDim), t * kvDim);
      }
      this.backend.attention(q, k, v, out, [{ cache, rowStart: 0, nTokens: P, startPos: 0 }], {
        layer: l,
        nHeads: c.numHeads,
        nGroups: c.numGroups,
        headDim: c.headDim,
        scale: 1 / Math.sqrt(c.headDim),
      });
    }
    cache.length = P;
  }
}

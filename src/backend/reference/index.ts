/**
 * The reference backend: every op written out in plain TypeScript, straight from the math in the
 * Backend doc comments, with float64 accumulation (JavaScript numbers). It is the oracle the fast
 * backend is tested against, so clarity wins over speed everywhere here.
 */
import type { KVType } from '../kv-type.js';
import { ChatGLMError } from '../../errors.js';
import type { AttentionParams, AttentionSeq, Backend, KVCache, Matrix, WeightType } from '../types.js';
import { flashAttention } from './attention.js';
import { ReferenceKVCache } from './kv-cache.js';
import { decodeRow, rowBytes } from './rows.js';

export { ReferenceKVCache } from './kv-cache.js';
export { KEY_TILE } from './attention.js';

class ReferenceMatrix implements Matrix {
  constructor(
    readonly type: WeightType,
    readonly rows: number,
    readonly cols: number,
    readonly data: Uint8Array,
  ) {}
}

export class ReferenceBackend implements Backend {
  readonly name = 'reference';
  private scratchBytes = 0;

  loadMatrix(type: WeightType, rows: number, cols: number, bytes: Uint8Array): Matrix {
    if (!Number.isSafeInteger(rows) || !Number.isSafeInteger(cols) || rows <= 0 || cols <= 0) {
      throw new ChatGLMError('BAD_ARGUMENT', `matrix shape [${rows}, ${cols}] is not valid`);
    }
    const expected = rows * rowBytes(type, cols);
    if (bytes.byteLength !== expected) {
      throw new ChatGLMError('BAD_FORMAT', `a ${type} matrix [${rows}, ${cols}] needs ${expected} bytes, got ${bytes.byteLength}`);
    }
    // Keeps the checkpoint bytes as they are: no f32 copy of the model.
    return new ReferenceMatrix(type, rows, cols, bytes);
  }

  matmul(w: Matrix, x: Float32Array, n: number, out: Float32Array, bias?: Float32Array): void {
    const { rows, cols } = w;
    const row = new Float32Array(cols);
    // Decode each weight row once and apply it to all n tokens.
    for (let r = 0; r < rows; r++) {
      decodeRow(w.type, w.data, cols, r, row);
      const b = bias === undefined ? 0 : bias[r]!;
      for (let i = 0; i < n; i++) {
        const xOff = i * cols;
        let s = 0;
        for (let c = 0; c < cols; c++) s += x[xOff + c]! * row[c]!;
        out[i * rows + r] = s + b;
      }
    }
  }

  embedding(w: Matrix, ids: ArrayLike<number>, out: Float32Array): void {
    const row = new Float32Array(w.cols);
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (!Number.isInteger(id) || id < 0 || id >= w.rows) {
        throw new ChatGLMError('BAD_ARGUMENT', `token id ${id} is outside the vocabulary (0..${w.rows - 1})`);
      }
      decodeRow(w.type, w.data, w.cols, id, row);
      out.set(row, i * w.cols);
    }
  }

  rmsnorm(x: Float32Array, weight: Float32Array, n: number, dim: number, eps: number, out: Float32Array): void {
    for (let i = 0; i < n; i++) {
      const off = i * dim;
      let ss = 0;
      for (let d = 0; d < dim; d++) ss += x[off + d]! * x[off + d]!;
      const inv = 1 / Math.sqrt(ss / dim + eps);
      for (let d = 0; d < dim; d++) out[off + d] = weight[d]! * (x[off + d]! * inv);
    }
  }

  rope(x: Float32Array, n: number, nHeads: number, headDim: number, rotaryDim: number, positions: Float32Array, base: number): void {
    if (rotaryDim % 2 !== 0 || rotaryDim > headDim) {
      throw new ChatGLMError('BAD_ARGUMENT', `rope: rotaryDim ${rotaryDim} must be even and at most headDim ${headDim}`);
    }
    const pairs = rotaryDim / 2;
    const theta = new Float64Array(pairs);
    for (let i = 0; i < pairs; i++) theta[i] = Math.pow(base, (-2 * i) / rotaryDim);
    for (let t = 0; t < n; t++) {
      const pos = positions[t]!;
      for (let h = 0; h < nHeads; h++) {
        const off = (t * nHeads + h) * headDim;
        for (let i = 0; i < pairs; i++) {
          const angle = pos * theta[i]!;
          const cos = Math.cos(angle);
          const sin = Math.sin(angle);
          const x0 = x[off + 2 * i]!;
          const x1 = x[off + 2 * i + 1]!;
          x[off + 2 * i] = x0 * cos - x1 * sin;
          x[off + 2 * i + 1] = x1 * cos + x0 * sin;
        }
      }
    }
  }

  swiglu(x: Float32Array, n: number, half: number, out: Float32Array): void {
    for (let i = 0; i < n; i++) {
      const inOff = i * 2 * half;
      for (let d = 0; d < half; d++) {
        const g = x[inOff + d]!;
        const u = x[inOff + half + d]!;
        out[i * half + d] = (g / (1 + Math.exp(-g))) * u;
      }
    }
  }

  add(a: Float32Array, b: Float32Array, len: number): void {
    for (let i = 0; i < len; i++) a[i] = a[i]! + b[i]!;
  }

  createKVCache(layers: number, groups: number, headDim: number, capacity: number, kvType: KVType = 'f16'): KVCache {
    return new ReferenceKVCache(layers, groups, headDim, capacity, kvType);
  }

  attention(
    q: Float32Array,
    k: Float32Array,
    v: Float32Array,
    out: Float32Array,
    seqs: readonly AttentionSeq[],
    params: AttentionParams,
  ): void {
    this.scratchBytes = flashAttention(q, k, v, out, seqs, params);
  }

  lastAttentionScratchBytes(): number {
    return this.scratchBytes;
  }
}

export function createReferenceBackend(): ReferenceBackend {
  return new ReferenceBackend();
}

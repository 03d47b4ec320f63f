/**
 * KV cache of the reference backend: per layer, keys and values of the KV groups only, laid out
 * [position, group, headDim] in f32. Storage grows on demand (doubling up to `capacity`) so that a
 * cache created for a 32k context does not reserve gigabytes for a short chat.
 */
import { ChatGLMError } from '../../errors.js';
import type { KVCache } from '../types.js';

export class ReferenceKVCache implements KVCache {
  readonly layers: number;
  readonly groups: number;
  readonly headDim: number;
  readonly capacity: number;
  length = 0;
  /** Positions the per-layer arrays can hold right now (<= capacity). */
  private allocated = 0;
  private readonly keys: Float32Array[] = [];
  private readonly values: Float32Array[] = [];

  constructor(layers: number, groups: number, headDim: number, capacity: number) {
    for (const [name, v] of [
      ['layers', layers],
      ['groups', groups],
      ['headDim', headDim],
      ['capacity', capacity],
    ] as const) {
      if (!Number.isSafeInteger(v) || v <= 0) throw new ChatGLMError('BAD_ARGUMENT', `KV cache ${name} must be a positive integer, got ${v}`);
    }
    this.layers = layers;
    this.groups = groups;
    this.headDim = headDim;
    this.capacity = capacity;
    for (let l = 0; l < layers; l++) {
      this.keys.push(new Float32Array(0));
      this.values.push(new Float32Array(0));
    }
  }

  truncate(n: number): void {
    if (n < this.length) this.length = Math.max(0, n);
  }

  /** Floats per position (all groups of one layer). */
  get rowSize(): number {
    return this.groups * this.headDim;
  }

  /** Makes room for positions [0, end); throws CONTEXT_OVERFLOW past the capacity. */
  reserve(end: number): void {
    if (end > this.capacity) {
      throw new ChatGLMError(
        'CONTEXT_OVERFLOW',
        `the sequence needs ${end} positions but the KV cache holds ${this.capacity}; use a shorter prompt or a larger context`,
      );
    }
    if (end <= this.allocated) return;
    const next = Math.min(this.capacity, Math.max(end, this.allocated * 2, 16));
    for (let l = 0; l < this.layers; l++) {
      const k = new Float32Array(next * this.rowSize);
      k.set(this.keys[l]!.subarray(0, this.allocated * this.rowSize));
      this.keys[l] = k;
      const v = new Float32Array(next * this.rowSize);
      v.set(this.values[l]!.subarray(0, this.allocated * this.rowSize));
      this.values[l] = v;
    }
    this.allocated = next;
  }

  keysOf(layer: number): Float32Array {
    return this.keys[layer]!;
  }

  valuesOf(layer: number): Float32Array {
    return this.values[layer]!;
  }
}

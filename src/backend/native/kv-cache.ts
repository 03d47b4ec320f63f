/**
 * KV cache of the native backend: per layer, f16 keys and values of the KV groups only, laid out
 * [position, group, headDim] (the layout native/ops.c reads). f16 halves the memory of the
 * reference's f32 cache, which is what lets a 32k context fit (ChatGLM3-6B-32k: 28 layers x 2 x
 * 32768 x 256 x 2 bytes = 0.9 GB). Storage grows by doubling up to `capacity`, so a cache created
 * for a long context costs nothing until it is used.
 */
import { ChatGLMError } from '../../errors.js';
import type { KVCache } from '../types.js';

export class NativeKVCache implements KVCache {
  readonly layers: number;
  readonly groups: number;
  readonly headDim: number;
  readonly capacity: number;
  length = 0;
  private allocated = 0;
  private readonly keys: Uint16Array[] = [];
  private readonly values: Uint16Array[] = [];

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
      this.keys.push(new Uint16Array(0));
      this.values.push(new Uint16Array(0));
    }
  }

  truncate(n: number): void {
    if (n < this.length) this.length = Math.max(0, n);
  }

  /** Positions the arrays hold right now. */
  get allocatedPositions(): number {
    return this.allocated;
  }

  /** Bytes of cache storage allocated now (all layers, keys and values). */
  get bytes(): number {
    return this.allocated * this.groups * this.headDim * 2 * 2 * this.layers;
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
    const next = Math.min(this.capacity, Math.max(end, this.allocated * 2, 64));
    const row = this.groups * this.headDim;
    for (let l = 0; l < this.layers; l++) {
      const k = new Uint16Array(next * row);
      k.set(this.keys[l]!.subarray(0, this.allocated * row));
      this.keys[l] = k;
      const v = new Uint16Array(next * row);
      v.set(this.values[l]!.subarray(0, this.allocated * row));
      this.values[l] = v;
    }
    this.allocated = next;
  }

  keysOf(layer: number): Uint16Array {
    return this.keys[layer]!;
  }

  valuesOf(layer: number): Uint16Array {
    return this.values[layer]!;
  }
}

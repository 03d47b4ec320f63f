/**
 * Storage shared by the backends' KV caches: per layer, keys and values of the KV groups only,
 * laid out [position, group, headDim]. Arrays grow by doubling up to `capacity`, so a cache created
 * for a 32k context reserves nothing until it is used. Subclasses choose the element type (f32 for
 * the reference backend, f16 bits for the native one) and the first allocation.
 */
import { ChatGLMError } from '../errors.js';
import type { KVCache } from './types.js';

type Storage = Float32Array | Uint16Array | Uint8Array;

export abstract class GrowingKVCache<A extends Storage> implements KVCache {
  readonly layers: number;
  readonly groups: number;
  readonly headDim: number;
  readonly capacity: number;
  length = 0;
  /** Positions the per-layer arrays can hold right now (<= capacity). */
  protected allocated = 0;
  private readonly keys: A[] = [];
  private readonly values: A[] = [];

  /** `alloc(n)` makes a zeroed array of n elements; `minPositions` is the smallest allocation. */
  protected constructor(
    layers: number,
    groups: number,
    headDim: number,
    capacity: number,
    private readonly alloc: (n: number) => A,
    private readonly minPositions: number,
  ) {
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
      this.keys.push(alloc(0));
      this.values.push(alloc(0));
    }
  }

  truncate(n: number): void {
    if (n < this.length) this.length = Math.max(0, n);
  }

  /** Elements per position (all groups of one layer); a subclass with blocked storage overrides it. */
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
    const next = Math.min(this.capacity, Math.max(end, this.allocated * 2, this.minPositions));
    const row = this.rowSize;
    const grow = (old: A): A => {
      const a = this.alloc(next * row);
      a.set(old.subarray(0, this.allocated * row));
      return a;
    };
    for (let l = 0; l < this.layers; l++) {
      this.keys[l] = grow(this.keys[l]!);
      this.values[l] = grow(this.values[l]!);
    }
    this.allocated = next;
  }

  keysOf(layer: number): A {
    return this.keys[layer]!;
  }

  valuesOf(layer: number): A {
    return this.values[layer]!;
  }
}

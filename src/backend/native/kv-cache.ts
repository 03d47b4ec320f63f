/**
 * KV cache of the native backend: f16 keys and values (the layout native/ops.c reads; storage and
 * growth in ../kv-storage.ts). f16 halves the memory of the reference's f32 cache, which is what
 * lets a 32k context fit (ChatGLM3-6B-32k: 28 layers x 2 x 32768 x 256 x 2 bytes = 0.9 GB).
 */
import { GrowingKVCache } from '../kv-storage.js';

export class NativeKVCache extends GrowingKVCache<Uint16Array> {
  constructor(layers: number, groups: number, headDim: number, capacity: number) {
    super(layers, groups, headDim, capacity, (n) => new Uint16Array(n), 64);
  }

  /** Positions the arrays hold right now. */
  get allocatedPositions(): number {
    return this.allocated;
  }

  /** Bytes of cache storage allocated now (all layers, keys and values). */
  get bytes(): number {
    return this.allocated * this.rowSize * 2 * 2 * this.layers;
  }
}

/**
 * KV cache of the reference backend: f32 keys and values (storage and growth in ../kv-storage.ts).
 */
import { GrowingKVCache } from '../kv-storage.js';

export class ReferenceKVCache extends GrowingKVCache<Float32Array> {
  constructor(layers: number, groups: number, headDim: number, capacity: number) {
    super(layers, groups, headDim, capacity, (n) => new Float32Array(n), 16);
  }
}

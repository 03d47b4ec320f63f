/**
 * KV cache of the reference backend: f32 keys and values (storage and growth in ../kv-storage.ts).
 * With kvType 'q8_0' the values are still f32 but rounded exactly as the native q8_0 cache stores
 * them, so the reference stays the oracle for that cache type.
 */
import { GrowingKVCache } from '../kv-storage.js';
import { checkKVType, type KVType } from '../kv-type.js';

export class ReferenceKVCache extends GrowingKVCache<Float32Array> {
  readonly kvType: KVType;

  constructor(layers: number, groups: number, headDim: number, capacity: number, kvType: KVType = 'f16') {
    checkKVType(kvType, headDim);
    super(layers, groups, headDim, capacity, (n) => new Float32Array(n), 16);
    this.kvType = kvType;
  }
}

/**
 * KV cache of the native backend: f16 keys and values (the layout native/ops.c reads; storage and
 * growth in ../kv-storage.ts), or q8_0 blocks along each head (kvType 'q8_0': 34 bytes per 32
 * values instead of 64). f16 halves the memory of the reference's f32 cache, which is what lets a
 * 32k context fit (ChatGLM3-6B-32k: 28 layers x 2 x 32768 x 256 x 2 bytes = 0.9 GB); q8_0 takes
 * that to 0.5 GB.
 */
import { GrowingKVCache } from '../kv-storage.js';
import { checkKVType, Q8_BLOCK_BYTES, type KVType } from '../kv-type.js';

export class NativeKVCache extends GrowingKVCache<Uint16Array | Uint8Array> {
  readonly kvType: KVType;

  constructor(layers: number, groups: number, headDim: number, capacity: number, kvType: KVType = 'f16') {
    checkKVType(kvType, headDim);
    super(layers, groups, headDim, capacity, (n) => (kvType === 'q8_0' ? new Uint8Array(n) : new Uint16Array(n)), 64);
    this.kvType = kvType;
  }

  /** Array elements per position: f16 values, or bytes of q8_0 blocks. */
  override get rowSize(): number {
    return this.kvType === 'q8_0' ? this.groups * (this.headDim / 32) * Q8_BLOCK_BYTES : this.groups * this.headDim;
  }

  /** Positions the arrays hold right now. */
  get allocatedPositions(): number {
    return this.allocated;
  }

  /** Bytes of cache storage allocated now (all layers, keys and values). */
  get bytes(): number {
    return this.allocated * this.rowSize * (this.kvType === 'q8_0' ? 1 : 2) * 2 * this.layers;
  }
}

/**
 * The element type of a KV cache. 'f16' is the default (the native backend stores f16; the
 * reference keeps f32). 'q8_0' stores keys and values as ggml q8_0 blocks along the head (an f16
 * scale per 32 values, 34 bytes instead of 64), about half the memory of f16; the reference
 * backend, as the oracle, keeps f32 values rounded exactly as the native q8_0 cache stores them.
 */
import { ChatGLMError } from '../errors.js';
import { f16BitsToF32, f32ToF16Bits } from '../numeric/half.js';

export type KVType = 'f16' | 'q8_0';

export const KV_TYPES: readonly KVType[] = ['f16', 'q8_0'];

/** Bytes of one q8_0 block: an f16 scale and 32 int8. */
export const Q8_BLOCK_BYTES = 34;

export function isKVType(s: string): s is KVType {
  return (KV_TYPES as readonly string[]).includes(s);
}

/** q8_0 needs whole blocks of 32 per head. */
export function checkKVType(kvType: KVType, headDim: number): void {
  if (kvType === 'q8_0' && headDim % 32 !== 0) {
    throw new ChatGLMError('BAD_ARGUMENT', `a q8_0 KV cache needs a head size that is a multiple of 32 (this model's is ${headDim}); use the f16 KV cache`);
  }
}

/** C's roundf: halves away from zero. */
function roundf(x: number): number {
  return x < 0 ? -Math.round(-x) : Math.round(x);
}

/**
 * Replaces x[off, off+n) (n a multiple of 32) with what a q8_0 cache stores for it, computed as
 * the native addon does in f32: d = max|x|/127 (kept in f16), q = roundf(x / d) with 1/d in f32.
 */
export function roundTripQ8(x: Float32Array, off: number, n: number): void {
  for (let b = off; b < off + n; b += 32) {
    let amax = 0;
    for (let i = 0; i < 32; i++) amax = Math.max(amax, Math.abs(x[b + i]!));
    const d = Math.fround(amax / 127);
    const id = d !== 0 ? Math.fround(1 / d) : 0;
    const dh = f16BitsToF32(f32ToF16Bits(d));
    // `| 0`: the stored int8 has no negative zero.
    for (let i = 0; i < 32; i++) x[b + i] = Math.fround(dh * (roundf(Math.fround(x[b + i]! * id)) | 0));
  }
}

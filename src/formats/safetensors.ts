/**
 * Safetensors reader (https://github.com/huggingface/safetensors): 8-byte little-endian header
 * length N, N bytes of JSON header, then the tensor data.
 */
import type { DType } from './tensor-source.js';

/** Bytes per element of each dtype safetensors can hold (quantized ggml blocks are not among them). */
export const SAFETENSORS_DTYPE_SIZE: Partial<Record<DType, number>> = {
  F32: 4,
  F16: 2,
  BF16: 2,
  I32: 4,
  I64: 8,
  I8: 1,
  U8: 1,
};

/** Product of a shape's dimensions (1 for a scalar). */
export function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

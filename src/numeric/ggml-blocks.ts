/**
 * Every ggml block-quantized weight type the engine reads, in one table: the 32-element formats of
 * ggml-quants.ts and the 256-element k-quants of ggml-kquants.ts. Row sizes and row dequantization
 * dispatch from here, so the loader and the backends name a type once.
 */
import { BLOCK_BYTES, QK, dequantizeRow, isGgmlQuantType } from './ggml-quants.js';
import type { GgmlQuantType } from './ggml-quants.js';
import { K_BLOCK_BYTES, QK_K, dequantizeRowK } from './ggml-kquants.js';
import { ChatGLMError } from '../errors.js';

/** Block types a weight matrix may be stored in (q8_K is an activation format only). */
export type BlockWeightType = GgmlQuantType | 'q2_K' | 'q3_K' | 'q4_K' | 'q5_K' | 'q6_K';

export const BLOCK_WEIGHT_TYPES: readonly BlockWeightType[] = ['q8_0', 'q4_0', 'q4_1', 'q5_0', 'q5_1', 'q2_K', 'q3_K', 'q4_K', 'q5_K', 'q6_K'];

export function isBlockWeightType(s: string): s is BlockWeightType {
  return (BLOCK_WEIGHT_TYPES as readonly string[]).includes(s);
}

/** Elements per block. */
export function blockElements(type: BlockWeightType): number {
  return isGgmlQuantType(type) ? QK : QK_K;
}

/** Bytes per block. */
export function blockBytes(type: BlockWeightType): number {
  return isGgmlQuantType(type) ? BLOCK_BYTES[type] : K_BLOCK_BYTES[type];
}

/** Bytes one row of `cols` weights takes; throws when cols is not a whole number of blocks. */
export function blockRowBytes(type: BlockWeightType, cols: number): number {
  const n = blockElements(type);
  if (!Number.isSafeInteger(cols) || cols <= 0 || cols % n !== 0) {
    throw new ChatGLMError('BAD_FORMAT', `a ${type} row needs a positive multiple of ${n} columns, got ${cols}`);
  }
  return (cols / n) * blockBytes(type);
}

/** Dequantizes one row (ggml's f32 arithmetic) into out[outOffset..outOffset + cols). */
export function dequantizeBlockRow(type: BlockWeightType, bytes: Uint8Array, byteOffset: number, cols: number, out: Float32Array, outOffset = 0): void {
  if (isGgmlQuantType(type)) dequantizeRow(type, bytes, byteOffset, cols, out, outOffset);
  else dequantizeRowK(type, bytes, byteOffset, cols, out, outOffset);
}

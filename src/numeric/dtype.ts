/**
 * Element types: how checkpoint formats name a tensor's encoding (DType) and which encodings a
 * backend matrix may hold (WeightType), with the bytes a row takes. Shared by formats/ and backend/,
 * which sit above this module and never import each other.
 */
import { ChatGLMError } from '../errors.js';
import { bytesPerRow } from './ggml-quants.js';

/** A tensor's encoding as the checkpoint formats report it. */
export type DType = 'F32' | 'F16' | 'BF16' | 'Q8_0' | 'Q4_0' | 'I32' | 'I64' | 'I8' | 'U8';

/** Weight element types a backend Matrix may hold. */
export type WeightType = 'f32' | 'f16' | 'bf16' | 'q8_0' | 'q4_0';

export function weightTypeOf(dtype: DType): WeightType {
  switch (dtype) {
    case 'F32':
      return 'f32';
    case 'F16':
      return 'f16';
    case 'BF16':
      return 'bf16';
    case 'Q8_0':
      return 'q8_0';
    case 'Q4_0':
      return 'q4_0';
    default:
      throw new ChatGLMError('UNSUPPORTED', `a ${dtype} tensor cannot be a weight matrix (F32, F16, BF16, Q8_0 or Q4_0)`);
  }
}

/** Bytes one row of `cols` weights occupies in the given encoding. */
export function rowBytes(type: WeightType, cols: number): number {
  switch (type) {
    case 'f32':
      return cols * 4;
    case 'f16':
    case 'bf16':
      return cols * 2;
    case 'q8_0':
    case 'q4_0':
      // ggml blocks of 32 weights with an f16 scale (throws when cols is not a multiple of 32)
      return bytesPerRow(type, cols);
  }
}

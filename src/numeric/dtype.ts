/**
 * Element types: how checkpoint formats name a tensor's encoding (DType) and which encodings a
 * backend matrix may hold (WeightType), with the bytes a row takes. Shared by formats/ and backend/,
 * which sit above this module and never import each other.
 */
import { ChatGLMError } from '../errors.js';
import { blockRowBytes } from './ggml-blocks.js';

/** A tensor's encoding as the checkpoint formats report it. */
export type DType =
  | 'F32'
  | 'F16'
  | 'BF16'
  | 'Q8_0'
  | 'Q4_0'
  | 'I32'
  | 'I64'
  | 'I8'
  | 'U8'
  // further ggml block types (GGUF files from llama-quantize: legacy 32-element and k-quant formats)
  | 'Q4_1'
  | 'Q5_0'
  | 'Q5_1'
  | 'Q2_K'
  | 'Q3_K'
  | 'Q4_K'
  | 'Q5_K'
  | 'Q6_K';

/** Weight element types a backend Matrix may hold. */
export type WeightType = 'f32' | 'f16' | 'bf16' | 'q8_0' | 'q4_0' | 'q4_1' | 'q5_0' | 'q5_1' | 'q2_K' | 'q3_K' | 'q4_K' | 'q5_K' | 'q6_K';

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
    case 'Q4_1':
      return 'q4_1';
    case 'Q5_0':
      return 'q5_0';
    case 'Q5_1':
      return 'q5_1';
    case 'Q2_K':
      return 'q2_K';
    case 'Q3_K':
      return 'q3_K';
    case 'Q4_K':
      return 'q4_K';
    case 'Q5_K':
      return 'q5_K';
    case 'Q6_K':
      return 'q6_K';
    default:
      throw new ChatGLMError('UNSUPPORTED', `a ${dtype} tensor cannot be a weight matrix (F32, F16, BF16 or a ggml block type)`);
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
    default:
      // ggml blocks of 32 or 256 weights (throws when cols is not a whole number of blocks)
      return blockRowBytes(type, cols);
  }
}

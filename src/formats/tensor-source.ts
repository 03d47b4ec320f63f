/**
 * The seam between checkpoint formats and the model: a checkpoint is a set of named tensors whose raw
 * little-endian bytes can be read one at a time (so a loader never holds two copies of the model).
 * Names are always Hugging Face ChatGLM names (`transformer.encoder.layers.0...`); a format whose
 * names differ (GGUF) maps them before handing them over.
 */
import type { DType } from '../numeric/dtype.js';

export type { DType } from '../numeric/dtype.js';

export interface TensorInfo {
  name: string;
  dtype: DType;
  /** PyTorch order: outermost first. A linear weight is [out, in]. */
  shape: number[];
}

export interface TensorData {
  info: TensorInfo;
  /** Raw bytes, little-endian, row-major (ggml block layout for the Q* types). */
  data: Uint8Array;
}

export interface TensorSource {
  /** Where the tensors come from, for error messages (a directory or a file). */
  readonly location: string;
  list(): TensorInfo[];
  has(name: string): boolean;
  /** Reads one tensor. Throws ChatGLMError naming the file on truncation or a bad shape. */
  read(name: string): Promise<TensorData>;
  close(): Promise<void>;
}

/**
 * The seam between checkpoint formats and the model: a checkpoint is a set of named tensors whose raw
 * little-endian bytes can be read one at a time (so a loader never holds two copies of the model).
 * Names are always Hugging Face ChatGLM names (`transformer.encoder.layers.0...`); a format whose
 * names differ (GGUF) maps them before handing them over.
 */
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

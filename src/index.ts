// Public API of chatglm.ts. Each layer exports its own surface; see README.
export { ChatGLMError } from './errors.js';
export type { ErrorCode } from './errors.js';
export type { Backend, Matrix, KVCache, WeightType } from './backend/types.js';
export type { TensorSource, TensorInfo, TensorData, DType } from './formats/tensor-source.js';
export type { Tokenizer, StreamDecoder, ModelFamily } from './tokenizer/types.js';

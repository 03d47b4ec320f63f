// Public API of chatglm.ts. Each layer exports its own surface; see README.
export { ChatGLMError } from './errors.js';
export type { ErrorCode } from './errors.js';
export type { Backend, Matrix, KVCache, WeightType } from './backend/types.js';
export type { TensorSource, TensorInfo, TensorData, DType } from './formats/tensor-source.js';
export type { Tokenizer, StreamDecoder, ModelFamily } from './tokenizer/types.js';
// Model, loading and backends (issue 2).
export { openModel, openCheckpoint } from './model/open.js';
export type { OpenModelOptions, OpenedModel, CheckpointHandle, QuantizeType } from './model/open.js';
export { GLMModel } from './model/glm.js';
export type { ForwardInput, GLMWeights, GLMLayerWeights } from './model/glm.js';
export { parseGLMConfig, loadGLMConfig, parameterCount } from './model/config.js';
export type { GLMConfig, RopeScaling } from './model/config.js';
export type { LoadProgress } from './model/load.js';
export { createBackend } from './backend/select.js';
export type { BackendName } from './backend/select.js';
export { ReferenceBackend } from './backend/reference/index.js';

// Public API of chatglm.ts. Each layer exports its own surface; see README.
export { ChatGLMError } from './errors.js';
export type { ErrorCode } from './errors.js';
export type { Backend, Matrix, KVCache, WeightType } from './backend/types.js';
export type { TensorSource, TensorInfo, TensorData, DType } from './formats/tensor-source.js';
export type { Tokenizer, StreamDecoder } from './tokenizer/types.js';
export type { ModelFamily } from './families/registry.js';
// Chat and generation.
export { loadChatModel, loadGgufTokenizer, bundledModelPath, ChatModel } from './api.js';
export type {
  LoadChatModelOptions,
  ChatCompletionRequest,
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionMessage,
  ChatCompletionMessageParam,
  ChatCompletionMessageToolCall,
  ChatCompletionTool,
  ChatCompletionUsage,
  GenerateIdsOptions,
} from './api.js';
export { ChatSession } from './chat/session.js';
export type { ChatReply, ReplyOptions } from './chat/session.js';
export type { ChatMessage, ChatRole, ChatFormat, ParsedReply } from './chat/types.js';
export { getChatFormat } from './families/registry.js';
export { generate, generateAll } from './generate/generator.js';
export type { GenerateOptions, GenerationStep } from './generate/generator.js';
export type { GenerationResult, GenerationUsage, FinishReason as GenerationFinishReason } from './generate/types.js';
export { CachedSequence } from './generate/sequence.js';
export { loadPromptCache, modelIdentity, savePromptCache, type PromptCacheLoad } from './generate/prompt-cache.js';
// Model, loading and backends.
export { openModel, openCheckpoint } from './api/open-model.js';
export type { OpenModelOptions, OpenedModel, CheckpointHandle, QuantizeType } from './model/open.js';
export { GLMModel } from './model/glm.js';
export type { ForwardInput, GLMWeights, GLMLayerWeights } from './model/glm.js';
export { parseGLMConfig, loadGLMConfig, parameterCount } from './model/config.js';
export type { GLMConfig, RopeScaling } from './model/config.js';
export type { LoadProgress } from './model/load.js';
export { createBackend } from './backend/select.js';
export type { BackendName, BackendOptions } from './backend/select.js';
export { NativeBackend, createNativeBackend, nativeAvailable } from './backend/native/index.js';
export type { NativeBackendOptions } from './backend/native/index.js';
export { ReferenceBackend } from './backend/reference/index.js';
// Tools and the agent loop.
export { defineTool, toOpenAITool } from './agent/tool.js';
export type { Tool, AnyTool, ToolDefinition, ToolContext, JsonSchema } from './agent/tool.js';
export { runAgent, CHATGLM3_CODE_INTERPRETER_PROMPT, DEFAULT_MAX_ROUNDS } from './agent/loop.js';
export type { RunAgentOptions, AgentEvent, AgentMessage, AgentToolMessage, AgentAssistantMessage, AgentToolCall } from './agent/loop.js';
export { builtinTools, randomNumberGeneratorTool, calculatorTool, currentTimeTool, BUILTIN_TOOL_NAMES } from './agent/builtin-tools.js';
export { evaluateExpression } from './agent/calculator.js';
export { loadToolsModule } from './agent/tools-module.js';
export { localCompleter } from './agent/completer.js';
export type { ChatCompleter, CompletionRequest, CompletionEvent, CompletionUsage } from './agent/completer.js';
export { remoteCompleter } from './agent/remote.js';
export type { RemoteCompleterOptions } from './agent/remote.js';
export { DEFAULT_OBSERVATION_CHARS, DEFAULT_TOOL_TIMEOUT_MS } from './agent/tool-runner.js';
export type { ToolErrorKind } from './agent/tool-runner.js';
export type { ChatCompletionToolChoice } from './chat/tool-choice.js';
// Code interpreter: a sandboxed, persistent Python (bubblewrap) for ChatGLM3's interpreter replies.
export {
  createCodeInterpreter,
  formatCodeObservation,
  CODE_OBSERVATION_MAX_CHARS,
  SANDBOX_PACKAGES,
  SANDBOX_WORK_DIR,
} from './agent/interpreter/index.js';
export type { CodeInterpreter, CodeInterpreterOptions } from './agent/interpreter/index.js';
export type { CodeRunResult, CodeRunError, CodeRunImage, CodeInterpreterLike } from './agent/interpreter-types.js';
// Getting models from the Hugging Face hub, and the cache shared with huggingface_hub.
export { pullModel } from './hub/pull.js';
export type { PullOptions, PullResult, PullEvent, PlannedFile } from './hub/pull.js';
export { hubCacheDir, resolveModelRef, parseModelRef, scanCache, removeCached } from './hub/cache.js';
export type { ModelRef, CachedModel, CachedSnapshot, RemoveResult } from './hub/cache.js';
export type { HubOptions } from './hub/client.js';
// Constrained decoding: grammars from JSON Schema, the sampler's mask hook, request mapping.
export { GrammarEngine } from './grammar/engine.js';
export type { CompiledGrammar, TokenMatcher } from './grammar/engine.js';
export { GrammarConstraint } from './grammar/grammar-constraint.js';
export type { GrammarConstraintOptions } from './grammar/grammar-constraint.js';
export { GrammarBuilder, type LiteralDialect } from './grammar/schema-to-ebnf.js';
export { replyGrammar, toolSpecs, type ReplyGrammar, type ReplyGrammarOptions, type ToolSpec } from './chat/reply-grammar.js';
export { applyTokenBitmask, type LogitsConstraint, type DisposableConstraint, type ConstraintFactory } from './generate/logits-constraint.js';
export { computeTokenBytes } from './tokenizer/token-bytes.js';
export { buildRequestConstraint, responseSchema, type ResponseFormat, type ToolChoice, type ConstraintRequest } from './api-constraints.js';
export { DEFAULT_TEMPERATURE, DEFAULT_TOP_P, DEFAULT_TOP_K, DEFAULT_REPETITION_PENALTY, DEFAULT_MAX_NEW_TOKENS, DEFAULT_MAX_REPLY_TOKENS, defaultReplyTokens } from './generate/defaults.js';
export { FAMILIES, FAMILY_NAMES, getFamily } from './families/registry.js';
export type { ModelFamilyInfo } from './families/types.js';
export type { FamilyFacts, ModelDirFiles, GgufVocabularyFacts } from './tokenizer/family-facts.js';

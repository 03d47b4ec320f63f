/** Tokenizers: SentencePiece BPE (ChatGLM2/3), tiktoken (GLM-4), and model-directory loading. */
export type { StreamDecoder, Tokenizer } from './types.js';
export {
  SentencePieceTokenizer,
  SentencePieceStreamDecoder,
  loadSentencePieceModel,
  PieceType,
  type SentencePieceEntry,
  type SentencePieceOptions,
} from './sentencepiece.js';
export {
  parseModelProto,
  writeModelProto,
  defaultNormalizerSpec,
  defaultTrainerSpec,
  ModelType,
  type ModelProtoFields,
  type NormalizerSpecFields,
  type TrainerSpecFields,
} from './sentencepiece-model.js';
export { ChatGLMTokenizer, type SentencePieceFamily } from './chatglm.js';
export {
  TikTokenTokenizer,
  loadTikToken,
  parseTikTokenRanks,
  CL100K_PATTERN,
  type TikTokenOptions,
} from './tiktoken.js';
export { loadTokenizerForModel, loadTokenizerFile, detectModelFamily, type TokenizerFileKind } from './load.js';
export type { FamilyFacts, ModelDirFiles, GgufVocabularyFacts } from './family-facts.js';

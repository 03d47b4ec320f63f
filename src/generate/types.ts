/**
 * What generation needs from a model: a KV cache per sequence and a forward step over several
 * sequences. Written structurally so generate/ depends on the model's shape, not its classes.
 */
import type { KVCache } from '../backend/types.js';

export interface ForwardInput {
  cache: KVCache;
  ids: readonly number[];
  /** Logits for every position instead of only the last one. */
  allLogits?: boolean;
}

export interface CausalLM {
  readonly config: { readonly seqLength: number; readonly vocabSize: number };
  /** A fresh, empty cache that holds up to `capacity` positions (default: the model's own limit). */
  newCache(capacity?: number): KVCache;
  /** Runs the ids of every input through the model, appending them to that input's cache. */
  forward(inputs: ForwardInput[]): Float32Array[];
}

/**
 * A model whose forward step completes later: a batch scheduler runs it together with other
 * sequences' steps (continuous batching in the server). generate() accepts either kind.
 */
export interface BatchedCausalLM {
  readonly config: { readonly seqLength: number; readonly vocabSize: number };
  newCache(capacity?: number): KVCache;
  forward(inputs: ForwardInput[]): Promise<Float32Array[]>;
}

export type FinishReason = 'stop' | 'length' | 'abort';

export interface GenerationUsage {
  /** Prompt ids, prefix included (cached or not). */
  prompt_tokens: number;
  /** Generated ids, the stop id included (as ChatGLM's OpenAI demo counts them). */
  completion_tokens: number;
  total_tokens: number;
  /** Prompt ids that actually ran through the model (the rest came from the KV cache). */
  prefill_tokens: number;
  prefill_tokens_per_second: number;
  decode_tokens_per_second: number;
  /** Milliseconds from the call to the first generated token. */
  time_to_first_token_ms: number;
}

export interface GenerationResult {
  /** Generated ids, without the stop id. */
  ids: number[];
  /** Decoded text of `ids`, cut before a stop string ('' when no tokenizer was given). */
  text: string;
  /** The stop id that ended generation, if one did. */
  stopId?: number;
  /** The stop string that ended generation, if one did. */
  stopString?: string;
  finishReason: FinishReason;
  usage: GenerationUsage;
  /** The seed that was used (given or drawn), so a sampled run can be repeated. */
  seed: number;
}

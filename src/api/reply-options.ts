/**
 * A chat completion request's sampling and length fields as the ReplyOptions that flow on to
 * ChatSession, generate() and the sampler, with the defaults of generate/defaults.ts.
 */
import type { ReplyOptions } from '../chat/session.js';
import type { PromptPiece } from '../chat/types.js';
import type { ConstraintFactory } from '../generate/logits-constraint.js';
import {
  DEFAULT_REPETITION_PENALTY,
  DEFAULT_TEMPERATURE,
  DEFAULT_TOP_K,
  DEFAULT_TOP_P,
  defaultReplyTokens,
} from '../generate/defaults.js';
import type { ChatCompletionRequest } from './types.js';

export interface ReplyContext {
  contextLength: number;
  /** Whether the prompt offers tools (the reply is parsed for calls). */
  tools: boolean;
  /** Pieces written at the start of the reply (a forced tool call without the grammar). */
  replyPrefix?: readonly PromptPiece[];
  constraint?: ConstraintFactory;
}

export function replyOptionsOf(request: ChatCompletionRequest, ctx: ReplyContext): ReplyOptions {
  const stop = request.stop === undefined ? [] : Array.isArray(request.stop) ? request.stop : [request.stop];
  return {
    temperature: request.temperature ?? DEFAULT_TEMPERATURE,
    topP: request.top_p ?? DEFAULT_TOP_P,
    topK: request.top_k ?? DEFAULT_TOP_K,
    repetitionPenalty: request.repetition_penalty ?? DEFAULT_REPETITION_PENALTY,
    maxNewTokens: request.max_tokens ?? defaultReplyTokens(ctx.contextLength),
    stop,
    tools: ctx.tools,
    truncation: request.truncation ?? 'drop_oldest',
    ...(ctx.replyPrefix !== undefined ? { replyPrefix: ctx.replyPrefix } : {}),
    ...(request.seed !== undefined ? { seed: request.seed } : {}),
    ...(request.signal !== undefined ? { signal: request.signal } : {}),
    ...(ctx.constraint !== undefined ? { constraint: ctx.constraint } : {}),
  };
}

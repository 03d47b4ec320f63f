/**
 * The two generating endpoints on a slot: /v1/chat/completions (the model's chat template,
 * tool calls) and /v1/completions (a raw prompt). Both run the ordinary ChatSession/generate()
 * code; only the model they call is the slot's batch lane, so their forward steps join the batch.
 */
import { randomBytes } from 'node:crypto';
import type { ChatCompletionUsage, ChatModel, FinishReason } from '../api.js';
import type { JsonValue } from '../chat/python-literal.js';
import { encodePieces } from '../chat/prompt-pieces.js';
import { ChatSession, type ChatReply } from '../chat/session.js';
import { generate, type GenerationStep } from '../generate/generator.js';
import type { GenerationResult } from '../generate/types.js';
import { ChatGLMError } from '../errors.js';
import { contextExceeded } from './errors.js';
import type { ChatRequest, CompletionRequest, SamplingFields } from './requests.js';
import type { SlotPool, Slot } from './slots.js';
import type { SseWriter } from './sse.js';
import type { ServerMetrics } from './metrics.js';

export interface GenerationContext {
  chat: ChatModel;
  pool: SlotPool;
  metrics: ServerMetrics;
  signal: AbortSignal;
  /** performance.now() when the request arrived (for time to first token). */
  arrived: number;
}

/** OpenAI's usage object, with how much of the prompt came from the slot's cache. */
export interface WireUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
}

function wireUsage(u: ChatCompletionUsage): WireUsage {
  return {
    prompt_tokens: u.prompt_tokens,
    completion_tokens: u.completion_tokens,
    total_tokens: u.total_tokens,
    prompt_tokens_details: { cached_tokens: u.prompt_tokens - u.prefill_tokens },
  };
}

/** The token limit of a request whose prompt has `promptTokens` ids: its max_tokens, capped by the slot's context. */
function tokenLimit(ctx: GenerationContext, promptTokens: number, req: SamplingFields): number {
  const ctxSize = ctx.pool.contextSize;
  if (promptTokens >= ctxSize) throw contextExceeded(promptTokens, ctxSize);
  return Math.min(req.maxTokens ?? ctxSize, ctxSize - promptTokens);
}

function samplingOptions(req: SamplingFields, signal: AbortSignal): { temperature: number; topP: number; topK: number; repetitionPenalty: number; seed?: number; signal: AbortSignal } {
  return {
    temperature: req.temperature,
    topP: req.topP,
    topK: req.topK,
    repetitionPenalty: req.repetitionPenalty,
    ...(req.seed !== undefined ? { seed: req.seed } : {}),
    signal,
  };
}

function record(ctx: GenerationContext, result: GenerationResult, queued: number): void {
  const u = result.usage;
  ctx.metrics.promptTokens += u.prompt_tokens;
  ctx.metrics.cachedPromptTokens += u.prompt_tokens - u.prefill_tokens;
  if (u.completion_tokens > 0) ctx.metrics.firstToken((queued + u.time_to_first_token_ms) / 1000);
}

async function withSlot<T>(ctx: GenerationContext, prompt: readonly number[], run: (slot: Slot, queuedMs: number) => Promise<T>): Promise<T> {
  const slot = await ctx.pool.acquire(prompt, ctx.signal);
  const queuedMs = performance.now() - ctx.arrived;
  try {
    return await run(slot, queuedMs);
  } finally {
    ctx.pool.release(slot);
  }
}

// ---------------------------------------------------------------- chat

export async function chatCompletion(ctx: GenerationContext, req: ChatRequest, sse: SseWriter | undefined): Promise<unknown> {
  const { chat } = ctx;
  const messages = chat.chatMessagesOf({ messages: req.messages, ...(req.tools !== undefined ? { tools: req.tools } : {}) });
  const hasTools = req.tools !== undefined || messages.some((m) => m.role === 'system' && m.tools !== undefined);
  const prompt = encodePieces(chat.format.render(messages).pieces, chat.tokenizer);
  const maxNewTokens = tokenLimit(ctx, prompt.length, req);
  const id = `chatcmpl-${randomBytes(12).toString('hex')}`;
  const created = Math.floor(Date.now() / 1000);
  const chunk = (delta: Record<string, unknown>, finish: FinishReason | null): unknown => ({
    id,
    object: 'chat.completion.chunk',
    created,
    model: chat.name,
    choices: [{ index: 0, delta, finish_reason: finish, logprobs: null }],
  });

  // Compiled before a slot is taken, so a schema that cannot be compiled is a 400 and costs no slot.
  const constraint = await chat.buildConstraint({
    ...(req.tools !== undefined ? { tools: req.tools as unknown as JsonValue } : {}),
    ...(req.toolChoice !== undefined ? { tool_choice: req.toolChoice } : {}),
    ...(req.responseFormat !== undefined ? { response_format: req.responseFormat } : {}),
  });

  return withSlot(ctx, prompt, async (slot, queuedMs) => {
    const session = new ChatSession({ model: slot.lane, tokenizer: chat.tokenizer, format: chat.format, contextLength: ctx.pool.contextSize }, slot.sequence);
    const stream = session.stream(messages, {
      ...samplingOptions(req, ctx.signal),
      maxNewTokens,
      stop: req.stop,
      tools: hasTools,
      truncation: 'error',
      ...(constraint !== undefined ? { constraint } : {}),
    });
    sse?.send(chunk({ role: 'assistant', content: '' }, null));
    let reply: ChatReply;
    for (;;) {
      const r = await stream.next();
      if (r.done) {
        reply = r.value;
        break;
      }
      sse?.send(chunk({ content: r.value }, null));
    }
    record(ctx, reply.result, queuedMs);
    const done = chat.completionOf(id, created, reply);
    const { message, finish_reason } = done.choices[0];
    const usage = wireUsage(done.usage);
    if (sse === undefined) {
      return {
        id,
        object: 'chat.completion',
        created,
        model: chat.name,
        system_fingerprint: null,
        choices: [{ index: 0, message: { role: 'assistant', content: message.content, ...(message.tool_calls !== undefined ? { tool_calls: message.tool_calls } : {}), refusal: null }, finish_reason, logprobs: null }],
        usage,
      };
    }
    if (message.tool_calls !== undefined) {
      // ChatGLM writes a call whole before it can be parsed: it goes out in one delta.
      sse.send(chunk({ tool_calls: message.tool_calls.map((c, index) => ({ index, ...c })) }, null));
    } else if (message.invalid_tool_call !== undefined) {
      sse.send(chunk({ content: message.invalid_tool_call.content }, null));
    }
    sse.send(chunk({}, finish_reason));
    if (req.includeUsage) sse.send({ id, object: 'chat.completion.chunk', created, model: chat.name, choices: [], usage });
    sse.end();
    return undefined;
  });
}

// ---------------------------------------------------------------- raw completions

export async function textCompletion(ctx: GenerationContext, req: CompletionRequest, sse: SseWriter | undefined): Promise<unknown> {
  const { chat } = ctx;
  const prompt = encodePieces([...chat.format.prefix.map((special) => ({ special })), { text: req.prompt }], chat.tokenizer);
  const maxNewTokens = tokenLimit(ctx, prompt.length, req);
  const id = `cmpl-${randomBytes(12).toString('hex')}`;
  const created = Math.floor(Date.now() / 1000);
  const chunk = (text: string, finish: FinishReason | null): unknown => ({
    id,
    object: 'text_completion',
    created,
    model: chat.name,
    choices: [{ index: 0, text, finish_reason: finish, logprobs: null }],
  });
  return withSlot(ctx, prompt, async (slot, queuedMs) => {
    const it = generate(slot.lane, prompt, {
      ...samplingOptions(req, ctx.signal),
      maxNewTokens,
      sequence: slot.sequence,
      tokenizer: chat.tokenizer,
      vocabLimit: chat.tokenizer.vocabSize,
      stopIds: req.ignoreEos ? [] : chat.format.stopIds(chat.tokenizer),
      stopStrings: req.stop,
    });
    let result: GenerationResult;
    let step: IteratorResult<GenerationStep, GenerationResult>;
    while (!(step = await it.next()).done) {
      if (step.value.text !== '') sse?.send(chunk(step.value.text, null));
    }
    result = step.value;
    if (result.finishReason === 'abort') throw new ChatGLMError('ABORTED', 'the request was aborted');
    record(ctx, result, queuedMs);
    const finish: FinishReason = result.finishReason === 'length' ? 'length' : 'stop';
    const usage = wireUsage(result.usage);
    if (sse === undefined) {
      return { id, object: 'text_completion', created, model: chat.name, system_fingerprint: null, choices: [{ index: 0, text: result.text, finish_reason: finish, logprobs: null }], usage };
    }
    sse.send(chunk('', finish));
    if (req.includeUsage) sse.send({ id, object: 'text_completion', created, model: chat.name, choices: [], usage });
    sse.end();
    return undefined;
  });
}

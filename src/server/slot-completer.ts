/**
 * A ChatCompleter (the agent loop's model interface) that generates on the server's slots, so an
 * agent run on /chatglm/agent joins the same batched forward steps, queue and limits as
 * /v1/chat/completions. It mirrors chatCompletion() in generation.ts, yielding events instead of
 * writing SSE chunks.
 */
import type { ChatModel } from '../api.js';
import type { JsonValue } from '../chat/python-literal.js';
import { encodePieces } from '../chat/prompt-pieces.js';
import { ChatSession, type ChatReply } from '../chat/session.js';
import { nativeInvalidCalls, type ChatCompleter, type CompletionEvent, type CompletionRequest } from '../agent/completer.js';
import { ChatGLMError } from '../errors.js';
import { contextExceeded } from './errors.js';
import type { ServerMetrics } from './metrics.js';
import type { SlotPool } from './slots.js';

export function slotCompleter(chat: ChatModel, pool: SlotPool, metrics: ServerMetrics): ChatCompleter {
  return {
    name: chat.name,
    family: chat.family,
    async *complete(request: CompletionRequest): AsyncGenerator<CompletionEvent, void, void> {
      const offerTools = request.tools !== undefined && request.tools.length > 0 && request.tool_choice !== 'none';
      const tools = offerTools ? (request.tools!.map((t) => t.function) as unknown as JsonValue) : undefined;
      const messages = chat.chatMessagesOf({ messages: request.messages.flatMap(nativeInvalidCalls), ...(tools !== undefined ? { tools } : {}) });
      const hasTools = messages.some((m) => m.role === 'system' && m.tools !== undefined);
      const prompt = encodePieces(chat.format.render(messages).pieces, chat.tokenizer);
      if (prompt.length >= pool.contextSize) throw contextExceeded(prompt.length, pool.contextSize);
      const maxNewTokens = Math.min(request.max_tokens ?? pool.contextSize, pool.contextSize - prompt.length);
      const forced = offerTools && request.tool_choice !== undefined && request.tool_choice !== 'auto';
      const constraint = forced ? await chat.buildConstraint({ tools: tools!, tool_choice: request.tool_choice! }) : undefined;
      const signal = request.signal ?? new AbortController().signal;
      const arrived = performance.now();
      const slot = await pool.acquire(prompt, signal);
      const queuedMs = performance.now() - arrived;
      try {
        const session = new ChatSession({ model: slot.lane, tokenizer: chat.tokenizer, format: chat.format, contextLength: pool.contextSize }, slot.sequence);
        const stream = session.stream(messages, {
          temperature: request.temperature ?? 0.8,
          topP: request.top_p ?? 0.8,
          topK: 0,
          repetitionPenalty: 1,
          maxNewTokens,
          stop: [],
          tools: hasTools,
          truncation: 'error',
          signal,
          ...(request.seed !== undefined ? { seed: request.seed } : {}),
          ...(constraint !== undefined ? { constraint } : {}),
        });
        let reply: ChatReply;
        for (;;) {
          const r = await stream.next();
          if (r.done) {
            reply = r.value;
            break;
          }
          if (r.value !== '') yield { type: 'text', delta: r.value };
        }
        if (reply.result.finishReason === 'abort') throw new ChatGLMError('ABORTED', 'the request was aborted');
        const u = reply.result.usage;
        metrics.promptTokens += u.prompt_tokens;
        metrics.cachedPromptTokens += u.prompt_tokens - u.prefill_tokens;
        if (u.completion_tokens > 0) metrics.firstToken((queuedMs + u.time_to_first_token_ms) / 1000);
        const done = chat.completionOf('agent', Math.floor(Date.now() / 1000), reply);
        const { message, finish_reason } = done.choices[0];
        // The decode speed travels with the usage so the page can show tokens/s under the reply.
        const usage = { prompt_tokens: u.prompt_tokens, completion_tokens: u.completion_tokens, total_tokens: u.total_tokens, decode_tokens_per_second: u.decode_tokens_per_second };
        yield { type: 'message', message, finishReason: finish_reason, usage };
      } finally {
        pool.release(slot);
      }
    },
  };
}

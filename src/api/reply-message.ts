/**
 * The ChatMessage -> OpenAI direction of the adapter: a parsed reply as a ChatCompletion message.
 * A tool call gets an id, and its exact text is remembered under that id so that a later request
 * that sends the call back replays it verbatim (request-messages.ts reads the store).
 */
import { randomBytes } from 'node:crypto';
import { ChatGLMError } from '../errors.js';
import type { ChatReply } from '../chat/session.js';
import type { ParsedReply } from '../chat/types.js';
import type { ChatCompletion, ChatCompletionMessage, FinishReason } from './types.js';

/** The exact header metadata and content of calls this model produced, by call id. */
export type CallTextStore = Map<string, { metadata: string; content: string }>;

/** Bounded: older calls fall back to being re-rendered from their arguments. */
const MAX_REMEMBERED_CALLS = 1000;

export function completionOf(id: string, created: number, model: string, reply: ChatReply, calls: CallTextStore): ChatCompletion {
  if (reply.result.finishReason === 'abort') throw new ChatGLMError('ABORTED', 'the request was aborted');
  const { message, toolCall } = replyMessage(reply.parsed, calls);
  const finish: FinishReason = toolCall ? 'tool_calls' : reply.result.finishReason === 'length' ? 'length' : 'stop';
  return {
    id,
    object: 'chat.completion',
    created,
    model,
    choices: [{ index: 0, message, finish_reason: finish }],
    usage: reply.result.usage,
    seed: reply.result.seed,
  };
}

export function replyMessage(p: ParsedReply, calls: CallTextStore): { message: ChatCompletionMessage; toolCall: boolean } {
  const toolCall = (text: string, name: string, args: unknown): { message: ChatCompletionMessage; toolCall: boolean } => {
    const callId = `call_${randomBytes(12).toString('hex')}`;
    const last = p.segments[p.segments.length - 1]!;
    calls.set(callId, { metadata: last.metadata.trim(), content: last.content });
    if (calls.size > MAX_REMEMBERED_CALLS) calls.delete(calls.keys().next().value!);
    return {
      message: {
        role: 'assistant',
        content: text === '' ? null : text,
        tool_calls: [{ id: callId, type: 'function', function: { name, arguments: JSON.stringify(args) } }],
      },
      toolCall: true,
    };
  };
  switch (p.type) {
    case 'text':
      return { message: { role: 'assistant', content: p.content }, toolCall: false };
    case 'tool_call':
      return toolCall(p.text, p.name, p.arguments);
    case 'code':
      return toolCall(p.text, p.name, { code: p.code });
    case 'invalid_tool_call':
      return {
        message: { role: 'assistant', content: p.text === '' ? null : p.text, invalid_tool_call: { name: p.name, error: p.error, content: p.content } },
        toolCall: false,
      };
  }
}

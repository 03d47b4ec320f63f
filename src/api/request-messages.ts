/**
 * OpenAI-style request messages (and a tool list) to the ChatGLM messages a chat format renders.
 * The one path from a conversation to a prompt: createChatCompletion, `chatglm chat --messages` and
 * `chatglm prompt --messages` all go through it, so `prompt` shows exactly what `chat` runs.
 */
import { ChatGLMError } from '../errors.js';
import { contentText, parseChatMessages } from '../chat/messages.js';
import type { JsonValue } from '../chat/python-literal.js';
import { getFamily } from '../families/registry.js';
import type { ChatFormat, ChatMessage } from '../chat/types.js';

/**
 * A request message as read here: api.ts's ChatCompletionMessageParam fits it (spelled out
 * structurally so that this module does not import api.ts, which imports it).
 */
export interface RequestMessage {
  role: string;
  content?: unknown;
  tool_calls?: unknown;
}

/** An assistant tool call in OpenAI's shape (checked before use: it may come from a JSON file). */
interface RequestToolCall {
  id: string;
  function: { name: string; arguments: string };
}

/** The exact text of a tool call this engine produced (header metadata and content), by call id. */
export type KnownCallText = (callId: string) => { metadata: string; content: string } | undefined;

/** The system message(s) that carry `tools`, with the caller's own system text kept (the family decides where). */
export function toolSystemMessages(format: ChatFormat, tools: JsonValue, system: string | undefined): ChatMessage[] {
  return getFamily(format.name).toolSystemMessages(tools, system);
}

/** Converts request messages; `tools` (when given) goes into the system prompt with any leading system message. */
export function requestToChatMessages(
  messages: readonly RequestMessage[],
  tools: JsonValue | undefined,
  format: ChatFormat,
  knownCall: KnownCallText = () => undefined,
  /** Names the source in errors: the API call, or the messages file of a CLI command. */
  source = 'createChatCompletion',
): ChatMessage[] {
  if (!Array.isArray(messages) || messages.length === 0) {
    throw new ChatGLMError('BAD_ARGUMENT', `${source}: messages must be a non-empty array like [{"role": "user", "content": "Hi"}]`);
  }
  const out: ChatMessage[] = [];
  messages.forEach((m, i) => {
    const where = `messages[${i}]`;
    if (m.role === 'assistant' && m.tool_calls !== undefined && !Array.isArray(m.tool_calls)) {
      throw new ChatGLMError('BAD_ARGUMENT', `${where}: tool_calls must be an array of {"id", "type": "function", "function": {"name", "arguments"}}`);
    }
    if (m.role === 'assistant' && m.tool_calls !== undefined && m.tool_calls.length > 0) {
      const text = contentText(m.content, where);
      if (text !== '') out.push({ role: 'assistant', content: text });
      for (const call of m.tool_calls as unknown[]) out.push(callMessage(call, where, format, knownCall));
      return;
    }
    out.push(...parseChatMessages([m], where));
  });
  const last = out[out.length - 1]!;
  if (last.role === 'assistant') {
    throw new ChatGLMError('BAD_ARGUMENT', `${source}: the last message is from the assistant; end with a user or tool message`);
  }
  if (tools !== undefined) {
    // A leading system message keeps its text; one that carries its own tools is replaced.
    const first = out[0]?.role === 'system' ? out.shift()! : undefined;
    out.unshift(...toolSystemMessages(format, tools, first?.tools === undefined ? first?.content : undefined));
  }
  return out;
}

/** An assistant tool call as the model writes it: the exact text when this engine produced it. */
function callMessage(value: unknown, where: string, format: ChatFormat, knownCall: KnownCallText): ChatMessage {
  // Messages may come from a JSON file (chat --messages): check the shape before reading it.
  const fn: unknown = typeof value === 'object' && value !== null ? (value as { function?: unknown }).function : undefined;
  if (typeof fn !== 'object' || fn === null || typeof (fn as { name?: unknown }).name !== 'string' || typeof (fn as { arguments?: unknown }).arguments !== 'string') {
    throw new ChatGLMError('BAD_ARGUMENT', `${where}: a tool call needs "function": {"name": string, "arguments": JSON string}`);
  }
  const call = value as RequestToolCall;
  const known = knownCall(call.id);
  if (known !== undefined) return { role: 'assistant', metadata: known.metadata, content: known.content };
  let args: JsonValue;
  try {
    args = JSON.parse(call.function.arguments) as JsonValue;
  } catch {
    throw new ChatGLMError('BAD_ARGUMENT', `${where}: tool call ${call.function.name} has arguments that are not JSON`);
  }
  return getFamily(format.name).toolCallMessage(call.function.name, args, call.function.arguments);
}

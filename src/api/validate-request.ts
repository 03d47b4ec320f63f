/**
 * Checks a Chat Completions request before anything runs, so that a field this engine does not
 * support is an error that names it instead of being silently ignored, and an invalid value is an
 * error that names the field and the accepted values. (tool_choice and response_format are checked
 * where they are implemented.)
 */
import { ChatGLMError } from '../errors.js';

function fail(field: string, problem: string, source = 'createChatCompletion'): never {
  throw new ChatGLMError('BAD_ARGUMENT', `${source}: ${field} ${problem}`);
}

function isNumber(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

/** A message content: a string, or an array of {type: "text", text} parts. */
function isContent(v: unknown): boolean {
  if (typeof v === 'string') return true;
  return Array.isArray(v) && v.every((p) => typeof p === 'object' && p !== null && (p as { type?: unknown }).type === 'text' && typeof (p as { text?: unknown }).text === 'string');
}

/**
 * Throws a BAD_ARGUMENT ChatGLMError naming the first field that is unsupported or invalid.
 * `request` is read as plain data: it may come from JSON (a server, a file), not only typed code.
 */
export function validateChatCompletionRequest(request: unknown): void {
  if (typeof request !== 'object' || request === null || Array.isArray(request)) fail('request', 'must be an object like {"messages": [...]}');
  const r = request as Record<string, unknown>;

  // Fields of the OpenAI API that this engine does not implement: only their neutral value passes.
  if (r['n'] !== undefined && r['n'] !== null && r['n'] !== 1) fail('n', `is not supported: one choice per request (n: 1), got ${JSON.stringify(r['n'])}`);
  if (r['logprobs'] !== undefined && r['logprobs'] !== null && r['logprobs'] !== false) fail('logprobs', `is not supported, got ${JSON.stringify(r['logprobs'])}`);
  if (r['top_logprobs'] !== undefined && r['top_logprobs'] !== null && r['top_logprobs'] !== 0) fail('top_logprobs', `is not supported, got ${JSON.stringify(r['top_logprobs'])}`);
  for (const f of ['frequency_penalty', 'presence_penalty']) {
    const v = r[f];
    if (v === undefined || v === null) continue;
    if (!isNumber(v)) fail(f, `must be a number, got ${JSON.stringify(v)}`);
    if (v !== 0) fail(f, `is not supported (only 0); use repetition_penalty (e.g. 1.1) to discourage repeats, got ${v}`);
  }

  // Sampling and length.
  const num = (f: string, ok: (v: number) => boolean, what: string): void => {
    const v = r[f];
    // null means "the default", as in OpenAI's API (and `??` below in createChatCompletion).
    if (v === undefined || v === null) return;
    // JSON.stringify(NaN) is "null": say NaN when that is what was given.
    if (typeof v === 'number' && Number.isNaN(v)) fail(f, `is NaN; it must be ${what}`);
    if (!isNumber(v) || !ok(v)) fail(f, `must be ${what}, got ${JSON.stringify(v) ?? String(v)}`);
  };
  num('temperature', (v) => v >= 0, 'a number >= 0 (0 = greedy)');
  num('top_p', (v) => v > 0 && v <= 1, 'a number in (0, 1]');
  num('top_k', (v) => Number.isInteger(v) && v >= 0, 'an integer >= 0 (0 = off)');
  num('repetition_penalty', (v) => v > 0, 'a number > 0 (1 = off)');
  num('max_tokens', (v) => Number.isSafeInteger(v) && v >= 1, 'an integer >= 1 (leave it out for the default)');
  num('seed', (v) => Number.isSafeInteger(v), 'an integer');

  const stop = r['stop'];
  if (stop !== undefined && stop !== null) {
    const list = Array.isArray(stop) ? stop : [stop];
    list.forEach((s, i) => {
      const where = Array.isArray(stop) ? `stop[${i}]` : 'stop';
      if (typeof s !== 'string') fail(where, `must be a string, got ${JSON.stringify(s)}`);
      if (s === '') fail(where, 'is an empty string (it would stop before the first token); remove it');
    });
  }
  if (r['stream'] !== undefined && r['stream'] !== null && typeof r['stream'] !== 'boolean') fail('stream', `must be true or false, got ${JSON.stringify(r['stream'])}`);

  validateRequestMessages(r['messages']);
}

/** The messages of a request: each an object with a role and a content (see validateChatCompletionRequest). */
export function validateRequestMessages(messages: unknown, source = 'createChatCompletion'): void {
  if (!Array.isArray(messages) || messages.length === 0) fail('messages', 'must be a non-empty array of {"role", "content"} objects', source);
  messages.forEach((m: unknown, i) => {
    const where = `messages[${i}]`;
    if (typeof m !== 'object' || m === null || Array.isArray(m)) fail(where, 'must be an object like {"role": "user", "content": "Hi"}', source);
    const msg = m as Record<string, unknown>;
    if (typeof msg['role'] !== 'string') fail(`${where}.role`, 'is missing (system, user, assistant or tool)', source);
    const content = msg['content'];
    // An assistant message that calls tools may have no content (OpenAI sends null).
    const callsTools = msg['role'] === 'assistant' && Array.isArray(msg['tool_calls']) && msg['tool_calls'].length > 0;
    if (content === undefined || content === null) {
      if (!callsTools) fail(`${where}.content`, 'is missing; every message needs a "content" string (an assistant message with tool_calls may have null)', source);
      return;
    }
    if (!isContent(content)) fail(`${where}.content`, 'must be a string or an array of {"type": "text", "text": "..."} parts', source);
  });
}

/** The request without its top-level null fields: null means "the default" in OpenAI's API. */
export function withoutNullFields<T extends object>(request: T): T {
  return Object.fromEntries(Object.entries(request).filter(([, v]) => v !== null)) as T;
}

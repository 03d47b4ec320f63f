/**
 * Checking messages that come from outside (JSON files, API callers) and mapping OpenAI-style
 * roles onto ChatGLM's: `tool` and `function` results are `observation`s.
 */
import { ChatGLMError } from '../errors.js';
import type { JsonValue } from './python-literal.js';
import type { ChatMessage, ChatRole } from './types.js';

const ROLE_MAP: Record<string, ChatRole> = {
  system: 'system',
  user: 'user',
  assistant: 'assistant',
  observation: 'observation',
  tool: 'observation',
  function: 'observation',
};

/** Text of an OpenAI content value: a string, null, or an array of {type: 'text', text} parts. */
export function contentText(content: unknown, where: string): string {
  if (content === null || content === undefined) return '';
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .map((part, i) => {
        if (part !== null && typeof part === 'object' && (part as Record<string, unknown>)['type'] === 'text' && typeof (part as Record<string, unknown>)['text'] === 'string') {
          return (part as Record<string, string>)['text'];
        }
        throw new ChatGLMError('BAD_ARGUMENT', `${where}: content part ${i} is not a {"type": "text", "text": ...} part (only text is supported)`);
      })
      .join('');
  }
  throw new ChatGLMError('BAD_ARGUMENT', `${where}: content must be a string`);
}

/**
 * Validates plain ChatGLM messages ({role, content, metadata?, tools?}); `where` names the source
 * (a file) in error messages.
 */
export function parseChatMessages(value: unknown, where: string): ChatMessage[] {
  if (!Array.isArray(value)) throw new ChatGLMError('BAD_ARGUMENT', `${where}: expected a JSON array of messages like [{"role": "user", "content": "Hi"}]`);
  return value.map((m, i) => {
    if (m === null || typeof m !== 'object' || Array.isArray(m)) throw new ChatGLMError('BAD_ARGUMENT', `${where}: message ${i} is not an object`);
    const o = m as Record<string, unknown>;
    const role = typeof o['role'] === 'string' ? ROLE_MAP[o['role']] : undefined;
    if (role === undefined) {
      throw new ChatGLMError('BAD_ARGUMENT', `${where}: message ${i} has role ${JSON.stringify(o['role'])}; use system, user, assistant, observation (or tool)`);
    }
    const msg: ChatMessage = { role, content: contentText(o['content'], `${where}: message ${i}`) };
    if (o['metadata'] !== undefined) {
      if (typeof o['metadata'] !== 'string') throw new ChatGLMError('BAD_ARGUMENT', `${where}: message ${i}: metadata must be a string`);
      if (o['metadata'].includes('\n')) throw new ChatGLMError('BAD_ARGUMENT', `${where}: message ${i}: metadata must be one line`);
      msg.metadata = o['metadata'];
    }
    if (o['tools'] !== undefined) msg.tools = o['tools'] as JsonValue;
    return msg;
  });
}

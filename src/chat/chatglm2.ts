/**
 * ChatGLM2 (HF `build_prompt`): plain text rounds, 1-based, full-width colons (U+FF1A):
 * "[Round 1]\n\n问：{q}\n\n答：{a}\n\n[Round 2]\n\n问：{q2}\n\n答：" after [gMASK] sop. There is no
 * system role: a system message is prepended to the first question. No tool calls.
 */
import { ChatGLMError } from '../errors.js';
import type { Tokenizer } from '../tokenizer/types.js';
import type { JsonValue } from './python-literal.js';
import { fillTrainingDate } from './reply.js';
import type { ChatFormat, ChatMessage, ParsedReply, RenderedPrompt } from './types.js';

export function chatglm2PromptText(messages: readonly ChatMessage[]): string {
  let system = '';
  const rounds: { q: string; a?: string }[] = [];
  for (const m of messages) {
    if (m.role === 'system') {
      if (rounds.length > 0) throw new ChatGLMError('BAD_ARGUMENT', 'chatglm2: a system message must come before the first question');
      system += m.content;
    } else if (m.role === 'user') {
      const last = rounds[rounds.length - 1];
      if (last && last.a === undefined) throw new ChatGLMError('BAD_ARGUMENT', 'chatglm2: two user messages in a row (each question needs an answer before the next)');
      rounds.push({ q: rounds.length === 0 ? system + m.content : m.content });
    } else if (m.role === 'assistant') {
      const last = rounds[rounds.length - 1];
      if (!last || last.a !== undefined) throw new ChatGLMError('BAD_ARGUMENT', 'chatglm2: an assistant message must answer a user message');
      last.a = m.content;
    } else {
      throw new ChatGLMError('BAD_ARGUMENT', `chatglm2: role "${m.role}" is not supported (ChatGLM2 has only user and assistant turns, and no tools)`);
    }
  }
  const last = rounds[rounds.length - 1];
  if (!last || last.a !== undefined) throw new ChatGLMError('BAD_ARGUMENT', 'chatglm2: the last message must be a user message');
  let text = '';
  rounds.forEach((r, i) => {
    text += `[Round ${i + 1}]\n\n问：${r.q}\n\n答：`;
    if (r.a !== undefined) text += `${r.a}\n\n`;
  });
  return text;
}

export const chatglm2: ChatFormat = {
  name: 'chatglm2',
  trainingDate: '2023年',
  prefix: ['[gMASK]', 'sop'],

  stopIds(_tokenizer: Tokenizer): number[] {
    return [2];
  },

  render(messages: readonly ChatMessage[]): RenderedPrompt {
    return { pieces: [{ special: '[gMASK]' }, { special: 'sop' }, { text: chatglm2PromptText(messages) }] };
  },

  toolSystemMessage(_tools: JsonValue): ChatMessage {
    throw new ChatGLMError('UNSUPPORTED', 'chatglm2 does not support tools; use a ChatGLM3 or GLM-4 model');
  },

  parse(segments: readonly string[]): ParsedReply {
    const content = fillTrainingDate(segments.join('').trim());
    return { type: 'text', content, segments: [{ metadata: '', content }] };
  },
};

/**
 * Fitting a conversation into the context: when prompt + max_new_tokens does not fit, drop the
 * oldest turns (a turn = a user message and everything up to the next one), always keeping the
 * format's prefix and the system messages, or fail with CONTEXT_OVERFLOW when asked to.
 */
import { ChatGLMError } from '../errors.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { encodePieces } from './prompt-pieces.js';
import type { ChatFormat, ChatMessage } from './types.js';

export type TruncationPolicy = 'drop_oldest' | 'error';

export interface FittedPrompt {
  messages: ChatMessage[];
  ids: number[];
  /** How many messages were dropped from the start of the conversation. */
  dropped: number;
}

export function fitConversation(
  format: ChatFormat,
  tokenizer: Tokenizer,
  messages: readonly ChatMessage[],
  maxNewTokens: number,
  contextLength: number,
  policy: TruncationPolicy = 'drop_oldest',
): FittedPrompt {
  // Each text piece is encoded on its own, so a piece's ids never change: remembering them makes
  // every re-render after dropping turns cost lookups, not tokenization.
  const memo = new Map<string, readonly number[]>();
  const cached: Tokenizer = {
    kind: tokenizer.kind,
    vocabSize: tokenizer.vocabSize,
    encode: (text) => {
      let ids = memo.get(text);
      if (ids === undefined) {
        ids = tokenizer.encode(text);
        memo.set(text, ids);
      }
      return [...ids];
    },
    decode: (ids) => tokenizer.decode(ids),
    specialId: (name) => tokenizer.specialId(name),
    isSpecial: (id) => tokenizer.isSpecial(id),
    createStreamDecoder: () => tokenizer.createStreamDecoder(),
  };
  const encode = (ms: readonly ChatMessage[]): number[] => encodePieces(format.render(ms).pieces, cached);
  let ids = encode(messages);
  const fits = (n: number): boolean => n + maxNewTokens <= contextLength;
  if (fits(ids.length)) return { messages: [...messages], ids, dropped: 0 };
  const overflow = (n: number): ChatGLMError =>
    new ChatGLMError(
      'CONTEXT_OVERFLOW',
      `the prompt (${n} tokens) plus max_tokens (${maxNewTokens}) exceeds the context length (${contextLength}); ` +
        'lower max_tokens, shorten the conversation, or allow dropping old turns',
    );
  if (policy === 'error') throw overflow(ids.length);

  const system = messages.filter((m) => m.role === 'system');
  const rest = messages.filter((m) => m.role !== 'system');
  // Turn boundaries: each user message starts a turn; the last turn is never dropped.
  const starts: number[] = [];
  rest.forEach((m, i) => {
    if (m.role === 'user' || i === 0) starts.push(i);
  });
  // The fewest turns to drop so that the rest fits (or all but the last): dropping more turns never
  // lengthens the prompt, so a binary search finds it with a logarithmic number of renders.
  const keepFrom = (t: number): ChatMessage[] => rest.slice(starts[t]);
  let lo = 1;
  let hi = Math.max(1, starts.length - 1);
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (fits(encode([...system, ...keepFrom(mid)]).length)) hi = mid;
    else lo = mid + 1;
  }
  let kept = rest;
  if (starts.length > 1) {
    kept = keepFrom(lo);
    ids = encode([...system, ...kept]);
  }
  // Even the last turn alone may leave less room than max_tokens: generation then stops at the
  // context length (finish_reason "length") rather than overflowing; a prompt that does not fit
  // at all is an error.
  if (ids.length >= contextLength) {
    throw new ChatGLMError(
      'CONTEXT_OVERFLOW',
      `the prompt is ${ids.length} tokens even with only the system message and the last turn, but the context holds ${contextLength}; ` +
        'shorten the last message or the system prompt (tool list), or use a larger context length',
    );
  }
  return { messages: [...system, ...kept], ids, dropped: rest.length - kept.length };
}

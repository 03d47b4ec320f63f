/**
 * The sampling and length defaults, in one place for the API, the CLI and the generator.
 *
 * Temperature and top-p are ChatGLM's own: the official chat()/stream_chat() of
 * modeling_chatglm.py (ChatGLM2/3, GLM-4) sample with temperature 0.8 and top_p 0.8. Top-k and the
 * repetition penalty are off there and here. The sampler itself, given no values, does plain
 * softmax sampling (temperature 1, top-p 1): these defaults are applied by its callers.
 */
export const DEFAULT_TEMPERATURE = 0.8;
export const DEFAULT_TOP_P = 0.8;
/** 0 = off. */
export const DEFAULT_TOP_K = 0;
/** 1 = off. */
export const DEFAULT_REPETITION_PENALTY = 1;

/** Most ids a low-level generate() or a ChatSession reply produces when no limit is given. */
export const DEFAULT_MAX_NEW_TOKENS = 256;

/** The cap on a chat reply (createChatCompletion, `chatglm chat`) without an explicit max_tokens. */
export const DEFAULT_MAX_REPLY_TOKENS = 1024;

/**
 * A chat reply's token budget without an explicit limit: a quarter of the context, at most
 * DEFAULT_MAX_REPLY_TOKENS, so that whole turns are kept rather than reserving 1024 positions
 * (generation simply stops at the end of the context).
 */
export function defaultReplyTokens(contextLength: number): number {
  return Math.min(DEFAULT_MAX_REPLY_TOKENS, Math.max(1, Math.floor(contextLength / 4)));
}

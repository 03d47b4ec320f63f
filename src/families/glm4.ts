/**
 * GLM-4-9B-chat: tiktoken vocabulary, the tool block as its own system message before the
 * conversation, a call written as the tool name then the arguments as JSON.
 */
import { glm4 as format } from '../chat/glm4.js';
import { CL100K_PATTERN } from '../tokenizer/tiktoken.js';
import type { ModelFamilyInfo } from './types.js';
import { interpreterCall } from './tool-calls.js';

/** GLM-4-9B's padded vocabulary: 151,329 ranks and its specials, padded. */
const GLM4_VOCAB_ROWS = 151552;

/** GLM-4's specials in id order, right after the last rank (151329 in glm-4-9b-chat). */
export const GLM4_SPECIAL_TOKENS = [
  '<|endoftext|>',
  '[MASK]',
  '[gMASK]',
  '[sMASK]',
  '<sop>',
  '<eop>',
  '<|system|>',
  '<|user|>',
  '<|assistant|>',
  '<|observation|>',
  '<|begin_of_image|>',
  '<|end_of_image|>',
  '<|begin_of_video|>',
  '<|end_of_video|>',
] as const;

export const glm4 = {
  name: 'glm4' as const,
  displayName: 'GLM-4',
  format,
  ropeScaling: 'base',
  toolCalls: 'json',
  vocabulary: 'tiktoken',
  // llama.cpp names GLM-4's pre-tokenizer "chatglm-bpe" (older converters wrote "glm4").
  tiktoken: { specials: GLM4_SPECIAL_TOKENS, pattern: CL100K_PATTERN, ggufPre: ['chatglm-bpe', 'glm4'] },
  // A turn also ends where the user or a tool result would speak next (config.json's eos_token_id list).
  endOfTurnTokens: ['<|user|>', '<|observation|>'],
  detect: {
    config(config) {
      if (config['padded_vocab_size'] === GLM4_VOCAB_ROWS) return true;
      const name = String(config['_name_or_path'] ?? '').toLowerCase();
      return name.includes('glm-4') || name.includes('glm4');
    },
    files: (dir) => dir.tiktoken || (dir.tokenizerConfig?.includes('<|endoftext|>') ?? false),
    // Byte-level BPE ("gpt2", llama.cpp's "chatglm-bpe" pre-tokenizer), or GLM-4's vocabulary size.
    gguf: (vocab, rows) => vocab?.model === 'gpt2' || vocab?.pre === 'chatglm-bpe' || rows === GLM4_VOCAB_ROWS,
  },
  // The chat template writes the tool block first; the conversation's system message follows unchanged.
  toolSystemMessages(tools, system) {
    const sys = format.toolSystemMessage(tools);
    if (system === undefined || system === '') return [sys];
    return [sys, { role: 'system', content: system }];
  },
  toolCallMessage(name, args, argumentsJson) {
    return interpreterCall(name, args) ?? { role: 'assistant', metadata: name, content: argumentsJson };
  },
} satisfies ModelFamilyInfo;

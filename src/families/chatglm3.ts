/**
 * ChatGLM3-6B (and -32k/-128k): role tokens, tools on the system message, a call written as a
 * fenced `tool_call(k=v, ...)` Python block; the long variants scale the RoPE base.
 */
import { chatglm3 as format } from '../chat/chatglm3.js';
import { CHATGLM3_CODE_INTERPRETER_PROMPT } from '../chat/chatglm3.js';
import { CHATGLM2_SPECIAL_TOKENS } from './chatglm2.js';
import type { ModelFamilyInfo } from './types.js';
import { pythonToolCall, systemTextBeforeTools } from './tool-calls.js';

/** ChatGLM2's specials, then the role tokens (tokenization_chatglm.py's role_special_tokens). */
export const CHATGLM3_SPECIAL_TOKENS = [...CHATGLM2_SPECIAL_TOKENS, '<|system|>', '<|user|>', '<|assistant|>', '<|observation|>'] as const;

const NAME = /chatglm3/i;

export const chatglm3 = {
  name: 'chatglm3' as const,
  displayName: 'ChatGLM3',
  format,
  ropeScaling: 'base',
  toolCalls: 'python',
  interpreterSystemPrompt: CHATGLM3_CODE_INTERPRETER_PROMPT,
  vocabulary: 'sentencepiece',
  sentencePieceSpecials: CHATGLM3_SPECIAL_TOKENS,
  // Its Hugging Face tokenizer decodes a special to its name (DecodePieces copies it verbatim).
  specialsDecodeAsNames: true,
  detect: {
    // Its config.json shares ChatGLM2's shapes; only the tokenizer files or the name tell them apart.
    config: () => false,
    files(dir) {
      const marked = (text: string | undefined): boolean => text !== undefined && (text.includes('<|user|>') || NAME.test(text));
      const nameOrPath = dir.config['_name_or_path'];
      return marked(dir.tokenizationPy) || marked(dir.tokenizerConfig) || (typeof nameOrPath === 'string' && NAME.test(nameOrPath));
    },
    // Its role tokens are in the vocabulary; a file with no vocabulary is most likely ChatGLM3 too.
    gguf: (vocab) => vocab === undefined || vocab.tokens.includes('<|user|>'),
  },
  toolSystemMessages: systemTextBeforeTools((tools) => format.toolSystemMessage(tools)),
  toolCallMessage: pythonToolCall,
} satisfies ModelFamilyInfo;

/** ChatGLM2-6B: "[Round N]" prompts, no tools; its -32k variant interpolates RoPE positions. */
import { chatglm2 as format } from '../chat/chatglm2.js';
import type { ModelFamilyInfo } from './types.js';
import { pythonToolCall, systemTextBeforeTools } from './tool-calls.js';

/** tokenization_chatglm.py's specials, appended after the SentencePiece pieces in this order. */
export const CHATGLM2_SPECIAL_TOKENS = ['[MASK]', '[gMASK]', '[sMASK]', 'sop', 'eop'] as const;

export const chatglm2 = {
  name: 'chatglm2' as const,
  displayName: 'ChatGLM2',
  format,
  ropeScaling: 'position',
  toolCalls: 'none',
  vocabulary: 'sentencepiece',
  sentencePieceSpecials: CHATGLM2_SPECIAL_TOKENS,
  // Its Hugging Face tokenizer decodes a special to nothing.
  specialsDecodeAsNames: false,
  detect: {
    config(config) {
      const name = String(config['_name_or_path'] ?? '').toLowerCase();
      return name.includes('chatglm2') || name.includes('codegeex2');
    },
    // Asked last: a SentencePiece directory without ChatGLM3's role tokens.
    files: () => true,
    // A vocabulary without ChatGLM3's role tokens (ChatGLM3 and GLM-4 are asked first).
    gguf: (vocab) => vocab !== undefined,
  },
  toolSystemMessages: systemTextBeforeTools((tools) => format.toolSystemMessage(tools)),
  // ChatGLM2 has no tool protocol; a past call is written the ChatGLM3 way so it stays readable.
  toolCallMessage: pythonToolCall,
} satisfies ModelFamilyInfo;

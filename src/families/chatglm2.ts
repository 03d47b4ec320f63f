/** ChatGLM2-6B: "[Round N]" prompts, no tools; its -32k variant interpolates RoPE positions. */
import { chatglm2 as format } from '../chat/chatglm2.js';
import { CHATGLM2_SPECIAL_TOKENS } from '../tokenizer/chatglm.js';
import type { ModelFamilyInfo } from './types.js';
import { pythonToolCall, systemTextBeforeTools } from './tool-calls.js';

export const chatglm2 = {
  name: 'chatglm2' as const,
  displayName: 'ChatGLM2',
  format,
  ropeScaling: 'position',
  toolCalls: 'none',
  vocabulary: 'sentencepiece',
  sentencePieceSpecials: CHATGLM2_SPECIAL_TOKENS,
  toolSystemMessages: systemTextBeforeTools((tools) => format.toolSystemMessage(tools)),
  // ChatGLM2 has no tool protocol; a past call is written the ChatGLM3 way so it stays readable.
  toolCallMessage: pythonToolCall,
} satisfies ModelFamilyInfo;

/**
 * ChatGLM3-6B (and -32k/-128k): role tokens, tools on the system message, a call written as a
 * fenced `tool_call(k=v, ...)` Python block; the long variants scale the RoPE base.
 */
import { chatglm3 as format } from '../chat/chatglm3.js';
import { CHATGLM3_CODE_INTERPRETER_PROMPT } from '../chat/chatglm3.js';
import { CHATGLM3_SPECIAL_TOKENS } from '../tokenizer/chatglm.js';
import type { ModelFamilyInfo } from './types.js';
import { pythonToolCall, systemTextBeforeTools } from './tool-calls.js';

export const chatglm3 = {
  name: 'chatglm3' as const,
  displayName: 'ChatGLM3',
  format,
  ropeScaling: 'base',
  toolCalls: 'python',
  interpreterSystemPrompt: CHATGLM3_CODE_INTERPRETER_PROMPT,
  vocabulary: 'sentencepiece',
  sentencePieceSpecials: CHATGLM3_SPECIAL_TOKENS,
  toolSystemMessages: systemTextBeforeTools((tools) => format.toolSystemMessage(tools)),
  toolCallMessage: pythonToolCall,
} satisfies ModelFamilyInfo;

/**
 * GLM-4-9B-chat: tiktoken vocabulary, the tool block as its own system message before the
 * conversation, a call written as the tool name then the arguments as JSON.
 */
import { glm4 as format } from '../chat/glm4.js';
import type { ModelFamilyInfo } from './types.js';
import { interpreterCall } from './tool-calls.js';

export const glm4 = {
  name: 'glm4' as const,
  displayName: 'GLM-4',
  format,
  ropeScaling: 'base',
  toolCalls: 'json',
  vocabulary: 'tiktoken',
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

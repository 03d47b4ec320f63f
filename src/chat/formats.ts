/** The chat formats by family. Supporting a new family = one module + one line here. */
import { ChatGLMError } from '../errors.js';
import type { ModelFamily } from '../tokenizer/types.js';
import { chatglm2 } from './chatglm2.js';
import { chatglm3 } from './chatglm3.js';
import { glm4 } from './glm4.js';
import type { ChatFormat } from './types.js';

const FORMATS: Record<ModelFamily, ChatFormat> = { chatglm2, chatglm3, glm4 };

export const CHAT_FORMAT_NAMES = Object.keys(FORMATS) as ModelFamily[];

export function getChatFormat(name: string): ChatFormat {
  const f = (FORMATS as Record<string, ChatFormat | undefined>)[name];
  if (!f) throw new ChatGLMError('BAD_ARGUMENT', `unknown chat format "${name}" (use one of: ${CHAT_FORMAT_NAMES.join(', ')})`);
  return f;
}

/**
 * The model families this engine knows. Adding one = a file like glm4.ts (its chat format under
 * chat/) and one entry here; ModelFamily (tokenizer/types.ts) is checked against this list.
 */
import { ChatGLMError } from '../errors.js';
import type { ModelFamily } from '../tokenizer/types.js';
import { chatglm2 } from './chatglm2.js';
import { chatglm3 } from './chatglm3.js';
import { glm4 } from './glm4.js';
import type { ModelFamilyInfo } from './types.js';

export const FAMILIES = [chatglm2, chatglm3, glm4] as const;

/** The names of the registered families; the compiler checks it equals ModelFamily both ways. */
export type RegisteredFamily = (typeof FAMILIES)[number]['name'];
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const familiesMatch: Same<RegisteredFamily, ModelFamily> = true;
void familiesMatch;

export const FAMILY_NAMES: readonly ModelFamily[] = FAMILIES.map((f) => f.name as ModelFamily);

export function getFamily(name: string): ModelFamilyInfo {
  const f = FAMILIES.find((x) => x.name === name);
  if (f === undefined) throw new ChatGLMError('BAD_ARGUMENT', `unknown chat format "${name}" (use one of: ${FAMILY_NAMES.join(', ')})`);
  return f;
}

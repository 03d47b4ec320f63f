/**
 * The model families this engine knows. Adding one = a file like glm4.ts (its chat format under
 * chat/) and one entry here, after the families it should be tried after: loaders recognise
 * families newest first (see FamilyFacts.detect).
 */
import { familyNamed } from '../tokenizer/family-facts.js';
import { chatglm2 } from './chatglm2.js';
import { chatglm3 } from './chatglm3.js';
import { glm4 } from './glm4.js';
import type { ChatFormat } from '../chat/types.js';
import type { ModelFamilyInfo } from './types.js';

export const FAMILIES = [chatglm2, chatglm3, glm4] as const;

/** A registered family's name: the `family` option, `--format`. */
export type ModelFamily = (typeof FAMILIES)[number]['name'];

/** One of the registered families. */
export type RegisteredFamily = ModelFamilyInfo & { readonly name: ModelFamily };

export const FAMILY_NAMES: readonly ModelFamily[] = FAMILIES.map((f) => f.name);

/** The family called `name`; a ChatGLMError listing the known ones otherwise. */
export function getFamily(name: string): RegisteredFamily {
  return familyNamed(FAMILIES, name);
}

/** True when `name` is a registered family (for narrowing user input such as --format). */
export function isModelFamily(name: string): name is ModelFamily {
  return (FAMILY_NAMES as readonly string[]).includes(name);
}

/** The chat format (render, parse, stop ids) of the family called `name`. */
export function getChatFormat(name: string): ChatFormat {
  return getFamily(name).format;
}

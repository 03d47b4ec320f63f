/** The chat formats by family, from the family registry (families/registry.ts). */
import type { ModelFamily } from '../tokenizer/types.js';
import { FAMILY_NAMES, getFamily } from '../families/registry.js';
import type { ChatFormat } from './types.js';

export const CHAT_FORMAT_NAMES: readonly ModelFamily[] = FAMILY_NAMES;

export function getChatFormat(name: string): ChatFormat {
  return getFamily(name).format;
}

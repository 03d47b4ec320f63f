/**
 * Nesting bound for JSON the caller hands us to print into a prompt (tool definitions). Printing
 * with indentation costs depth x size, and a recursive printer overflows the stack near 5,000
 * levels; real JSON Schemas nest a handful of levels.
 */
import { ChatGLMError } from '../errors.js';

export const MAX_JSON_DEPTH = 64;

/** Depth of `root` (a scalar is 0), counted iteratively; stops counting past `limit`. */
export function jsonDepth(root: unknown, limit = MAX_JSON_DEPTH): number {
  let deepest = 0;
  const stack: Array<[unknown, number]> = [[root, 0]];
  while (stack.length > 0) {
    const [v, d] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    const depth = d + 1;
    if (depth > deepest) deepest = depth;
    if (deepest > limit) return deepest;
    for (const x of Array.isArray(v) ? v : Object.values(v as Record<string, unknown>)) stack.push([x, depth]);
  }
  return deepest;
}

/** Throws BAD_ARGUMENT when `value` nests deeper than MAX_JSON_DEPTH; `what` names it. */
export function checkJsonDepth(value: unknown, what: string): void {
  if (jsonDepth(value) > MAX_JSON_DEPTH) {
    throw new ChatGLMError('BAD_ARGUMENT', `${what} nest more than ${MAX_JSON_DEPTH} levels deep; flatten the schema`);
  }
}

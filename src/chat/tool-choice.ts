/**
 * OpenAI `tool_choice` for ChatGLM models. `none` takes the tools out of the prompt; `auto` lets
 * the model decide; a named function is forced exactly by writing the start of the call into the
 * prompt after `<|assistant|>`, so the model can only continue with that call's arguments.
 * `required` (some call, the model picks which) cannot be forced by a prefix: constrained decoding
 * enforces it, and a named function too unless the caller turned constraints off.
 */
import { ChatGLMError } from '../errors.js';
import type { JsonValue } from './python-literal.js';
import type { ChatFormat, PromptPiece } from './types.js';

export type ChatCompletionToolChoice = 'none' | 'auto' | 'required' | { type: 'function'; function: { name: string } };

export interface ToolChoicePlan {
  /** Whether the tool definitions go into the prompt. */
  offerTools: boolean;
  /** The function whose call the reply is forced to start with. */
  forced?: string;
  /** The reply must start with a call to one of the tools (constrained decoding enforces it). */
  required?: boolean;
}

/** The tool names of a tool list: OpenAI style, bare {name, ...} objects, or a dict keyed by name. */
export function toolNamesOf(tools: JsonValue | undefined): string[] {
  if (tools === undefined || tools === null || typeof tools !== 'object') return [];
  const list = Array.isArray(tools) ? tools : Object.values(tools);
  const names: string[] = [];
  for (const t of list) {
    if (t === null || typeof t !== 'object' || Array.isArray(t)) continue;
    const fn = t['function'] !== undefined ? t['function'] : t;
    if (fn !== null && typeof fn === 'object' && !Array.isArray(fn) && typeof fn['name'] === 'string') names.push(fn['name']);
  }
  if (!Array.isArray(tools)) {
    // A dict keyed by name (ChatGLM3's composite demo) names its tools by key as well.
    for (const k of Object.keys(tools)) if (!names.includes(k)) names.push(k);
  }
  return names;
}

/**
 * Checks `choice` against the declared tools. `toolNames` is undefined when no tools are declared.
 * Throws BAD_ARGUMENT for `required` without tools, an unknown name, or a malformed value.
 */
export function planToolChoice(choice: unknown, toolNames: readonly string[] | undefined): ToolChoicePlan {
  if (choice === undefined || choice === null || choice === 'auto') return { offerTools: toolNames !== undefined };
  if (choice === 'none') return { offerTools: false };
  if (choice === 'required') {
    // Some call, the model picks which: enforced by constrained decoding (api-constraints.ts).
    if (toolNames === undefined || toolNames.length === 0) throw new ChatGLMError('BAD_ARGUMENT', 'tool_choice "required" needs tools: no tools are declared');
    return { offerTools: true, required: true };
  }
  if (typeof choice === 'object' && !Array.isArray(choice)) {
    const fn = (choice as { function?: unknown }).function;
    const name = fn !== null && typeof fn === 'object' ? (fn as { name?: unknown }).name : undefined;
    if ((choice as { type?: unknown }).type === 'function' && typeof name === 'string') {
      if (toolNames === undefined || !toolNames.includes(name)) {
        const known = toolNames === undefined || toolNames.length === 0 ? 'no tools are declared' : `the tools are: ${toolNames.join(', ')}`;
        throw new ChatGLMError('BAD_ARGUMENT', `tool_choice names the function "${name}", but ${known}`);
      }
      return { offerTools: true, forced: name };
    }
  }
  throw new ChatGLMError(
    'BAD_ARGUMENT',
    `tool_choice must be "none", "auto", "required" or {"type": "function", "function": {"name": "NAME"}}, got ${JSON.stringify(choice)}`,
  );
}

/** The start of an assistant reply that calls `name`, as the family's chat format writes it. */
export function forcedCallPieces(format: ChatFormat, name: string): PromptPiece[] {
  if (name.includes('\n')) throw new ChatGLMError('BAD_ARGUMENT', `tool name ${JSON.stringify(name)} must be one line`);
  if (format.forcedCallPieces === undefined) {
    throw new ChatGLMError('UNSUPPORTED', `${format.name} has no tool-call format; a tool_choice naming a function needs a ChatGLM3 or GLM-4 model`);
  }
  return format.forcedCallPieces(name);
}

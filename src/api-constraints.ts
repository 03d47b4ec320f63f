/**
 * From a chat completion request to a constraint on the reply: `response_format` (json_object /
 * json_schema), lazy tool-call constraints whenever tools are declared (`constrain: false` turns
 * them off), and `tool_choice` "required" / a named function (the reply starts with a call).
 */
import { getFamily } from './families/registry.js';
import { ChatGLMError } from './errors.js';
import type { JsonValue } from './chat/python-literal.js';
import { replyGrammar, toolSpecs, type ToolSpec } from './chat/reply-grammar.js';
import type { ChatFormat } from './chat/types.js';
import type { ConstraintFactory } from './generate/logits-constraint.js';
import type { GrammarEngine } from './grammar/engine.js';
import { GrammarConstraint } from './grammar/grammar-constraint.js';
import type { Tokenizer } from './tokenizer/types.js';
import { hasTokenBytes } from './tokenizer/token-bytes.js';

export type ResponseFormat =
  | { type: 'text' }
  | { type: 'json_object' }
  | { type: 'json_schema'; json_schema: { name?: string; description?: string; schema?: JsonValue; strict?: boolean | null } };

export type ToolChoice = 'none' | 'auto' | 'required' | { type: 'function'; function: { name: string } };

export interface ConstraintRequest {
  tools?: JsonValue;
  tool_choice?: ToolChoice;
  response_format?: ResponseFormat;
  /** Constrain tool calls to the declared tools and schemas (default true). */
  constrain?: boolean;
}

export interface ConstraintTarget {
  format: ChatFormat;
  tokenizer: Tokenizer;
  /** The model's grammar engine (made on first use). */
  engine: () => Promise<GrammarEngine>;
}

/** The schema `response_format` asks for; undefined for plain text. */
export function responseSchema(rf: ResponseFormat | undefined): JsonValue | undefined {
  if (rf === undefined || rf === null) return undefined;
  if (typeof rf !== 'object' || typeof (rf as { type?: unknown }).type !== 'string') {
    throw new ChatGLMError('BAD_ARGUMENT', 'response_format must be {"type": "text" | "json_object" | "json_schema", ...}');
  }
  switch (rf.type) {
    case 'text':
      return undefined;
    case 'json_object':
      return { type: 'object' };
    case 'json_schema': {
      const js = (rf as { json_schema?: unknown }).json_schema;
      if (typeof js !== 'object' || js === null) throw new ChatGLMError('BAD_ARGUMENT', 'response_format json_schema needs "json_schema": {"name", "schema"}');
      return (js as { schema?: JsonValue }).schema ?? true;
    }
  }
  throw new ChatGLMError('BAD_ARGUMENT', `response_format type "${(rf as { type: string }).type}" is not supported (use text, json_object or json_schema)`);
}

/**
 * The constraint for a request, compiled now (so a bad schema fails the request, not the stream);
 * undefined when nothing is constrained.
 */
export async function buildRequestConstraint(target: ConstraintTarget, request: ConstraintRequest): Promise<ConstraintFactory | undefined> {
  const schema = responseSchema(request.response_format);
  const choice = request.tool_choice ?? 'auto';
  let tools: ToolSpec[] = request.tools !== undefined && choice !== 'none' ? toolSpecs(request.tools) : [];
  let requireToolCall = false;
  if (choice === 'required') requireToolCall = true;
  else if (typeof choice === 'object' && choice !== null) {
    const name = choice.function?.name;
    const named = tools.filter((t) => t.name === name);
    if (named.length === 0) throw new ChatGLMError('BAD_ARGUMENT', `tool_choice names "${String(name)}", which is not among the declared tools`);
    tools = named;
    requireToolCall = true;
  }
  const family = getFamily(target.format.name);
  // Tool constraints are on by default; `constrain: false` only skips those (response_format is an explicit request).
  if (request.constrain === false && !requireToolCall) tools = [];
  if (family.toolCalls === 'none') tools = [];
  if (schema === undefined && tools.length === 0 && !requireToolCall) return undefined;
  if (!hasTokenBytes(target.tokenizer)) {
    // A tokenizer from outside this project: the default tool constraint quietly stays off.
    if (schema === undefined && !requireToolCall) return undefined;
    throw new ChatGLMError('GRAMMAR', 'constrained decoding needs token bytes, which this tokenizer does not provide (use a SentencePiece or tiktoken tokenizer)');
  }
  const grammar = replyGrammar({ family, tools, requireToolCall, ...(schema !== undefined ? { responseSchema: schema } : {}), lenientTools: true });
  const engine = await target.engine();
  const compiled = await engine.compile(grammar.ebnf);
  const segmentId = target.format.segmentToken !== undefined ? target.tokenizer.specialId(target.format.segmentToken) : undefined;
  const stopIds = target.format.stopIds(target.tokenizer);
  return () =>
    GrammarConstraint.create(engine, compiled, {
      stopIds,
      freeText: grammar.freeText,
      ...(segmentId !== undefined ? { segmentId } : {}),
    });
}

/**
 * A tool the agent loop can run: a name, a description, a JSON Schema for its arguments, and a
 * `run` function. `defineTool` checks the definition and compiles the schema once (ajv), so a
 * broken schema fails when the tool is defined, not when the model first calls it.
 *
 *   export default [
 *     defineTool({
 *       name: 'get_current_weather',
 *       description: 'Get the current weather in a given city',
 *       parameters: { type: 'object', properties: { location: { type: 'string' } }, required: ['location'] },
 *       run: async ({ location }) => ({ location, temperature: 22, description: 'sunny' }),
 *     }),
 *   ];
 */
import { Ajv, type ValidateFunction } from 'ajv';
import { ChatGLMError } from '../errors.js';
import type { JsonValue } from '../chat/python-literal.js';
import type { ChatCompletionTool } from '../api.js';

export interface ToolContext {
  /** Aborted when the caller aborts the run or the tool's time limit passes. */
  signal: AbortSignal;
  /** The id of the call being run (OpenAI `tool_call_id`). */
  callId: string;
}

/** A JSON Schema object (draft-07 / 2019-09 keywords as ajv understands them). */
export type JsonSchema = { [key: string]: JsonValue };

export interface ToolDefinition<A = Record<string, JsonValue>> {
  /** Letters, digits, `_`, `-` and `.`; at most 64 characters (what OpenAI accepts). */
  name: string;
  description?: string;
  /** JSON Schema of the arguments object. Default: an object with no declared properties. */
  parameters?: JsonSchema;
  /** The result is sent to the model as text: a string as it is, anything else as JSON. */
  run(args: A, context: ToolContext): unknown;
  /** Time limit for one run, in milliseconds (default: the agent's `toolTimeoutMs`). */
  timeoutMs?: number;
}

export interface Tool<A = Record<string, JsonValue>> extends ToolDefinition<A> {
  readonly description: string;
  readonly parameters: JsonSchema;
  /** undefined when `args` match the schema, else what is wrong (e.g. "arguments/location must be string"). */
  validate(args: unknown): string | undefined;
}

/** Any tool, whatever its argument type (for lists of tools). */
export type AnyTool = Tool<never>;

const NAME = /^[A-Za-z0-9_.-]{1,64}$/;

export function defineTool<A = Record<string, JsonValue>>(definition: ToolDefinition<A>): Tool<A> {
  if (definition === null || typeof definition !== 'object') throw new ChatGLMError('BAD_ARGUMENT', 'defineTool: expected an object {name, description, parameters, run}');
  const { name } = definition;
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw new ChatGLMError('BAD_ARGUMENT', `defineTool: tool name ${JSON.stringify(name)} must be 1-64 letters, digits, "_", "-" or "."`);
  }
  if (typeof definition.run !== 'function') throw new ChatGLMError('BAD_ARGUMENT', `defineTool: tool ${name} needs a run(args, { signal }) function`);
  if (definition.description !== undefined && typeof definition.description !== 'string') {
    throw new ChatGLMError('BAD_ARGUMENT', `defineTool: tool ${name}: description must be a string`);
  }
  const timeoutMs = definition.timeoutMs;
  if (timeoutMs !== undefined && !(typeof timeoutMs === 'number' && timeoutMs > 0 && Number.isFinite(timeoutMs))) {
    throw new ChatGLMError('BAD_ARGUMENT', `defineTool: tool ${name}: timeoutMs must be a positive number of milliseconds`);
  }
  const parameters: JsonSchema = definition.parameters ?? { type: 'object', properties: {} };
  if (parameters === null || typeof parameters !== 'object' || Array.isArray(parameters)) {
    throw new ChatGLMError('BAD_ARGUMENT', `defineTool: tool ${name}: parameters must be a JSON Schema object like {"type": "object", "properties": {...}}`);
  }
  // One validator per tool: no state shared between tools or models. Formats are not checked
  // (that would need ajv-formats); unknown keywords are allowed, as OpenAI tool schemas use some.
  const ajv = new Ajv({ allErrors: true, strict: false, validateFormats: false });
  let check: ValidateFunction;
  try {
    check = ajv.compile(parameters);
  } catch (err) {
    throw new ChatGLMError('BAD_ARGUMENT', `defineTool: tool ${name}: parameters is not a valid JSON Schema (${(err as Error).message})`, { cause: err });
  }
  const run = definition.run;
  return {
    name,
    description: definition.description ?? '',
    parameters,
    ...(timeoutMs !== undefined ? { timeoutMs } : {}),
    run: (args: A, context: ToolContext) => run.call(definition, args, context),
    validate(args: unknown): string | undefined {
      if (check(args)) return undefined;
      return ajv.errorsText(check.errors, { dataVar: 'arguments' });
    },
  };
}

/** A tool as an OpenAI `tools` entry. */
export function toOpenAITool(tool: Pick<Tool<unknown>, 'name' | 'description' | 'parameters'>): ChatCompletionTool {
  return { type: 'function', function: { name: tool.name, description: tool.description, parameters: tool.parameters } };
}

/** Whether `value` already is a defineTool result (possibly from another copy of this package). */
export function isTool(value: unknown): value is Tool<unknown> {
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof (value as { name?: unknown }).name === 'string' &&
    typeof (value as { run?: unknown }).run === 'function' &&
    typeof (value as { validate?: unknown }).validate === 'function' &&
    typeof (value as { parameters?: unknown }).parameters === 'object'
  );
}

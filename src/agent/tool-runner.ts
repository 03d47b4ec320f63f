/**
 * Running one tool call for the agent loop: find the tool, parse and validate the arguments, run
 * it under a time limit and the caller's AbortSignal, and turn the outcome into the observation
 * text the model reads. Nothing a model or a tool does here throws: every failure is an outcome
 * that says what went wrong, so the model can try again.
 */
import { ChatGLMError } from '../errors.js';
import type { JsonValue } from '../chat/python-literal.js';
import type { AnyTool, ToolContext } from './tool.js';

/** Characters of a result the model sees (ChatGLM3's demo cuts observations at 1024 too). */
export const DEFAULT_OBSERVATION_CHARS = 1024;
export const TRUNCATION_MARK = ' [TRUNCATED]';
export const DEFAULT_TOOL_TIMEOUT_MS = 30_000;

export type ToolErrorKind = 'unknown_tool' | 'invalid_arguments' | 'tool_error' | 'timeout' | 'aborted' | 'declined';

export type ToolOutcome =
  | { ok: true; /** The run's value, normalised to JSON data. */ value: JsonValue; /** Its whole text. */ text: string }
  | { ok: false; error: { kind: ToolErrorKind; message: string } };

export interface RunToolOptions {
  signal?: AbortSignal;
  /** Used when the tool sets no timeoutMs of its own. */
  timeoutMs?: number;
  callId: string;
}

/** Arguments as the model sent them (an OpenAI JSON string) to an object, or what is wrong. */
export function parseArguments(text: string): { ok: true; args: Record<string, JsonValue> } | { ok: false; message: string } {
  let v: unknown;
  try {
    v = text.trim() === '' ? {} : JSON.parse(text);
  } catch (err) {
    return { ok: false, message: `the arguments are not JSON (${(err as Error).message}): ${clip(text, 200)}` };
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return { ok: false, message: `the arguments must be a JSON object, got ${clip(text, 200)}` };
  return { ok: true, args: v as Record<string, JsonValue> };
}

export async function runTool(tools: ReadonlyMap<string, AnyTool>, name: string, argumentsText: string, options: RunToolOptions): Promise<ToolOutcome> {
  const tool = tools.get(name);
  if (tool === undefined) {
    const known = [...tools.keys()];
    return fail('unknown_tool', `there is no tool named "${name}"; ${known.length > 0 ? `the tools are: ${known.join(', ')}` : 'no tools are available'}`);
  }
  const parsed = parseArguments(argumentsText);
  if (!parsed.ok) return fail('invalid_arguments', `${name}: ${parsed.message}`);
  const problem = tool.validate(parsed.args);
  if (problem !== undefined) return fail('invalid_arguments', `${name}: invalid arguments: ${problem}`);
  const timeoutMs = tool.timeoutMs ?? options.timeoutMs ?? DEFAULT_TOOL_TIMEOUT_MS;
  const run = tool.run as (args: unknown, context: ToolContext) => unknown;
  return runGuarded((signal) => run(parsed.args, { signal, callId: options.callId }), name, timeoutMs, options.signal);
}

/**
 * Runs `work` until it settles, its time limit passes, or `signal` aborts, whichever comes first.
 * The signal `work` gets is aborted in the last two cases, so a tool can stop what it started; the
 * loop does not wait for a tool that ignores it.
 */
export async function runGuarded(work: (signal: AbortSignal) => unknown, name: string, timeoutMs: number, signal?: AbortSignal): Promise<ToolOutcome> {
  if (signal?.aborted) return fail('aborted', `${name}: not run, the request was aborted`);
  const inner = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onAbort: (() => void) | undefined;
  const timedOut = new Promise<{ kind: 'timeout' }>((resolve) => {
    timer = setTimeout(() => resolve({ kind: 'timeout' }), timeoutMs);
  });
  const aborted = new Promise<{ kind: 'aborted' }>((resolve) => {
    onAbort = () => resolve({ kind: 'aborted' });
    signal?.addEventListener('abort', onAbort, { once: true });
  });
  const done = Promise.resolve()
    .then(() => work(inner.signal))
    .then(
      (value) => ({ kind: 'value' as const, value }),
      (error: unknown) => ({ kind: 'error' as const, error }),
    );
  try {
    const r = await Promise.race([done, timedOut, aborted]);
    switch (r.kind) {
      case 'timeout':
        inner.abort(new ChatGLMError('TIMEOUT', `${name} ran past its time limit of ${timeoutMs} ms`));
        return fail('timeout', `${name} did not finish within ${timeoutMs} ms`);
      case 'aborted':
        inner.abort(new ChatGLMError('ABORTED', 'the request was aborted'));
        return fail('aborted', `${name}: stopped, the request was aborted`);
      case 'error':
        return fail('tool_error', `${name} failed: ${errorText(r.error)}`);
    }
    const value = toJsonData(r.value);
    if (!value.ok) return fail('tool_error', `${name} returned a value that is not JSON data (${value.message})`);
    return { ok: true, value: value.data, text: resultText(value.data) };
  } finally {
    clearTimeout(timer);
    if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort);
  }
}

function fail(kind: ToolErrorKind, message: string): ToolOutcome {
  return { ok: false, error: { kind, message } };
}

function errorText(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  return typeof err === 'string' ? err : JSON.stringify(err) ?? String(err);
}

function toJsonData(value: unknown): { ok: true; data: JsonValue } | { ok: false; message: string } {
  if (value === undefined) return { ok: true, data: null };
  try {
    // Applies toJSON (Dates) and drops functions, as JSON.stringify does for any caller.
    return { ok: true, data: JSON.parse(JSON.stringify(value)) as JsonValue };
  } catch (err) {
    return { ok: false, message: (err as Error).message };
  }
}

/** A string result as it is; anything else as JSON laid out like Python's json.dumps (", " and ": "). */
export function resultText(value: JsonValue): string {
  return typeof value === 'string' ? value : pythonJson(value);
}

/** JSON with json.dumps(ensure_ascii=False) separators, the layout ChatGLM's tool demos feed back. */
export function pythonJson(value: JsonValue): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(pythonJson).join(', ')}]`;
  return `{${Object.entries(value)
    .map(([k, v]) => `${JSON.stringify(k)}: ${pythonJson(v)}`)
    .join(', ')}}`;
}

/** The observation as the model reads it: at most `limit` characters, then a mark saying so. */
export function truncateObservation(text: string, limit = DEFAULT_OBSERVATION_CHARS): string {
  if (text.length <= limit) return text;
  // Do not split a surrogate pair.
  let end = limit;
  const code = text.charCodeAt(end - 1);
  if (code >= 0xd800 && code <= 0xdbff) end--;
  return text.slice(0, end) + TRUNCATION_MARK;
}

/** The observation for a failed call: a JSON object with the reason, like a tool result. */
export function errorObservation(message: string): string {
  return pythonJson({ error: message });
}

function clip(text: string, n: number): string {
  return text.length <= n ? text : `${text.slice(0, n)}...`;
}

/**
 * The agent loop: ask the model; when it calls tools, run them and send the results back as
 * `tool` messages; repeat until it answers in text or `maxRounds` replies have been asked for.
 * It streams typed events for a UI or a server, and ends with a `done` event holding every new
 * message in OpenAI shape.
 *
 *   for await (const event of runAgent({ model, messages, tools: [weather] })) {
 *     if (event.type === 'text') process.stdout.write(event.delta);
 *     if (event.type === 'done') console.log(event.messages);
 *   }
 *
 * A bad call (unknown tool, invalid arguments, a tool that throws or runs past its time limit) is
 * answered with an observation that says what went wrong, so the model may retry; the loop does
 * not stop for it. An aborted run ends with a `done` event whose `stopReason` is 'aborted'.
 */
import { ChatGLMError } from '../errors.js';
import { getFamily } from '../families/registry.js';
import { CHATGLM3_CODE_INTERPRETER_PROMPT } from '../chat/chatglm3.js';
import type { ChatCompletionMessage, ChatCompletionMessageParam, ChatCompletionMessageToolCall, ChatModel, FinishReason } from '../api.js';
import { planToolChoice, type ChatCompletionToolChoice } from '../chat/tool-choice.js';
import type { JsonValue } from '../chat/python-literal.js';
import { localCompleter, type ChatCompleter, type CompletionRequest, type CompletionUsage } from './completer.js';
import type { CodeInterpreterLike, CodeRunImage, CodeRunResult } from './interpreter-types.js';
import { CODE_OBSERVATION_IMAGE, formatCodeObservation } from './interpreter/observation.js';
import { toOpenAITool, type AnyTool } from './tool.js';
import {
  DEFAULT_OBSERVATION_CHARS,
  DEFAULT_TOOL_TIMEOUT_MS,
  errorObservation,
  parseArguments,
  runGuarded,
  runTool,
  truncateObservation,
  type ToolErrorKind,
  type ToolOutcome,
} from './tool-runner.js';

export { CHATGLM3_CODE_INTERPRETER_PROMPT } from '../chat/chatglm3.js';

/** The name ChatGLM3 puts on code to run (`<|assistant|>interpreter`). */
export const INTERPRETER_TOOL_NAME = 'interpreter';

export const DEFAULT_MAX_ROUNDS = 5;

/** A `tool` message; `images` (plots from the code interpreter) are for the caller, not sent to a model. */
export interface AgentToolMessage {
  role: 'tool';
  tool_call_id: string;
  /** The observation exactly as the model read it (truncated to maxObservationChars). */
  content: string;
  images?: CodeRunImage[];
}

export interface AgentAssistantMessage {
  role: 'assistant';
  content: string | null;
  tool_calls?: ChatCompletionMessageToolCall[];
}

export type AgentMessage = AgentAssistantMessage | AgentToolMessage;

export interface AgentToolCall {
  id: string;
  name: string;
  /** The arguments as the model wrote them (OpenAI: a JSON string; or the raw text of a call that does not parse). */
  arguments: string;
  /** Set when the model's call did not parse: why. */
  invalid?: string;
}

export type AgentEvent =
  /** Visible answer text of round `round`, as it is generated. */
  | { type: 'text'; round: number; delta: string }
  /** The model asked for a call (before it runs). */
  | { type: 'tool_call'; round: number; call: AgentToolCall }
  | {
      type: 'tool_result';
      round: number;
      call: AgentToolCall;
      /** The observation the model reads (truncated). */
      content: string;
      /** Whole result for the caller: the run's value (ok) or what went wrong. */
      result: { ok: true; value: JsonValue; text: string } | { ok: false; error: { kind: ToolErrorKind; message: string } };
      /** Images from the code interpreter, whole. */
      images?: CodeRunImage[];
    }
  | { type: 'usage'; round: number; usage: CompletionUsage }
  | { type: 'round_end'; round: number; finishReason: FinishReason }
  /** The model answered in text: the last assistant message. */
  | { type: 'final'; round: number; message: AgentAssistantMessage; finishReason: FinishReason }
  | {
      type: 'done';
      /** Every new message, in order: assistant calls, tool results, the final answer. */
      messages: AgentMessage[];
      /** 'answer': the model answered; 'max_rounds': it was still calling tools; 'aborted': the signal fired. */
      stopReason: 'answer' | 'max_rounds' | 'aborted';
      rounds: number;
      /** Summed over the rounds that reported usage. */
      usage: CompletionUsage;
    };

export interface RunAgentOptions {
  /** The in-process model (or give `completer`). */
  model?: ChatModel;
  /** Any chat completer, e.g. remoteCompleter({ endpoint }). */
  completer?: ChatCompleter;
  /** The conversation so far, ending with the message to answer. */
  messages: readonly ChatCompletionMessageParam[];
  tools?: readonly AnyTool[];
  /**
   * 'auto' (default), 'none', or a named function; a named function is forced in the first round
   * only, so the model can answer once it has the result; 'required' likewise applies to the first reply only.
   */
  toolChoice?: ChatCompletionToolChoice;
  /** Runs ChatGLM3 `interpreter` code blocks; without one, such a call gets an error observation. */
  interpreter?: CodeInterpreterLike;
  /** Most model replies in one run (default 5). */
  maxRounds?: number;
  /** Time limit per tool run in ms (default 30000; a tool's own timeoutMs wins). */
  toolTimeoutMs?: number;
  /** Run several calls of one reply at the same time (default: one after another). */
  parallelToolCalls?: boolean;
  /** Characters of a result the model reads (default 1024; the rest is cut and marked " [TRUNCATED]"). */
  maxObservationChars?: number;
  /**
   * Asked before each run; false gives the model a "declined" observation. `signal` is the run's:
   * when it aborts, the run stops waiting for the answer.
   */
  confirm?: (call: AgentToolCall, context: { signal?: AbortSignal }) => boolean | Promise<boolean>;
  signal?: AbortSignal;
  /** Default 0.1 (ChatGLM3's tool-mode default). */
  temperature?: number;
  /** Default 0.2 (ChatGLM3's tool-mode default). */
  top_p?: number;
  max_tokens?: number;
  seed?: number;
}

/** Checks the options of runAgent: the completer, the limits, the tools by name (unique). */
function agentSetup(options: RunAgentOptions): { completer: ChatCompleter; maxRounds: number; limit: number; tools: Map<string, AnyTool>; toolList: ReturnType<typeof toOpenAITool>[] } {
  const completer = options.completer ?? (options.model !== undefined ? localCompleter(options.model) : undefined);
  if (completer === undefined) throw new ChatGLMError('BAD_ARGUMENT', 'runAgent: give a model or a completer');
  if (!Array.isArray(options.messages) || options.messages.length === 0) {
    throw new ChatGLMError('BAD_ARGUMENT', 'runAgent: messages must be a non-empty array ending with the message to answer');
  }
  const maxRounds = options.maxRounds ?? DEFAULT_MAX_ROUNDS;
  if (!Number.isSafeInteger(maxRounds) || maxRounds < 1) throw new ChatGLMError('BAD_ARGUMENT', `runAgent: maxRounds must be a positive integer, got ${maxRounds}`);
  const limit = options.maxObservationChars ?? DEFAULT_OBSERVATION_CHARS;
  if (!Number.isSafeInteger(limit) || limit < 1) throw new ChatGLMError('BAD_ARGUMENT', `runAgent: maxObservationChars must be a positive integer, got ${limit}`);
  const tools = new Map<string, AnyTool>();
  for (const t of options.tools ?? []) {
    if (tools.has(t.name)) throw new ChatGLMError('BAD_ARGUMENT', `runAgent: two tools are named "${t.name}"`);
    if (options.interpreter !== undefined && t.name === INTERPRETER_TOOL_NAME) {
      throw new ChatGLMError('BAD_ARGUMENT', `runAgent: a tool may not be named "${INTERPRETER_TOOL_NAME}" when a code interpreter is given`);
    }
    tools.set(t.name, t);
  }
  const toolList = [...tools.values()].map(toOpenAITool);
  // Checked here, whatever the completer: "required" and unknown names fail before any request.
  planToolChoice(options.toolChoice, toolList.length > 0 ? [...tools.keys()] : undefined);

  return { completer, maxRounds, limit, tools, toolList };
}

export async function* runAgent(options: RunAgentOptions): AsyncGenerator<AgentEvent, void, void> {
  const { completer, maxRounds, limit, tools, toolList } = agentSetup(options);
  const history: ChatCompletionMessageParam[] = [...options.messages];
  // ChatGLM3 writes code for the interpreter when its system prompt says it has one; a
  // conversation that brings its own system message keeps it.
  // A completer that does not say its family (a remote endpoint) is taken to be ChatGLM3.
  const interpreterPrompt = completer.family === undefined ? CHATGLM3_CODE_INTERPRETER_PROMPT : getFamily(completer.family).interpreterSystemPrompt;
  if (options.interpreter !== undefined && history[0]?.role !== 'system' && interpreterPrompt !== undefined) {
    history.unshift({ role: 'system', content: interpreterPrompt });
  }
  const added: AgentMessage[] = [];
  const usage: CompletionUsage = { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };
  const signal = options.signal;
  const done = (stopReason: 'answer' | 'max_rounds' | 'aborted', rounds: number): AgentEvent => ({ type: 'done', messages: added, stopReason, rounds, usage });

  for (let round = 1; round <= maxRounds; round++) {
    if (signal?.aborted) {
      yield done('aborted', round - 1);
      return;
    }
    const request = roundRequest(options, history, toolList, round);
    let message: ChatCompletionMessage | undefined;
    let finishReason: FinishReason = 'stop';
    try {
      for await (const ev of completer.complete(request)) {
        if (ev.type === 'text') {
          yield { type: 'text', round, delta: ev.delta };
        } else {
          message = ev.message;
          finishReason = ev.finishReason;
          if (ev.usage !== undefined) {
            usage.prompt_tokens += ev.usage.prompt_tokens;
            usage.completion_tokens += ev.usage.completion_tokens;
            usage.total_tokens += ev.usage.total_tokens;
            yield { type: 'usage', round, usage: ev.usage };
          }
        }
      }
    } catch (err) {
      if (signal?.aborted && err instanceof ChatGLMError && err.code === 'ABORTED') {
        yield done('aborted', round);
        return;
      }
      throw err;
    }
    if (message === undefined) throw new ChatGLMError('BAD_FORMAT', `${completer.name}: the completion ended without a message`);

    const calls = agentCalls(message);
    if (calls.length === 0) {
      const final: AgentAssistantMessage = { role: 'assistant', content: message.content ?? '' };
      added.push(final);
      yield { type: 'round_end', round, finishReason };
      yield { type: 'final', round, message: final, finishReason };
      yield done('answer', round);
      return;
    }
    const assistant: AgentAssistantMessage = {
      role: 'assistant',
      content: message.content,
      tool_calls: calls.map((c) => ({ id: c.id, type: 'function' as const, function: { name: c.name, arguments: c.arguments } })),
    };
    added.push(assistant);
    history.push(assistant);

    const results: CallResult[] = [];
    if (options.parallelToolCalls === true) {
      for (const call of calls) yield { type: 'tool_call', round, call };
      results.push(...(await Promise.all(calls.map((call) => runCall(call, tools, options, limit)))));
    } else {
      for (const call of calls) {
        yield { type: 'tool_call', round, call };
        results.push(await runCall(call, tools, options, limit));
      }
    }
    for (const r of results) {
      const content = !r.outcome.ok ? errorObservation(r.outcome.error.message) : r.cut === true ? r.outcome.text : truncateObservation(r.outcome.text, limit);
      const toolMessage: AgentToolMessage = { role: 'tool', tool_call_id: r.call.id, content, ...(r.images !== undefined && r.images.length > 0 ? { images: r.images } : {}) };
      added.push(toolMessage);
      history.push(toolMessage as ChatCompletionMessageParam);
      yield {
        type: 'tool_result',
        round,
        call: r.call,
        content,
        result: r.outcome,
        ...(toolMessage.images !== undefined ? { images: toolMessage.images } : {}),
      };
    }
    yield { type: 'round_end', round, finishReason };
    if (signal?.aborted) {
      yield done('aborted', round);
      return;
    }
  }
  yield done('max_rounds', maxRounds);
}

/** The completion request of one round. */
function roundRequest(
  options: RunAgentOptions,
  history: ChatCompletionMessageParam[],
  toolList: ReturnType<typeof toOpenAITool>[],
  round: number,
): CompletionRequest {
  const signal = options.signal;
  return {
    messages: history,
    // With tool_choice "none" the tools are still sent (OpenAI takes tool_choice only with
    // tools); the completer leaves them out of the prompt.
    ...(toolList.length > 0 ? { tools: toolList } : {}),
      // A forced call (named or required) binds the first reply only, or the model could never answer.
    ...(toolList.length > 0 && options.toolChoice !== undefined && (round === 1 || options.toolChoice === 'none' || options.toolChoice === 'auto') ? { tool_choice: options.toolChoice } : {}),
    temperature: options.temperature ?? 0.1,
    top_p: options.top_p ?? 0.2,
    ...(options.max_tokens !== undefined ? { max_tokens: options.max_tokens } : {}),
    ...(options.seed !== undefined ? { seed: options.seed } : {}),
    ...(signal !== undefined ? { signal } : {}),
  };
}

/** The calls of a reply, including one whose arguments did not parse (its raw text as `arguments`). */
function agentCalls(message: ChatCompletionMessage): AgentToolCall[] {
  const calls: AgentToolCall[] = (message.tool_calls ?? []).map((c) => ({ id: c.id, name: c.function.name, arguments: c.function.arguments }));
  if (message.invalid_tool_call !== undefined) {
    const bad = message.invalid_tool_call;
    calls.push({ id: `call_invalid_${calls.length}`, name: bad.name, arguments: bad.content, invalid: bad.error });
  }
  return calls;
}

interface CallResult {
  call: AgentToolCall;
  outcome: ToolOutcome;
  images?: CodeRunImage[];
  /** The text is already cut to the observation limit (the interpreter's, whose [Image] marks must stay). */
  cut?: boolean;
}

async function runCall(
  call: AgentToolCall,
  tools: ReadonlyMap<string, AnyTool>,
  options: RunAgentOptions,
  limit: number,
): Promise<CallResult> {
  if (call.invalid !== undefined) {
    return { call, outcome: { ok: false, error: { kind: 'invalid_arguments', message: `${call.name}: ${call.invalid}` } } };
  }
  if (options.confirm !== undefined && !options.signal?.aborted) {
    const confirm = options.confirm;
    const signal = options.signal;
    // The question may wait for a person: the run's abort ends the wait.
    const answer = await runGuarded(async () => (await confirm(call, signal !== undefined ? { signal } : {})) === true, call.name, 24 * 3600 * 1000, signal);
    if (!answer.ok) {
      const reason = answer.error.kind === 'aborted' ? answer.error : { kind: 'declined' as const, message: `${call.name}: not run (${answer.error.message})` };
      return { call, outcome: { ok: false, error: reason } };
    }
    const ok = answer.value === true;
    if (!ok) return { call, outcome: { ok: false, error: { kind: 'declined', message: `${call.name}: the user declined to run this call` } } };
  }
  const timeoutMs = options.toolTimeoutMs ?? DEFAULT_TOOL_TIMEOUT_MS;
  if (call.name === INTERPRETER_TOOL_NAME && options.interpreter !== undefined && !tools.has(call.name)) {
    return runInterpreter(call, options.interpreter, options.signal, limit);
  }
  if (call.name === INTERPRETER_TOOL_NAME && !tools.has(call.name)) {
    return { call, outcome: { ok: false, error: { kind: 'unknown_tool', message: 'there is no code interpreter here; answer without running code' } } };
  }
  return { call, outcome: await runTool(tools, call.name, call.arguments, { callId: call.id, timeoutMs, ...(options.signal !== undefined ? { signal: options.signal } : {}) }) };
}

async function runInterpreter(
  call: AgentToolCall,
  interpreter: CodeInterpreterLike,
  signal: AbortSignal | undefined,
  limit: number,
): Promise<CallResult> {
  const parsed = parseArguments(call.arguments);
  const code = parsed.ok ? parsed.args['code'] : undefined;
  if (typeof code !== 'string' || code.trim() === '') {
    return { call, outcome: { ok: false, error: { kind: 'invalid_arguments', message: 'interpreter: the reply has no ```python code block to run' } } };
  }
  let result: CodeRunResult | undefined;
  // The interpreter keeps its own time limit per cell (CodeRunResult.timedOut); this one only
  // guards against an interpreter that never answers.
  const outcome = await runGuarded(
    async (inner) => {
      result = await interpreter.run(code, { signal: inner });
      return null;
    },
    INTERPRETER_TOOL_NAME,
    24 * 3600 * 1000,
    signal,
  );
  if (!outcome.ok || result === undefined) return { call, outcome };
  const text = interpreterText(result, limit);
  return { call, outcome: { ok: true, value: text, text }, cut: true, ...(result.images.length > 0 ? { images: result.images } : {}) };
}

/**
 * What ChatGLM3 reads after running code: the printed text (cut to the observation limit), the
 * traceback of an error, "Timed out", a note when the interpreter restarted, and "[Image]" per plot.
 */
export function interpreterText(r: CodeRunResult, limit = DEFAULT_OBSERVATION_CHARS): string {
  // Only the output is cut; the short notes after it must reach the model.
  const parts = [formatCodeObservation({ ...r, images: [] }, limit)];
  if (r.timedOut) parts.push('Timed out');
  if (r.restarted) parts.push('(the interpreter was restarted: earlier variables are gone)');
  for (let i = 0; i < r.images.length; i++) parts.push(CODE_OBSERVATION_IMAGE);
  return parts.filter((s) => s !== '').join('\n');
}

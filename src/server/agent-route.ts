/**
 * chatglm-specific routes for the web page's Tools and Code tabs (OpenAI's /v1 routes stay standard):
 *
 *   GET    /chatglm/tools              the tools this server runs, and whether it has a code interpreter
 *   POST   /chatglm/agent              runs the agent loop server-side; streams typed SSE events
 *   DELETE /chatglm/conversations/ID   stops that conversation's interpreter
 *
 * Only the tools given at start (`--tools-module`, `--builtin-tools`) and, with `--interpreter`, a
 * sandboxed Python per conversation can run. The model generates on the server's slots
 * (slot-completer.ts), so agent runs share the batch, queue and limits of /v1/chat/completions.
 */
import type { ChatCompletionMessageParam } from '../api.js';
import { runAgent, type AgentEvent, type AgentMessage } from '../agent/loop.js';
import type { AnyTool } from '../agent/tool.js';
import type { CodeRunImage } from '../agent/interpreter-types.js';
import type { CodeInterpreter } from '../agent/interpreter/index.js';
import { ChatGLMError } from '../errors.js';
import { badRequest, toHttpError } from './errors.js';
import type { SseWriter } from './sse.js';

export interface AgentRouteOptions {
  /** Tools the model may call (all offered unless a request names a subset). */
  tools: readonly AnyTool[];
  /** Starts a sandboxed interpreter for a conversation; absent = no Code mode. */
  createInterpreter?: () => Promise<CodeInterpreter>;
  /** A conversation's interpreter is closed after this long unused. Default 10 minutes. */
  interpreterIdleMs?: number;
  /** Interpreters kept at once; the least recently used idle one is closed for a new one. Default 8. */
  maxInterpreters?: number;
}

export interface AgentRequest {
  messages: ChatCompletionMessageParam[];
  /** Names of server tools to offer; default all. */
  tools: string[] | undefined;
  /** Code mode: run `interpreter` replies in this conversation's sandbox. */
  interpreter: boolean;
  conversationId: string | undefined;
  maxRounds: number | undefined;
  temperature: number | undefined;
  topP: number | undefined;
  maxTokens: number | undefined;
  seed: number | undefined;
}

const CONVERSATION_ID = /^[A-Za-z0-9_-]{1,64}$/;

function optNumber(body: Record<string, unknown>, name: string, ok: (v: number) => boolean, rule: string): number | undefined {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) throw badRequest(`${name} must be ${rule}, got ${JSON.stringify(v)}`, name);
  return v;
}

export function parseAgentRequest(body: unknown): AgentRequest {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw badRequest('the request body must be a JSON object');
  const b = body as Record<string, unknown>;
  if (!Array.isArray(b['messages']) || b['messages'].length === 0) throw badRequest('messages must be a non-empty array of chat messages', 'messages');
  for (const m of b['messages'] as unknown[]) {
    const role = (m as { role?: unknown } | null)?.role;
    if (typeof m !== 'object' || m === null || !['system', 'user', 'assistant', 'tool'].includes(role as string)) {
      throw badRequest('each message must be an object with role system, user, assistant or tool', 'messages');
    }
  }
  const tools = b['tools'];
  if (tools !== undefined && tools !== null && (!Array.isArray(tools) || tools.some((t) => typeof t !== 'string'))) throw badRequest('tools must be an array of tool names', 'tools');
  const cid = b['conversation_id'];
  if (cid !== undefined && cid !== null && (typeof cid !== 'string' || !CONVERSATION_ID.test(cid))) throw badRequest('conversation_id must be 1-64 letters, digits, "_" or "-"', 'conversation_id');
  const interpreter = b['interpreter'];
  if (interpreter !== undefined && typeof interpreter !== 'boolean') throw badRequest('interpreter must be true or false', 'interpreter');
  const int = (v: number): boolean => Number.isSafeInteger(v) && v >= 1;
  return {
    messages: b['messages'] as ChatCompletionMessageParam[],
    tools: Array.isArray(tools) ? (tools as string[]) : undefined,
    interpreter: interpreter === true,
    conversationId: typeof cid === 'string' ? cid : undefined,
    maxRounds: optNumber(b, 'max_rounds', (v) => int(v) && v <= 20, 'an integer from 1 to 20'),
    temperature: optNumber(b, 'temperature', (v) => v >= 0 && v <= 2, 'a number from 0 to 2'),
    topP: optNumber(b, 'top_p', (v) => v > 0 && v <= 1, 'a number in (0, 1]'),
    maxTokens: optNumber(b, 'max_tokens', int, 'a positive integer'),
    seed: optNumber(b, 'seed', Number.isSafeInteger, 'an integer'),
  };
}

interface Kernel {
  ready: Promise<CodeInterpreter>;
  busy: number;
  lastUsed: number;
  timer: NodeJS.Timeout | undefined;
}

/** One sandboxed interpreter per conversation, closed when idle, evicted when too many, closed at shutdown. */
export class InterpreterPool {
  private readonly kernels = new Map<string, Kernel>();

  constructor(
    private readonly create: () => Promise<CodeInterpreter>,
    private readonly idleMs: number,
    private readonly max: number,
  ) {}

  get size(): number {
    return this.kernels.size;
  }

  async use<T>(id: string, run: (ci: CodeInterpreter) => Promise<T>): Promise<T> {
    let k = this.kernels.get(id);
    if (k === undefined) {
      if (this.kernels.size >= this.max) {
        const idle = [...this.kernels.entries()].filter(([, v]) => v.busy === 0).sort((a, b) => a[1].lastUsed - b[1].lastUsed)[0];
        if (idle === undefined) throw new ChatGLMError('BAD_ARGUMENT', `all ${this.max} code interpreters are busy; retry when a conversation finishes`);
        await this.close(idle[0]);
      }
      k = { ready: this.create(), busy: 0, lastUsed: Date.now(), timer: undefined };
      this.kernels.set(id, k);
      k.ready.catch(() => this.kernels.delete(id));
    }
    const kernel = k;
    kernel.busy++;
    if (kernel.timer !== undefined) clearTimeout(kernel.timer);
    try {
      return await run(await kernel.ready);
    } finally {
      kernel.busy--;
      kernel.lastUsed = Date.now();
      if (kernel.busy === 0 && this.kernels.get(id) === kernel) {
        kernel.timer = setTimeout(() => void this.close(id), this.idleMs);
        kernel.timer.unref();
      }
    }
  }

  async close(id: string): Promise<boolean> {
    const k = this.kernels.get(id);
    if (k === undefined) return false;
    this.kernels.delete(id);
    if (k.timer !== undefined) clearTimeout(k.timer);
    await k.ready.then((ci) => ci.close(), () => {});
    return true;
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.kernels.keys()].map((id) => this.close(id)));
  }
}

function dataUrl(image: CodeRunImage): { mime: string; url: string } {
  return { mime: image.mime, url: `data:image/png;base64,${Buffer.from(image.data).toString('base64')}` };
}

/** A message of `done.messages` in OpenAI form (images travel in tool_result events, not in the transcript). */
function wireMessage(m: AgentMessage): ChatCompletionMessageParam {
  if (m.role === 'tool') return { role: 'tool', tool_call_id: m.tool_call_id, content: m.content };
  return { role: 'assistant', content: m.content, ...(m.tool_calls !== undefined ? { tool_calls: m.tool_calls } : {}) };
}

const RESULT_TEXT_LIMIT = 100_000;

/** An agent event as the page reads it. */
export function wireEvent(ev: AgentEvent): Record<string, unknown> | undefined {
  switch (ev.type) {
    case 'text':
      return { type: 'message.delta', round: ev.round, content: ev.delta };
    case 'tool_call':
      return { type: 'tool_call', round: ev.round, id: ev.call.id, name: ev.call.name, arguments: ev.call.arguments, ...(ev.call.invalid !== undefined ? { invalid: ev.call.invalid } : {}) };
    case 'tool_result': {
      const full = ev.result.ok ? ev.result.text : ev.result.error.message;
      return {
        type: 'tool_result',
        round: ev.round,
        id: ev.call.id,
        name: ev.call.name,
        ok: ev.result.ok,
        content: ev.content,
        output: full.length > RESULT_TEXT_LIMIT ? `${full.slice(0, RESULT_TEXT_LIMIT)} [TRUNCATED]` : full,
        truncated: ev.content !== full,
        images: (ev.images ?? []).map(dataUrl),
      };
    }
    case 'usage':
      return { type: 'usage', round: ev.round, usage: ev.usage };
    case 'round_end':
    case 'final':
      return undefined;
    case 'done':
      return { type: 'done', stop_reason: ev.stopReason, rounds: ev.rounds, messages: ev.messages.map(wireMessage), usage: ev.usage };
  }
}

export interface AgentRunContext {
  completer: import('../agent/completer.js').ChatCompleter;
  signal: AbortSignal;
  sse: SseWriter;
}

/** Runs one agent request and streams its events; the errors of a started stream become an `error` event. */
export async function runAgentRoute(options: AgentRouteOptions, interpreters: InterpreterPool | undefined, req: AgentRequest, ctx: AgentRunContext): Promise<void> {
  const byName = new Map(options.tools.map((t) => [t.name, t]));
  const tools: AnyTool[] = [];
  for (const name of req.tools ?? [...byName.keys()]) {
    const t = byName.get(name);
    if (t === undefined) throw badRequest(`this server has no tool ${JSON.stringify(name)}; GET /chatglm/tools lists them`, 'tools');
    tools.push(t);
  }
  if (req.interpreter && interpreters === undefined) throw badRequest('this server runs no code interpreter; start it with --interpreter', 'interpreter');
  if (req.interpreter && req.conversationId === undefined) throw badRequest('Code mode needs a conversation_id (its interpreter keeps variables between turns)', 'conversation_id');
  const run = async (interpreter: CodeInterpreter | undefined): Promise<void> => {
    ctx.sse.send({ type: 'start' });
    try {
      for await (const ev of runAgent({
        completer: ctx.completer,
        messages: req.messages,
        tools: req.interpreter ? [] : tools,
        ...(interpreter !== undefined ? { interpreter } : {}),
        signal: ctx.signal,
        ...(req.maxRounds !== undefined ? { maxRounds: req.maxRounds } : {}),
        ...(req.temperature !== undefined ? { temperature: req.temperature } : {}),
        ...(req.topP !== undefined ? { top_p: req.topP } : {}),
        ...(req.maxTokens !== undefined ? { max_tokens: req.maxTokens } : {}),
        ...(req.seed !== undefined ? { seed: req.seed } : {}),
      })) {
        const wire = wireEvent(ev);
        if (wire !== undefined) ctx.sse.send(wire);
      }
    } catch (err) {
      if (ctx.signal.aborted) throw err;
      ctx.sse.send({ type: 'error', error: toHttpError(err).body().error });
    }
    ctx.sse.end();
  };
  if (req.interpreter) await interpreters!.use(req.conversationId!, (ci) => run(ci));
  else await run(undefined);
}

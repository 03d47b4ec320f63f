/**
 * `chatglm serve`: an OpenAI-compatible HTTP server on node:http with continuous batching.
 *
 *   POST /v1/chat/completions   POST /v1/completions   GET /v1/models   GET /health   GET /metrics
 *
 * The server listens before the model has loaded (/health answers 503 until it is ready). Every
 * generating request holds one slot (slots.ts); the slots' forward steps run together, one batched
 * forward per tick (generate/batch-scheduler.ts). A client that disconnects aborts its request:
 * its queued step is dropped and its slot freed at once. close() stops accepting, lets in-flight
 * requests finish for a grace period, then aborts the rest.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { timingSafeEqual } from 'node:crypto';
import type { ChatModel } from '../api.js';
import { ChatGLMError } from '../errors.js';
import { HttpError, badRequest, toHttpError } from './errors.js';
import { chatCompletion, textCompletion, type GenerationContext } from './generation.js';
import { ServerMetrics } from './metrics.js';
import { parseChatRequest, parseCompletionRequest } from './requests.js';
import { SlotPool } from './slots.js';
import { SseWriter } from './sse.js';
import { InterpreterPool, parseAgentRequest, runAgentRoute, type AgentRouteOptions } from './agent-route.js';
import { slotCompleter } from './slot-completer.js';
import { isWebRoute, serveWebPage } from './web-page.js';

export interface ServerOptions {
  /** The model, or a promise of it (the server answers /health with 503 until it resolves). */
  model: ChatModel | Promise<ChatModel>;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 8000; 0 picks a free port. */
  port?: number;
  /** Sequences generated together (slots). Default 4. */
  parallel?: number;
  /** Positions per slot (prompt + reply). Default: the model's context length. */
  ctxSize?: number;
  /** Requests that may wait for a slot before new ones get 503. Default 64. */
  maxQueue?: number;
  /** Bearer key every /v1 and /metrics request must send. */
  apiKey?: string;
  /** Value of Access-Control-Allow-Origin (e.g. "*" or "http://localhost:5173"); no CORS headers without it. */
  cors?: string;
  /** Largest request body in bytes. Default 8 MiB. */
  maxBodyBytes?: number;
  /** Prompt tokens per batched step over all slots. Default 128. */
  prefillBudget?: number;
  /** Server-side tools and code interpreter for /chatglm/agent (the page's Tools and Code tabs); absent = those routes answer 404. */
  agent?: AgentRouteOptions;
}

interface Ready {
  chat: ChatModel;
  pool: SlotPool;
}

const CREATED = Math.floor(Date.now() / 1000);

export class ChatGLMServer {
  readonly metrics = new ServerMetrics();
  private readonly http: http.Server;
  private ready: Ready | undefined;
  private loadError: unknown;
  private readonly loading: Promise<void>;
  private draining = false;
  private readonly inflight = new Set<AbortController>();
  private readonly options: ServerOptions;
  private idle: (() => void) | undefined;
  private readonly interpreters: InterpreterPool | undefined;

  constructor(options: ServerOptions) {
    this.options = options;
    const parallel = options.parallel ?? 4;
    if (!Number.isSafeInteger(parallel) || parallel < 1 || parallel > 256) throw new ChatGLMError('BAD_ARGUMENT', `--parallel must be an integer from 1 to 256, got ${parallel}`);
    this.http = http.createServer((req, res) => {
      void this.handle(req, res);
    });
    this.http.keepAliveTimeout = 5000;
    const agent = options.agent;
    if (agent?.createInterpreter !== undefined) this.interpreters = new InterpreterPool(agent.createInterpreter, agent.interpreterIdleMs ?? 600_000, agent.maxInterpreters ?? 8);
    this.loading = Promise.resolve(options.model).then(
      (chat) => {
        const ctxSize = options.ctxSize ?? chat.contextLength;
        if (!Number.isSafeInteger(ctxSize) || ctxSize < 2) throw new ChatGLMError('BAD_ARGUMENT', `--ctx-size must be an integer >= 2, got ${ctxSize}`);
        const pool = new SlotPool(chat.model, {
          slots: parallel,
          contextSize: ctxSize,
          maxQueue: options.maxQueue ?? 64,
          ...(options.prefillBudget !== undefined ? { prefillBudget: options.prefillBudget } : {}),
          onSampled: () => this.metrics.token(),
        });
        this.ready = { chat, pool };
      },
      (err: unknown) => {
        this.loadError = err;
        throw err;
      },
    );
    // A load failure is reported by /health and whenReady(); it must not crash a process that never asks.
    this.loading.catch(() => {});
  }

  /** Resolves once listening (the model may still be loading). */
  listen(): Promise<string> {
    return new Promise((resolve, reject) => {
      this.http.once('error', reject);
      this.http.listen(this.options.port ?? 8000, this.options.host ?? '127.0.0.1', () => {
        this.http.off('error', reject);
        resolve(this.url);
      });
    });
  }

  /** Resolves when the model has loaded (rejects with the load error). */
  whenReady(): Promise<void> {
    return this.loading;
  }

  get url(): string {
    const a = this.http.address() as AddressInfo;
    const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
    return `http://${host}:${a.port}`;
  }

  /** The slot pool (for tests and the load test), once loaded. */
  get pool(): SlotPool | undefined {
    return this.ready?.pool;
  }

  /**
   * Stops accepting requests, lets in-flight ones finish for up to `graceMs`, aborts the rest,
   * and closes every connection.
   */
  async close(graceMs = 10_000): Promise<void> {
    this.draining = true;
    const closed = new Promise<void>((resolve) => this.http.close(() => resolve()));
    this.http.closeIdleConnections();
    this.ready?.pool.rejectWaiting(new HttpError(503, 'unavailable_error', 'shutting_down', 'the server is shutting down', {}, { 'retry-after': '5' }));
    await this.settled(graceMs);
    // Cancelled requests still write their error (a JSON body or a stream's error event) before the sockets close.
    for (const c of this.inflight) c.abort();
    await this.settled(1000);
    this.ready?.pool.scheduler.close();
    await this.interpreters?.closeAll();
    this.http.closeAllConnections();
    await closed;
  }

  /** Resolves when no request is in flight, or after `ms`. */
  private async settled(ms: number): Promise<void> {
    if (this.inflight.size === 0) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.idle = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.idle = undefined;
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    const h: Record<string, string> = { ...extra };
    if (this.options.cors !== undefined) {
      h['access-control-allow-origin'] = this.options.cors;
      h['vary'] = 'Origin';
    }
    return h;
  }

  private json(res: ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}): void {
    const text = JSON.stringify(body);
    res.writeHead(status, this.headers({ 'content-type': 'application/json; charset=utf-8', 'content-length': String(Buffer.byteLength(text)), ...extra }));
    res.end(text);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const route = url.pathname.replace(/\/+$/, '') || '/';
    let status = 200;
    try {
      status = await this.route(req, res, route);
    } catch (err) {
      const e = toHttpError(err);
      status = e.status;
      if (!res.headersSent) {
        if (e.status === 413) res.setHeader('connection', 'close');
        this.json(res, e.status, e.body(), e.headers);
      } else if (!res.writableEnded) {
        res.end();
      }
    }
    this.metrics.request(ROUTES.has(route) ? route : 'other', status);
  }

  /** Answers one request; returns the status sent. */
  private async route(req: IncomingMessage, res: ServerResponse, route: string): Promise<number> {
    const method = req.method ?? 'GET';
    if (method === 'OPTIONS' && this.options.cors !== undefined) {
      res.writeHead(204, this.headers({ 'access-control-allow-methods': 'GET, POST, DELETE, OPTIONS', 'access-control-allow-headers': 'authorization, content-type', 'access-control-max-age': '86400' }));
      res.end();
      return 204;
    }
    if (method === 'GET' && isWebRoute(route)) return serveWebPage(res, route, this.headers());
    if (route.startsWith('/chatglm/')) return this.chatglmRoute(req, res, route, method);
    if (!ROUTES.has(route)) throw new HttpError(404, 'not_found_error', 'not_found', `no route ${method} ${route}; see GET /v1/models, POST /v1/chat/completions, POST /v1/completions, GET /health, GET /metrics`);
    const wanted = route === '/v1/chat/completions' || route === '/v1/completions' ? 'POST' : 'GET';
    if (method !== wanted) throw new HttpError(405, 'invalid_request_error', 'method_not_allowed', `${route} takes ${wanted}, not ${method}`, {}, { allow: wanted });
    if (route === '/health') {
      if (this.ready === undefined) {
        const failed = this.loadError !== undefined;
        this.json(res, 503, { status: failed ? 'error' : 'loading', error: { message: failed ? 'the model failed to load' : 'the model is loading', type: 'unavailable_error', code: failed ? 'load_failed' : 'loading' } });
        return 503;
      }
      const pool = this.ready.pool;
      this.json(res, 200, { status: 'ok', slots_idle: pool.slots.length - pool.busyCount, slots_processing: pool.busyCount, queue_depth: pool.queueDepth });
      return 200;
    }
    this.authorize(req);
    if (this.draining) throw new HttpError(503, 'unavailable_error', 'shutting_down', 'the server is shutting down', {}, { 'retry-after': '5' });
    const ready = this.ready;
    if (ready === undefined) throw new HttpError(503, 'unavailable_error', 'loading', 'the model is still loading; retry shortly (GET /health says when it is ready)', {}, { 'retry-after': '1' });
    if (route === '/metrics') {
      const text = this.metrics.render({ queueDepth: ready.pool.queueDepth, busySlots: ready.pool.busyCount, slots: ready.pool.slots.length, batch: ready.pool.scheduler.stats, sharedPrefixTokens: ready.pool.sharedPrefixTokens });
      res.writeHead(200, this.headers({ 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }));
      res.end(text);
      return 200;
    }
    if (route === '/v1/models') {
      this.json(res, 200, { object: 'list', data: [{ id: ready.chat.name, object: 'model', created: CREATED, owned_by: 'chatglm.ts', meta: { family: ready.chat.family, n_ctx: ready.pool.contextSize, slots: ready.pool.slots.length } }] });
      return 200;
    }
    const body = await this.readJson(req);
    const parsed = route === '/v1/chat/completions' ? parseChatRequest(body) : parseCompletionRequest(body);
    if (parsed.model !== ready.chat.name) {
      throw new HttpError(404, 'not_found_error', 'model_not_found', `the model ${JSON.stringify(parsed.model)} does not exist here; this server serves ${JSON.stringify(ready.chat.name)}`, { param: 'model' });
    }
    return this.generate(req, res, route, parsed, ready);
  }

  private async generate(
    req: IncomingMessage,
    res: ServerResponse,
    route: string,
    parsed: ReturnType<typeof parseChatRequest> | ReturnType<typeof parseCompletionRequest>,
    ready: Ready,
  ): Promise<number> {
    const sse = parsed.stream ? new SseWriter(res, this.headers()) : undefined;
    return this.inFlight(res, sse, async (signal) => {
      const ctx: GenerationContext = { chat: ready.chat, pool: ready.pool, metrics: this.metrics, signal, arrived: performance.now() };
      const out = route === '/v1/chat/completions' ? await chatCompletion(ctx, parsed as ReturnType<typeof parseChatRequest>, sse) : await textCompletion(ctx, parsed as ReturnType<typeof parseCompletionRequest>, sse);
      if (sse === undefined) this.json(res, 200, out);
    });
  }

  /**
   * Runs one generating request: the client leaving (socket closed before the response ended)
   * aborts it, it counts as in flight for a draining shutdown, and an error after streaming began
   * goes out as an SSE error event. Resolves to the status for the access log.
   */
  private async inFlight(res: ServerResponse, sse: SseWriter | undefined, work: (signal: AbortSignal) => Promise<void>): Promise<number> {
    const abort = new AbortController();
    const onClose = (): void => {
      if (!res.writableFinished) abort.abort();
    };
    res.on('close', onClose);
    this.inflight.add(abort);
    try {
      await work(abort.signal);
      return 200;
    } catch (err) {
      if (abort.signal.aborted && !this.draining) return 499; // the client left: nobody to answer
      const e = toHttpError(err);
      if (sse !== undefined && res.headersSent) {
        sse.fail(e);
        return e.status;
      }
      throw e;
    } finally {
      res.off('close', onClose);
      this.inflight.delete(abort);
      if (this.inflight.size === 0) this.idle?.();
    }
  }

  /** GET /chatglm/tools, POST /chatglm/agent, DELETE /chatglm/conversations/ID (agent-route.ts). */
  private async chatglmRoute(req: IncomingMessage, res: ServerResponse, route: string, method: string): Promise<number> {
    const agent = this.options.agent;
    if (agent === undefined) throw new HttpError(404, 'not_found_error', 'not_found', `no route ${method} ${route}: server-side tools are off; start the server with --tools-module, --builtin-tools or --interpreter`);
    const conversation = /^\/chatglm\/conversations\/([A-Za-z0-9_-]{1,64})$/.exec(route);
    const wanted = route === '/chatglm/tools' ? 'GET' : route === '/chatglm/agent' ? 'POST' : conversation !== null ? 'DELETE' : undefined;
    if (wanted === undefined) throw new HttpError(404, 'not_found_error', 'not_found', `no route ${method} ${route}; see GET /chatglm/tools, POST /chatglm/agent, DELETE /chatglm/conversations/ID`);
    if (method !== wanted) throw new HttpError(405, 'invalid_request_error', 'method_not_allowed', `${route} takes ${wanted}, not ${method}`, {}, { allow: wanted });
    this.authorize(req);
    if (this.draining) throw new HttpError(503, 'unavailable_error', 'shutting_down', 'the server is shutting down', {}, { 'retry-after': '5' });
    if (route === '/chatglm/tools') {
      this.json(res, 200, { tools: agent.tools.map((t) => ({ name: t.name, description: t.description, parameters: t.parameters })), interpreter: this.interpreters !== undefined });
      return 200;
    }
    if (conversation !== null) {
      const closed = (await this.interpreters?.close(conversation[1]!)) ?? false;
      this.json(res, 200, { id: conversation[1], closed });
      return 200;
    }
    const ready = this.ready;
    if (ready === undefined) throw new HttpError(503, 'unavailable_error', 'loading', 'the model is still loading; retry shortly (GET /health says when it is ready)', {}, { 'retry-after': '1' });
    const parsed = parseAgentRequest(await this.readJson(req));
    const sse = new SseWriter(res, this.headers());
    return this.inFlight(res, sse, (signal) =>
      runAgentRoute(agent, this.interpreters, parsed, { completer: slotCompleter(ready.chat, ready.pool, this.metrics), signal, sse }),
    );
  }

  private authorize(req: IncomingMessage): void {
    const key = this.options.apiKey;
    if (key === undefined) return;
    const auth = req.headers.authorization ?? '';
    const given = Buffer.from(auth.startsWith('Bearer ') ? auth.slice(7) : '');
    const want = Buffer.from(key);
    if (given.length !== want.length || !timingSafeEqual(given, want)) {
      throw new HttpError(401, 'authentication_error', 'invalid_api_key', 'missing or wrong API key; send "Authorization: Bearer KEY" with the key the server was started with');
    }
  }

  private readJson(req: IncomingMessage): Promise<unknown> {
    const limit = this.options.maxBodyBytes ?? 8 * 1024 * 1024;
    return new Promise((resolve, reject) => {
      const declared = Number(req.headers['content-length'] ?? '0');
      const tooLarge = (): HttpError => new HttpError(413, 'invalid_request_error', 'request_too_large', `the request body is larger than ${limit} bytes`);
      if (declared > limit) {
        req.resume();
        reject(tooLarge());
        return;
      }
      const parts: Buffer[] = [];
      let size = 0;
      let failed = false;
      req.on('data', (b: Buffer) => {
        if (failed) return;
        size += b.length;
        if (size > limit) {
          failed = true;
          reject(tooLarge());
          return;
        }
        parts.push(b);
      });
      req.on('end', () => {
        if (failed) return;
        try {
          resolve(JSON.parse(Buffer.concat(parts).toString('utf8')) as unknown);
        } catch (err) {
          reject(badRequest(`the request body is not valid JSON: ${err instanceof Error ? err.message : String(err)}`, null, 'invalid_json'));
        }
      });
      req.on('error', (err) => reject(err));
      // A client that leaves mid-body: nothing will come, and nobody waits for the answer.
      req.on('close', () => {
        if (!req.complete) reject(new ChatGLMError('ABORTED', 'the client closed the connection before sending the whole body'));
      });
    });
  }
}

const ROUTES = new Set(['/v1/chat/completions', '/v1/completions', '/v1/models', '/health', '/metrics']);

/** Starts a server and resolves once it listens; `whenReady()` tells when the model has loaded. */
export async function startServer(options: ServerOptions): Promise<ChatGLMServer> {
  const server = new ChatGLMServer(options);
  await server.listen();
  return server;
}

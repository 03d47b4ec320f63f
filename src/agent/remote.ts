/**
 * A remote OpenAI-compatible /v1/chat/completions endpoint as a ChatCompleter (plain fetch and
 * server-sent events, no client library): our own server, vLLM serving ChatGLM3/GLM-4, or any
 * other. Failures are ChatGLMErrors: NETWORK when the server cannot be reached, HTTP when it
 * answers with an error (its own message included), ABORTED when the caller aborts.
 */
import { ChatGLMError } from '../errors.js';
import type { ChatCompletionMessageParam } from '../api.js';
import { ChunkAccumulator, type ChatCompleter, type CompletionEvent, type CompletionRequest, type StreamedChoice } from './completer.js';

export interface RemoteCompleterOptions {
  /** http://host:port, http://host:port/v1, or the full .../v1/chat/completions URL. */
  endpoint: string;
  /** Sent as `Authorization: Bearer KEY`. */
  apiKey?: string;
  /** The `model` field of each request. Default: the first model the endpoint's /v1/models lists. */
  model?: string;
  /** Extra request headers. */
  headers?: Record<string, string>;
}

/** The chat-completions URL and the models URL for an endpoint as a user may write it. */
export function endpointUrls(endpoint: string): { chat: string; models: string } {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new ChatGLMError('BAD_ARGUMENT', `endpoint ${JSON.stringify(endpoint)} is not a URL; use e.g. http://127.0.0.1:8000/v1`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ChatGLMError('BAD_ARGUMENT', `endpoint ${endpoint} must be an http:// or https:// URL`);
  }
  const base = url.href.replace(/\/+$/, '');
  if (base.endsWith('/chat/completions')) return { chat: base, models: base.slice(0, -'/chat/completions'.length) + '/models' };
  const v1 = base.endsWith('/v1') ? base : `${base}/v1`;
  return { chat: `${v1}/chat/completions`, models: `${v1}/models` };
}

export function remoteCompleter(options: RemoteCompleterOptions): ChatCompleter {
  const urls = endpointUrls(options.endpoint);
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    accept: 'text/event-stream, application/json',
    ...(options.apiKey !== undefined ? { authorization: `Bearer ${options.apiKey}` } : {}),
    ...options.headers,
  };
  let model: string | undefined = options.model;

  const call = async (url: string, init: RequestInit, signal: AbortSignal | undefined): Promise<Response> => {
    let res: Response;
    try {
      res = await fetch(url, { ...init, headers, ...(signal !== undefined ? { signal } : {}) });
    } catch (err) {
      if (signal?.aborted) throw new ChatGLMError('ABORTED', 'the request was aborted', { cause: err });
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      const why = cause?.code ?? cause?.message ?? (err as Error).message;
      throw new ChatGLMError('NETWORK', `cannot reach ${url} (${why}); check --endpoint and that the server is running`, { cause: err });
    }
    if (!res.ok) throw await httpError(url, res);
    return res;
  };

  const modelName = async (signal: AbortSignal | undefined): Promise<string> => {
    if (model !== undefined) return model;
    const res = await call(urls.models, { method: 'GET' }, signal);
    const body = (await readJson(res, urls.models)) as { data?: { id?: unknown }[] };
    const id = Array.isArray(body.data) ? body.data[0]?.id : undefined;
    if (typeof id !== 'string') throw new ChatGLMError('BAD_FORMAT', `${urls.models} lists no models; name one with --remote-model NAME`);
    model = id;
    return id;
  };

  return {
    name: options.model ?? urls.chat,
    async *complete(request: CompletionRequest): AsyncGenerator<CompletionEvent, void, void> {
      const signal = request.signal;
      const body = {
        model: await modelName(signal),
        messages: request.messages.map(wireMessage),
        stream: true,
        stream_options: { include_usage: true },
        ...(request.tools !== undefined && request.tools.length > 0 ? { tools: request.tools } : {}),
        ...(request.tool_choice !== undefined ? { tool_choice: request.tool_choice } : {}),
        ...(request.temperature !== undefined ? { temperature: request.temperature } : {}),
        ...(request.top_p !== undefined ? { top_p: request.top_p } : {}),
        ...(request.max_tokens !== undefined ? { max_tokens: request.max_tokens } : {}),
        ...(request.seed !== undefined ? { seed: request.seed } : {}),
      };
      const res = await call(urls.chat, { method: 'POST', body: JSON.stringify(body) }, signal);
      const acc = new ChunkAccumulator();
      const type = res.headers.get('content-type') ?? '';
      try {
        if (!type.includes('text/event-stream')) {
          // A server that ignores `stream` answers with one completion object.
          const whole = (await readJson(res, urls.chat)) as { choices?: { message?: StreamedChoice['delta']; finish_reason?: string | null }[]; usage?: unknown };
          const choice = whole.choices?.[0];
          if (choice === undefined) throw new ChatGLMError('BAD_FORMAT', `${urls.chat} answered without choices`);
          const msg = choice.message ?? {};
          const calls = (msg.tool_calls ?? []).map((c, index) => ({ ...c, index }));
          const text = acc.push({ delta: { ...msg, tool_calls: calls }, finish_reason: choice.finish_reason ?? null });
          if (text !== '') yield { type: 'text', delta: text };
          if (isUsage(whole.usage)) acc.usage = whole.usage;
        } else {
          for await (const data of serverSentData(res, signal)) {
            if (data === '[DONE]') break;
            let chunk: { choices?: StreamedChoice[]; usage?: unknown; error?: { message?: string } };
            try {
              chunk = JSON.parse(data) as typeof chunk;
            } catch {
              throw new ChatGLMError('BAD_FORMAT', `${urls.chat} streamed something that is not JSON: ${data.slice(0, 200)}`);
            }
            if (chunk.error !== undefined) {
              throw new ChatGLMError('HTTP', `${urls.chat} reported an error while streaming: ${chunk.error.message ?? JSON.stringify(chunk.error)}`);
            }
            const text = acc.push(chunk.choices?.[0]);
            if (text !== '') yield { type: 'text', delta: text };
            if (isUsage(chunk.usage)) acc.usage = chunk.usage;
          }
        }
      } catch (err) {
        if (signal?.aborted) throw new ChatGLMError('ABORTED', 'the request was aborted', { cause: err });
        if (err instanceof ChatGLMError) throw err;
        throw new ChatGLMError('NETWORK', `${urls.chat}: the connection failed while reading the answer (${(err as Error).message})`, { cause: err });
      }
      yield acc.message();
    },
  };
}

/** The message as the OpenAI API takes it: fields only the agent uses (images) stay here. */
function wireMessage(m: ChatCompletionMessageParam): ChatCompletionMessageParam {
  if (m.role === 'tool' && 'images' in m) {
    const { images: _images, ...rest } = m as typeof m & { images?: unknown };
    return rest;
  }
  return m;
}

function isUsage(u: unknown): u is { prompt_tokens: number; completion_tokens: number; total_tokens: number } {
  return u !== null && typeof u === 'object' && typeof (u as { total_tokens?: unknown }).total_tokens === 'number';
}

async function httpError(url: string, res: Response): Promise<ChatGLMError> {
  let detail = '';
  try {
    const text = await res.text();
    try {
      const body = JSON.parse(text) as { error?: { message?: unknown } | string; message?: unknown; detail?: unknown };
      const e = body.error;
      const m = typeof e === 'string' ? e : typeof e?.message === 'string' ? e.message : typeof body.message === 'string' ? body.message : typeof body.detail === 'string' ? body.detail : undefined;
      detail = m ?? text;
    } catch {
      detail = text;
    }
  } catch {
    // The body could not be read; the status says enough.
  }
  detail = detail.trim().slice(0, 500);
  const fix = res.status === 401 || res.status === 403 ? ' (check --api-key)' : res.status === 404 ? ' (check the --endpoint URL)' : '';
  return new ChatGLMError('HTTP', `${url} answered ${res.status} ${res.statusText}${detail !== '' ? `: ${detail}` : ''}${fix}`);
}

async function readJson(res: Response, url: string): Promise<unknown> {
  const text = await res.text();
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new ChatGLMError('BAD_FORMAT', `${url} answered with something that is not JSON: ${text.slice(0, 200)}`);
  }
}

/** The `data:` payloads of a server-sent event stream, one per event. */
async function* serverSentData(res: Response, signal: AbortSignal | undefined): AsyncGenerator<string, void, void> {
  if (res.body === null) return;
  const decoder = new TextDecoder();
  let buffer = '';
  let data: string[] = [];
  const reader = res.body.getReader();
  try {
    for (;;) {
      if (signal?.aborted) throw new ChatGLMError('ABORTED', 'the request was aborted');
      const { value, done } = await reader.read();
      buffer += done ? decoder.decode() : decoder.decode(value, { stream: true });
      let nl: number;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl).replace(/\r$/, '');
        buffer = buffer.slice(nl + 1);
        if (line === '') {
          if (data.length > 0) yield data.join('\n');
          data = [];
        } else if (line.startsWith('data:')) {
          data.push(line.slice(5).replace(/^ /, ''));
        }
        // Other fields (event:, id:, retry:) and comments (":") carry nothing the loop needs.
      }
      if (done) break;
    }
    if (buffer.startsWith('data:')) data.push(buffer.slice(5).replace(/^ /, ''));
    if (data.length > 0) yield data.join('\n');
  } finally {
    reader.releaseLock();
    // Stop the download when the caller stops early.
    await res.body.cancel().catch(() => {});
  }
}

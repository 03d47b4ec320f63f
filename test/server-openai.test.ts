/**
 * `chatglm serve` against the official `openai` client: the real server on 127.0.0.1 (port 0)
 * with the bundled demo model. The expected answers come from the library's own non-batched path
 * (ChatModel.createChatCompletion), computed here, not copied.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI, { APIError, AuthenticationError, BadRequestError, NotFoundError } from 'openai';
import { loadChatModel, type ChatModel } from '../src/api.js';
import { startServer, type ChatGLMServer } from '../src/server/server.js';

const KEY = 'test-key';
let chat: ChatModel;
let server: ChatGLMServer;
let client: OpenAI;
let model: string;

const WEATHER_TOOL = {
  type: 'function' as const,
  function: {
    name: 'get_current_weather',
    description: 'Get the current weather in a given city',
    parameters: { type: 'object', properties: { location: { type: 'string' } }, required: ['location'] },
  },
};

function clientFor(s: ChatGLMServer, apiKey = KEY): OpenAI {
  return new OpenAI({ baseURL: `${s.url}/v1`, apiKey, maxRetries: 0, timeout: 20_000 });
}

before(async () => {
  chat = await loadChatModel();
  model = chat.name;
  server = await startServer({ model: chat, port: 0, parallel: 4, apiKey: KEY, maxBodyBytes: 64 * 1024 });
  await server.whenReady();
  client = clientFor(server);
});

after(async () => {
  await server?.close(0);
  chat?.dispose();
});

test('models.list() names the served model', async () => {
  const list = await client.models.list();
  assert.deepEqual(
    list.data.map((m) => m.id),
    ['chatglm3-demo'],
  );
  assert.equal(list.data[0]!.object, 'model');
});

test('non-streaming chat equals the library answer for the same greedy request', async () => {
  const messages = [{ role: 'user' as const, content: 'Hello, who are you?' }];
  const want = await chat.createChatCompletion({ messages, temperature: 0, max_tokens: 40 });
  const r = await client.chat.completions.create({ model, messages, temperature: 0, max_tokens: 40 });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.choices[0]!.message.role, 'assistant');
  assert.equal(r.choices[0]!.message.content, want.choices[0].message.content);
  assert.ok((r.choices[0]!.message.content ?? '').length > 0);
  assert.equal(r.choices[0]!.finish_reason, want.choices[0].finish_reason);
  assert.equal(r.usage!.prompt_tokens, chat.renderPrompt(messages).ids.length);
  assert.equal(r.usage!.completion_tokens, want.usage.completion_tokens);
  assert.equal(r.usage!.total_tokens, r.usage!.prompt_tokens + r.usage!.completion_tokens);
});

test('streaming chat: role first, deltas add up to the non-streamed answer, finish_reason, usage chunk, [DONE]', async () => {
  const messages = [{ role: 'user' as const, content: '你好' }];
  const whole = await client.chat.completions.create({ model, messages, temperature: 0, max_tokens: 40 });
  const stream = await client.chat.completions.create({ model, messages, temperature: 0, max_tokens: 40, stream: true, stream_options: { include_usage: true } });
  let text = '';
  let role: string | undefined;
  let finish: string | null = null;
  let usage: OpenAI.CompletionUsage | undefined;
  let chunks = 0;
  for await (const c of stream) {
    chunks++;
    if (c.usage) {
      assert.deepEqual(c.choices, []);
      usage = c.usage;
      continue;
    }
    const choice = c.choices[0]!;
    assert.equal(choice.index, 0);
    role ??= choice.delta.role;
    text += choice.delta.content ?? '';
    if (choice.finish_reason !== null) finish = choice.finish_reason;
  }
  assert.equal(role, 'assistant');
  assert.ok(chunks > 3);
  assert.equal(text, whole.choices[0]!.message.content);
  assert.equal(finish, whole.choices[0]!.finish_reason);
  assert.equal(usage?.completion_tokens, whole.usage!.completion_tokens);
  assert.equal(usage?.prompt_tokens, whole.usage!.prompt_tokens);
  // The official stream helper checks the chunk protocol (role, finish_reason) as it accumulates.
  const helper = client.chat.completions.stream({ model, messages, temperature: 0, max_tokens: 40 });
  const final = await helper.finalChatCompletion();
  assert.equal(final.choices[0]!.message.content, whole.choices[0]!.message.content);
});

test('a tool call, then the tool result sent back: the answer quotes it, and the turn reuses the cached prefix', async () => {
  const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'What is the weather in Tokyo today?' }];
  const r = await client.chat.completions.create({ model, messages, tools: [WEATHER_TOOL], tool_choice: 'auto', temperature: 0 });
  const choice = r.choices[0]!;
  assert.equal(choice.finish_reason, 'tool_calls');
  const call = choice.message.tool_calls![0]!;
  assert.equal(call.type, 'function');
  assert.ok(call.type === 'function');
  assert.equal(call.function.name, 'get_current_weather');
  assert.deepEqual(JSON.parse(call.function.arguments), { location: 'Tokyo' });
  assert.match(call.id, /^call_/);

  const turn2: OpenAI.ChatCompletionMessageParam[] = [
    ...messages,
    choice.message,
    { role: 'tool', tool_call_id: call.id, content: '{"location": "Tokyo", "temperature": 31, "unit": "celsius", "description": "sunny"}' },
  ];
  const r2 = await client.chat.completions.create({ model, messages: turn2, tools: [WEATHER_TOOL], temperature: 0 });
  assert.equal(r2.choices[0]!.finish_reason, 'stop');
  assert.match(r2.choices[0]!.message.content ?? '', /31/);
  // The slot still held the first prompt (and the start of the call): that part did not run again.
  const cached = (r2.usage as { prompt_tokens_details?: { cached_tokens?: number } }).prompt_tokens_details?.cached_tokens ?? 0;
  assert.ok(cached >= r.usage!.prompt_tokens && cached < r2.usage!.prompt_tokens, `cached ${cached} of ${r2.usage!.prompt_tokens}`);

  // Streamed, the call arrives as delta.tool_calls with index, id, type and the whole function.
  const stream = await client.chat.completions.create({ model, messages, tools: [WEATHER_TOOL], temperature: 0, stream: true });
  const deltas: OpenAI.ChatCompletionChunk.Choice.Delta.ToolCall[] = [];
  let finish: string | null = null;
  for await (const c of stream) {
    deltas.push(...(c.choices[0]?.delta.tool_calls ?? []));
    finish = c.choices[0]?.finish_reason ?? finish;
  }
  assert.equal(finish, 'tool_calls');
  assert.equal(deltas.length, 1);
  assert.equal(deltas[0]!.index, 0);
  assert.equal(deltas[0]!.type, 'function');
  assert.equal(deltas[0]!.function?.name, 'get_current_weather');
  assert.deepEqual(JSON.parse(deltas[0]!.function?.arguments ?? ''), { location: 'Tokyo' });
  // tool_choice "none": the tools are not offered, so no call.
  const none = await client.chat.completions.create({ model, messages, tools: [WEATHER_TOOL], tool_choice: 'none', temperature: 0, max_tokens: 30 });
  assert.equal(none.choices[0]!.message.tool_calls, undefined);
});

test('aborting mid-stream frees the slot at once and the server keeps serving', async () => {
  const ac = new AbortController();
  const stream = await client.chat.completions.create(
    { model, messages: [{ role: 'user', content: 'Tell me about yourself.' }], temperature: 0, max_tokens: 900, stream: true },
    { signal: ac.signal },
  );
  let got = 0;
  // The client ends the iteration quietly once its own signal aborts.
  for await (const c of stream) {
    if ((c.choices[0]?.delta.content ?? '') !== '' && ++got === 2) ac.abort();
  }
  assert.equal(got, 2);
  const pool = server.pool!;
  for (let i = 0; i < 100 && pool.busyCount > 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(pool.busyCount, 0);
  assert.equal(pool.scheduler.pending, 0);
  const r = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }], temperature: 0, max_tokens: 8 });
  assert.equal(r.choices.length, 1);
});

test('errors are typed: 400 field, 401 key, 404 model and route, 413 body, 400 exceed_context_size_error', async () => {
  const messages = [{ role: 'user' as const, content: 'hi' }];
  await assert.rejects(client.chat.completions.create({ model, messages, n: 2 }), (e: unknown) => e instanceof BadRequestError && e.status === 400 && e.code === 'invalid_value');
  await assert.rejects(client.chat.completions.create({ model, messages, temperature: 7 }), (e: unknown) => e instanceof BadRequestError && /temperature/.test(e.message));
  await assert.rejects(client.chat.completions.create({ model, messages, tool_choice: 'required' }), (e: unknown) => e instanceof BadRequestError && /no tools are declared/.test(e.message));
  await assert.rejects(
    client.chat.completions.create({ model, messages, tools: [WEATHER_TOOL], tool_choice: { type: 'function', function: { name: 'nope' } } }),
    (e: unknown) => e instanceof BadRequestError && /"nope"/.test(e.message),
  );
  await assert.rejects(
    client.chat.completions.create({ model, messages, response_format: { type: 'xml' } as unknown as { type: 'text' } }),
    (e: unknown) => e instanceof BadRequestError && /response_format/.test(e.message),
  );
  await assert.rejects(clientFor(server, 'wrong').models.list(), (e: unknown) => e instanceof AuthenticationError && e.status === 401);
  await assert.rejects(client.chat.completions.create({ model: 'gpt-4o', messages }), (e: unknown) => e instanceof NotFoundError && e.code === 'model_not_found');
  await assert.rejects(client.get('/no/such/route'), (e: unknown) => e instanceof NotFoundError && e.status === 404);
  await assert.rejects(
    client.chat.completions.create({ model, messages: [{ role: 'user', content: 'x'.repeat(70 * 1024) }] }),
    (e: unknown) => e instanceof APIError && e.status === 413 && e.code === 'request_too_large',
  );
  // Over the 1024-position context but under the body limit.
  const long = 'hello world '.repeat(800);
  const n = chat.renderPrompt([{ role: 'user', content: long }]).ids.length;
  assert.ok(n > 1024);
  await assert.rejects(client.chat.completions.create({ model, messages: [{ role: 'user', content: long }] }), (e: unknown) => {
    assert.ok(e instanceof BadRequestError);
    assert.equal(e.type, 'exceed_context_size_error');
    const body = e.error as { n_prompt_tokens?: number; n_ctx?: number };
    assert.equal(body.n_prompt_tokens, n);
    assert.equal(body.n_ctx, 1024);
    return true;
  });
  // Bad JSON (the client always sends valid JSON, so by hand).
  const res = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' }, body: '{"model": ' });
  assert.equal(res.status, 400);
  assert.equal(res.headers.get('content-type'), 'application/json; charset=utf-8');
  const body = (await res.json()) as { error: { type: string; code: string; message: string } };
  assert.equal(body.error.type, 'invalid_request_error');
  assert.equal(body.error.code, 'invalid_json');
});

test('a full queue is a 503 with Retry-After; shutdown mid-stream ends the stream with an error event', async () => {
  const small = await startServer({ model: chat, port: 0, parallel: 1, maxQueue: 1 });
  await small.whenReady();
  const c = clientFor(small);
  // Keep the only slot busy: a long raw completion that ignores the end-of-text token.
  const busy = await c.completions.create({ model, prompt: 'Once upon a time', max_tokens: 1000, temperature: 0, stream: true, ignore_eos: true } as OpenAI.CompletionCreateParamsStreaming);
  const it = busy[Symbol.asyncIterator]();
  assert.equal((await it.next()).done, false);
  const queued = c.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 });
  for (let i = 0; i < 100 && small.pool!.queueDepth === 0; i++) await new Promise((r) => setTimeout(r, 5));
  assert.equal(small.pool!.queueDepth, 1);
  let retryAfter: string | null | undefined;
  await assert.rejects(c.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }] }), (e: unknown) => {
    retryAfter = e instanceof APIError ? e.headers?.get('retry-after') : undefined;
    return e instanceof APIError && e.status === 503 && e.code === 'queue_full';
  });
  assert.equal(retryAfter, '1');
  // Shut down with no grace: the queued request is refused, the running stream gets an error event.
  const closing = small.close(0);
  await assert.rejects(queued, (e: unknown) => e instanceof APIError && e.status === 503);
  await assert.rejects(async () => {
    for (;;) if ((await it.next()).done) break;
  }, (e: unknown) => e instanceof APIError && /shutting down|aborted/.test(e.message));
  await closing;
});

test('/health is 503 while the model loads, then 200; /metrics counts requests and tokens', async () => {
  let resolve!: (m: ChatModel) => void;
  const loading = new Promise<ChatModel>((r) => (resolve = r));
  const s = await startServer({ model: loading, port: 0, parallel: 2 });
  try {
    const h1 = await fetch(`${s.url}/health`);
    assert.equal(h1.status, 503);
    assert.equal(((await h1.json()) as { status: string }).status, 'loading');
    await assert.rejects(clientFor(s).models.list(), (e: unknown) => e instanceof APIError && e.status === 503);
    resolve(chat);
    await s.whenReady();
    const h2 = await fetch(`${s.url}/health`);
    assert.equal(h2.status, 200);
    const r = await clientFor(s).completions.create({ model, prompt: 'Hello', max_tokens: 5, temperature: 0 });
    assert.equal(r.object, 'text_completion');
    const m = await (await fetch(`${s.url}/metrics`)).text();
    assert.match(m, /^chatglm_requests_total\{endpoint="\/v1\/completions",status="200"\} 1$/m);
    assert.match(m, new RegExp(`^chatglm_prompt_tokens_total ${r.usage!.prompt_tokens}$`, 'm'));
    assert.match(m, new RegExp(`^chatglm_generated_tokens_total ${r.usage!.completion_tokens}$`, 'm'));
    assert.match(m, /^chatglm_slots_total 2$/m);
    assert.match(m, /^chatglm_time_to_first_token_seconds_count 1$/m);
  } finally {
    await s.close(0);
  }
});

test('two conversations on two slots: each next turn lands in the slot holding its history', async () => {
  const s = await startServer({ model: chat, port: 0, parallel: 2 });
  try {
    await s.whenReady();
    const c = clientFor(s);
    const cached = (r: OpenAI.ChatCompletion): number => (r.usage as { prompt_tokens_details?: { cached_tokens?: number } }).prompt_tokens_details?.cached_tokens ?? 0;
    const turn = async (history: OpenAI.ChatCompletionMessageParam[]) => c.chat.completions.create({ model, messages: history, temperature: 0, max_tokens: 30 });
    const a: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'Hello, who are you?' }];
    const b: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: '你好' }];
    const a1 = await turn(a);
    const b1 = await turn(b);
    const a2 = await turn([...a, a1.choices[0]!.message, { role: 'user', content: 'What can you do?' }]);
    const b2 = await turn([...b, b1.choices[0]!.message, { role: 'user', content: 'What can you do?' }]);
    assert.equal(cached(a1), 0);
    assert.equal(cached(b1), 0);
    assert.ok(cached(a2) >= a1.usage!.prompt_tokens, `a2 reused ${cached(a2)} of a1's ${a1.usage!.prompt_tokens}`);
    assert.ok(cached(b2) >= b1.usage!.prompt_tokens, `b2 reused ${cached(b2)} of b1's ${b1.usage!.prompt_tokens}`);
  } finally {
    await s.close(0);
  }
});

test('tool_choice "required" and response_format json_schema are enforced by constrained decoding', async () => {
  // A greeting: left to itself the demo model answers in text; "required" makes it call the tool.
  const messages = [{ role: 'user' as const, content: 'Hello!' }];
  const r = await client.chat.completions.create({ model, messages, tools: [WEATHER_TOOL], tool_choice: 'required', temperature: 0, max_tokens: 60 });
  assert.equal(r.choices[0]!.finish_reason, 'tool_calls');
  const call = r.choices[0]!.message.tool_calls![0]!;
  assert.equal(call.type === 'function' ? call.function.name : undefined, WEATHER_TOOL.function.name);
  const schema = { type: 'object', properties: { city: { type: 'string', maxLength: 12 }, days: { type: 'integer', minimum: 1, maximum: 7 } }, required: ['city', 'days'] };
  const j = await client.chat.completions.create({
    model,
    messages: [{ role: 'user', content: 'Weather for Paris, three days, as JSON.' }],
    response_format: { type: 'json_schema', json_schema: { name: 'forecast', schema } },
    temperature: 0,
    max_tokens: 60,
  });
  const parsed = JSON.parse(j.choices[0]!.message.content ?? '') as { city: unknown; days: unknown };
  assert.equal(typeof parsed.city, 'string');
  assert.ok((parsed.city as string).length <= 12);
  assert.ok(Number.isInteger(parsed.days) && (parsed.days as number) >= 1 && (parsed.days as number) <= 7);
});

// The chatglm-specific server routes without a browser: POST /chatglm/agent runs the agent loop on
// the server's slots and streams typed events, GET /chatglm/tools lists the server's tools, the
// page at GET / comes with its Content-Security-Policy, and without server-side tools the
// /chatglm/ routes answer 404. The weather tool here is the test's own, so its result is known.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { bundledModelPath, defineTool, loadChatModel, type ChatModel } from '../src/index.js';
import { startServer, type ChatGLMServer } from '../src/server/server.js';

let chat: ChatModel;
let server: ChatGLMServer;
let bare: ChatGLMServer;
const calls: unknown[] = [];

before(async () => {
  chat = await loadChatModel(bundledModelPath());
  const weather = defineTool({
    name: 'get_current_weather',
    description: 'Get the current weather in a given city',
    parameters: { type: 'object', properties: { location: { type: 'string' } }, required: ['location'] },
    run: (args: { location: string }) => {
      calls.push(args);
      return { temperature: 17, description: `cloudy in ${args.location}` };
    },
  });
  server = await startServer({ model: chat, port: 0, parallel: 2, agent: { tools: [weather] } });
  bare = await startServer({ model: chat, port: 0, parallel: 1 });
  await Promise.all([server.whenReady(), bare.whenReady()]);
});

after(async () => {
  await server?.close(1000);
  await bare?.close(1000);
  chat?.dispose();
});

interface Event {
  type: string;
  [key: string]: unknown;
}

async function agent(base: string, body: unknown): Promise<{ status: number; events: Event[]; json?: unknown }> {
  const res = await fetch(`${base}/chatglm/agent`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (!(res.headers.get('content-type') ?? '').startsWith('text/event-stream')) return { status: res.status, events: [], json: await res.json() };
  const text = await res.text();
  const events = text
    .split('\n\n')
    .filter((b) => b.startsWith('data: ') && b !== 'data: [DONE]')
    .map((b) => JSON.parse(b.slice(6)) as Event);
  return { status: res.status, events };
}

test('POST /chatglm/agent runs the tool server-side and streams the call, its result and the answer', async () => {
  const stepsBefore = server.pool!.scheduler.stats.ticks;
  const { status, events } = await agent(server.url, { messages: [{ role: 'user', content: "What's the weather in Paris?" }], temperature: 0, max_tokens: 30 });
  assert.equal(status, 200);
  const types = events.map((e) => e.type);
  assert.equal(types[0], 'start');
  assert.equal(types.at(-1), 'done');
  const call = events.find((e) => e.type === 'tool_call')!;
  assert.equal(call['name'], 'get_current_weather');
  assert.deepEqual(JSON.parse(call['arguments'] as string), { location: 'Paris' });
  // The tool really ran on the server, with the model's arguments.
  assert.deepEqual(calls, [{ location: 'Paris' }]);
  const result = events.find((e) => e.type === 'tool_result')!;
  assert.equal(result['id'], call['id']);
  assert.equal(result['ok'], true);
  assert.equal(result['content'], '{"temperature": 17, "description": "cloudy in Paris"}');
  assert.ok(types.indexOf('tool_call') < types.indexOf('tool_result') && types.indexOf('tool_result') < types.indexOf('message.delta'));
  const answer = events.filter((e) => e.type === 'message.delta').map((e) => e['content']).join('');
  const done = events.at(-1)!;
  const messages = done['messages'] as { role: string; content: string | null; tool_call_id?: string }[];
  assert.deepEqual(messages.map((m) => m.role), ['assistant', 'tool', 'assistant']);
  assert.equal(messages[1]!.tool_call_id, call['id']);
  assert.equal(messages[2]!.content, answer);
  assert.equal(done['stop_reason'], 'answer');
  const usage = events.filter((e) => e.type === 'usage').map((e) => e['usage'] as { completion_tokens: number; decode_tokens_per_second: number });
  assert.equal(usage.length, 2);
  assert.ok(usage.every((u) => u.completion_tokens > 0 && u.decode_tokens_per_second > 0));
  // The model ran on the server's batch scheduler (its slots), not on a private session.
  assert.ok(server.pool!.scheduler.stats.ticks > stepsBefore);
});

test('the agent route checks its request and the server tools', async () => {
  const unknown = await agent(server.url, { messages: [{ role: 'user', content: 'hi' }], tools: ['rm_rf'] });
  assert.equal(unknown.status, 400);
  assert.match(JSON.stringify(unknown.json), /no tool \\"rm_rf\\"/);
  const noInterpreter = await agent(server.url, { messages: [{ role: 'user', content: 'hi' }], interpreter: true, conversation_id: 'a1' });
  assert.equal(noInterpreter.status, 400);
  assert.match(JSON.stringify(noInterpreter.json), /--interpreter/);
  const empty = await agent(server.url, { messages: [] });
  assert.equal(empty.status, 400);
  const tools = (await (await fetch(`${server.url}/chatglm/tools`)).json()) as { tools: { name: string }[]; interpreter: boolean };
  assert.deepEqual(tools.tools.map((t) => t.name), ['get_current_weather']);
  assert.equal(tools.interpreter, false);
  // Without server-side tools the routes do not exist.
  const off = await agent(bare.url, { messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(off.status, 404);
  assert.match(JSON.stringify(off.json), /--tools-module/);
});

test('GET / serves the page with a Content-Security-Policy that allows only its own script', async (t) => {
  const res = await fetch(`${server.url}/`);
  if (res.status === 404) {
    t.skip('the web page is not built (npm run build)');
    return;
  }
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
  const csp = res.headers.get('content-security-policy') ?? '';
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'self'(;|$)/);
  assert.match(csp, /img-src data:(;|$)/);
  const html = await res.text();
  assert.match(html, /role="tab"[^>]*>Chat</);
  const js = await fetch(`${server.url}/web/app.js`);
  assert.equal(js.status, 200);
  assert.match(js.headers.get('content-type') ?? '', /^text\/javascript/);
});

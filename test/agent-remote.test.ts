/**
 * The agent loop over a remote OpenAI-compatible endpoint: a stub /v1/chat/completions server on
 * 127.0.0.1 started by the test streams replies the way OpenAI's API does (server-sent events,
 * tool call arguments split over chunks, usage in a last chunk). Checked: what the client sends
 * (model, tools, the tool message, the API key), what it makes of the stream, and each failure
 * (error status, an error event mid-stream, a refused connection, an abort).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { remoteCompleter, endpointUrls } from '../src/agent/remote.js';
import { runAgent, type AgentEvent, type RunAgentOptions } from '../src/agent/loop.js';
import { defineTool, type AnyTool } from '../src/agent/tool.js';
import { ChatGLMError } from '../src/errors.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

interface Recorded {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: Record<string, unknown>;
}
type Handler = (req: http.IncomingMessage, res: http.ServerResponse, body: Record<string, unknown>) => void | Promise<void>;

let server: http.Server;
let base = '';
const recorded: Recorded[] = [];
let handlers: Handler[] = [];

before(async () => {
  server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (d: Buffer) => (raw += d.toString('utf8')));
    req.on('end', () => {
      if (req.method === 'GET' && req.url === '/v1/models') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ object: 'list', data: [{ id: 'stub-glm', object: 'model' }] }));
        return;
      }
      const body = raw === '' ? {} : (JSON.parse(raw) as Record<string, unknown>);
      recorded.push({ path: req.url ?? '', headers: req.headers, body });
      const h = handlers.shift();
      if (h === undefined) {
        res.writeHead(500).end('no handler');
        return;
      }
      void h(req, res, body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

function reset(...hs: Handler[]): void {
  recorded.length = 0;
  handlers = hs;
}

/** Streams `chunks` as server-sent events, each chunk's choice filled in like OpenAI's. */
function sse(chunks: object[], options: { split?: boolean; done?: boolean } = {}): Handler {
  return async (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    for (const c of chunks) {
      const line = `data: ${JSON.stringify({ id: 'x', object: 'chat.completion.chunk', created: 1, model: 'stub-glm', ...c })}\n\n`;
      if (options.split === true) {
        // One event over two TCP writes: the client must buffer partial lines.
        res.write(line.slice(0, 7));
        await new Promise((r) => setTimeout(r, 5));
        res.write(line.slice(7));
      } else {
        res.write(line);
      }
    }
    if (options.done !== false) res.write('data: [DONE]\n\n');
    res.end();
  };
}

const delta = (d: object, finish: string | null = null): object => ({ choices: [{ index: 0, delta: d, finish_reason: finish }] });

const CALL_ROUND = sse(
  [
    delta({ role: 'assistant', content: null }),
    delta({ tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'get_current_weather', arguments: '' } }] }),
    delta({ tool_calls: [{ index: 0, function: { arguments: '{"location": ' } }] }),
    delta({ tool_calls: [{ index: 0, function: { arguments: '"Paris"}' } }] }),
    delta({}, 'tool_calls'),
  ],
  { split: true },
);
const ANSWER_ROUND = sse([
  delta({ role: 'assistant', content: '' }),
  delta({ content: 'It is ' }),
  delta({ content: '22 degrees.' }),
  delta({}, 'stop'),
  { choices: [], usage: { prompt_tokens: 40, completion_tokens: 6, total_tokens: 46 } },
]);

const WEATHER = { name: 'get_current_weather', description: 'Weather of a city', parameters: { type: 'object', properties: { location: { type: 'string' } }, required: ['location'] } };
function weather(got: unknown[]): AnyTool {
  return defineTool({ ...WEATHER, run: (a) => (got.push(a), { temperature: 22, description: 'sunny' }) }) as unknown as AnyTool;
}

async function collect(options: RunAgentOptions): Promise<AgentEvent[]> {
  const events: AgentEvent[] = [];
  for await (const ev of runAgent(options)) events.push(ev);
  return events;
}

test('endpoint URLs: a base, a /v1 base or the full chat-completions URL', () => {
  assert.deepEqual(endpointUrls('http://h:8000'), { chat: 'http://h:8000/v1/chat/completions', models: 'http://h:8000/v1/models' });
  assert.deepEqual(endpointUrls('http://h:8000/v1/'), { chat: 'http://h:8000/v1/chat/completions', models: 'http://h:8000/v1/models' });
  assert.deepEqual(endpointUrls('https://h/api/v1/chat/completions'), { chat: 'https://h/api/v1/chat/completions', models: 'https://h/api/v1/models' });
  assert.throws(() => endpointUrls('ftp://h'), (e: unknown) => e instanceof ChatGLMError && e.code === 'BAD_ARGUMENT');
  assert.throws(() => endpointUrls('not a url'), /is not a URL/);
});

test('remote: streamed tool call (split arguments) runs; the result goes back as a tool message; the answer streams', async () => {
  reset(CALL_ROUND, ANSWER_ROUND);
  const got: unknown[] = [];
  const completer = remoteCompleter({ endpoint: `${base}/v1`, apiKey: 'sk-test' });
  const events = await collect({ completer, messages: [{ role: 'user', content: "What's the weather in Paris?" }], tools: [weather(got)], temperature: 0 });
  assert.deepEqual(got, [{ location: 'Paris' }]);
  assert.equal(recorded.length, 2);
  const [r1, r2] = recorded;
  assert.equal(r1!.path, '/v1/chat/completions');
  assert.equal(r1!.headers.authorization, 'Bearer sk-test');
  // The model name comes from /v1/models; tools go in OpenAI's shape.
  assert.equal(r1!.body['model'], 'stub-glm');
  assert.equal(r1!.body['stream'], true);
  assert.equal(r1!.body['temperature'], 0);
  assert.deepEqual(r1!.body['tools'], [{ type: 'function', function: WEATHER }]);
  assert.deepEqual(r1!.body['messages'], [{ role: 'user', content: "What's the weather in Paris?" }]);
  assert.deepEqual((r2!.body['messages'] as unknown[]).slice(1), [
    { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_current_weather', arguments: '{"location": "Paris"}' } }] },
    { role: 'tool', tool_call_id: 'call_1', content: '{"temperature": 22, "description": "sunny"}' },
  ]);
  const text = events.filter((e) => e.type === 'text').map((e) => (e as { delta: string }).delta);
  assert.deepEqual(text, ['It is ', '22 degrees.']);
  const done = events[events.length - 1] as AgentEvent & { type: 'done' };
  assert.equal(done.stopReason, 'answer');
  assert.deepEqual(done.messages[2], { role: 'assistant', content: 'It is 22 degrees.' });
  assert.deepEqual(done.usage, { prompt_tokens: 40, completion_tokens: 6, total_tokens: 46 });
});

test('remote: a server that ignores stream and answers with one JSON completion works too', async () => {
  reset((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ id: 'y', object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: 'plain answer' }, finish_reason: 'stop' }], usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 } }));
  });
  const events = await collect({ completer: remoteCompleter({ endpoint: base, model: 'm1' }), messages: [{ role: 'user', content: 'hi' }] });
  assert.equal(recorded[0]!.body['model'], 'm1');
  assert.equal(recorded[0]!.headers.authorization, undefined);
  const done = events[events.length - 1] as AgentEvent & { type: 'done' };
  assert.deepEqual(done.messages, [{ role: 'assistant', content: 'plain answer' }]);
});

test('remote: an error status is an HTTP ChatGLMError carrying the server message', async () => {
  reset((_req, res) => {
    res.writeHead(401, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { message: 'invalid api key', type: 'auth' } }));
  });
  await assert.rejects(
    collect({ completer: remoteCompleter({ endpoint: base, model: 'm', apiKey: 'wrong' }), messages: [{ role: 'user', content: 'hi' }] }),
    (e: unknown) => e instanceof ChatGLMError && e.code === 'HTTP' && /answered 401 Unauthorized: invalid api key \(check --api-key\)/.test(e.message),
  );
  // A failure in the second round (after a tool ran) surfaces the same way.
  reset(CALL_ROUND, (_req, res) => {
    res.writeHead(500, { 'content-type': 'text/plain' });
    res.end('model crashed');
  });
  const got: unknown[] = [];
  await assert.rejects(
    collect({ completer: remoteCompleter({ endpoint: base, model: 'm' }), messages: [{ role: 'user', content: 'Paris?' }], tools: [weather(got)] }),
    (e: unknown) => e instanceof ChatGLMError && e.code === 'HTTP' && /500 Internal Server Error: model crashed/.test(e.message),
  );
  assert.deepEqual(got, [{ location: 'Paris' }]);
  // An error event in the middle of a stream.
  reset(sse([delta({ content: 'par' }), { error: { message: 'model overloaded' } }], { done: false }));
  await assert.rejects(
    collect({ completer: remoteCompleter({ endpoint: base, model: 'm' }), messages: [{ role: 'user', content: 'hi' }] }),
    (e: unknown) => e instanceof ChatGLMError && e.code === 'HTTP' && /model overloaded/.test(e.message),
  );
});

test('remote: a refused connection is a NETWORK ChatGLMError; an abort mid-stream ends the run as aborted', async () => {
  const closed = http.createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const port = (closed.address() as AddressInfo).port;
  await new Promise((r) => closed.close(r));
  await assert.rejects(
    collect({ completer: remoteCompleter({ endpoint: `http://127.0.0.1:${port}`, model: 'm' }), messages: [{ role: 'user', content: 'hi' }] }),
    (e: unknown) => e instanceof ChatGLMError && e.code === 'NETWORK' && /cannot reach http:\/\/127\.0\.0\.1:\d+\/v1\/chat\/completions \(ECONNREFUSED\)/.test(e.message),
  );

  const ac = new AbortController();
  reset(async (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write(`data: ${JSON.stringify(delta({ content: 'slow ' }))}\n\n`);
    // Never finishes on its own.
    await new Promise((r) => setTimeout(r, 2000));
    res.end();
  });
  const events: AgentEvent[] = [];
  for await (const ev of runAgent({ completer: remoteCompleter({ endpoint: base, model: 'm' }), messages: [{ role: 'user', content: 'hi' }], signal: ac.signal })) {
    events.push(ev);
    if (ev.type === 'text') ac.abort();
  }
  const done = events[events.length - 1] as AgentEvent & { type: 'done' };
  assert.equal(done.stopReason, 'aborted');
  assert.deepEqual(done.messages, []);
});

test('CLI: agent --endpoint runs the tools module against the remote endpoint and prints {"messages": [...]}', async () => {
  reset(CALL_ROUND, ANSWER_ROUND);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'chatglm-agent-remote-'));
  try {
    const mod = path.join(dir, 'tools.mjs');
    await writeFile(mod, `export default [{ name: 'get_current_weather', parameters: { type: 'object', properties: { location: { type: 'string' } } }, run: ({ location }) => ({ location, temperature: 22 }) }];\n`);
    const { stdout } = await new Promise<{ stdout: string; stderr: string }>((resolve, reject) => {
      execFile(process.execPath, ['bin/chatglm.js', 'agent', '--endpoint', base, '--api-key', 'k', '--tools-module', mod, '--prompt', 'Paris?', '--json'], { cwd: repoRoot }, (err, stdout, stderr) =>
        err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve({ stdout, stderr }),
      );
    });
    const out = JSON.parse(stdout) as { messages: { role: string; content: string | null; tool_call_id?: string }[] };
    assert.deepEqual(out.messages.map((m) => m.role), ['assistant', 'tool', 'assistant']);
    assert.equal(out.messages[1]!.tool_call_id, 'call_1');
    assert.equal(out.messages[1]!.content, '{"location": "Paris", "temperature": 22}');
    assert.equal(out.messages[2]!.content, 'It is 22 degrees.');
    assert.equal(recorded[0]!.headers.authorization, 'Bearer k');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

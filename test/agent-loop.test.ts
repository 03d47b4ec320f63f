/**
 * The agent loop on a scripted completer (no model): every path of a tool call — success,
 * invalid arguments, unknown tool, a tool that throws, a timeout, an abort mid-tool, the round
 * limit, two calls in one reply (in order and in parallel), tool_choice, truncation, a call that
 * does not parse, a declined call, and the code interpreter with a scripted fake.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runAgent, CHATGLM3_CODE_INTERPRETER_PROMPT, type AgentEvent, type RunAgentOptions } from '../src/agent/loop.js';
import { defineTool, type AnyTool } from '../src/agent/tool.js';
import type { CodeInterpreterLike, CodeRunResult } from '../src/agent/interpreter-types.js';
import { ChatGLMError } from '../src/errors.js';
import { ScriptedCompleter, type ScriptedReply } from './support/agent-scripted-completer.js';

const WEATHER_SCHEMA = { type: 'object', properties: { location: { type: 'string' } }, required: ['location'] };

function weatherTool(log: unknown[] = []): AnyTool {
  return defineTool<{ location: string }>({
    name: 'get_current_weather',
    description: 'Get the current weather in a given city',
    parameters: WEATHER_SCHEMA,
    run: ({ location }) => {
      log.push(location);
      return { temperature: 22, description: 'sunny' };
    },
  }) as unknown as AnyTool;
}

async function collect(options: RunAgentOptions): Promise<AgentEvent[]> {
  const events: AgentEvent[] = [];
  for await (const ev of runAgent(options)) events.push(ev);
  return events;
}

function done(events: AgentEvent[]): AgentEvent & { type: 'done' } {
  const last = events[events.length - 1]!;
  assert.equal(last.type, 'done');
  return last as AgentEvent & { type: 'done' };
}

const ask = [{ role: 'user' as const, content: "What's the weather in Paris?" }];

test('a call runs, its result goes back as a tool message, and the answer ends the run', async () => {
  const log: unknown[] = [];
  const completer = new ScriptedCompleter([{ calls: [{ name: 'get_current_weather', arguments: '{"location": "Paris"}', id: 'call_a' }] }, { text: 'It is 22 degrees and sunny.' }]);
  const events = await collect({ completer, messages: ask, tools: [weatherTool(log)] });
  assert.deepEqual(log, ['Paris']);
  assert.deepEqual(
    events.map((e) => e.type),
    ['usage', 'tool_call', 'tool_result', 'round_end', 'text', 'text', 'text', 'text', 'text', 'text', 'usage', 'round_end', 'final', 'done'],
  );
  const d = done(events);
  assert.equal(d.stopReason, 'answer');
  assert.equal(d.rounds, 2);
  assert.deepEqual(d.usage, { prompt_tokens: 15, completion_tokens: 3, total_tokens: 18 });
  assert.deepEqual(d.messages, [
    { role: 'assistant', content: null, tool_calls: [{ id: 'call_a', type: 'function', function: { name: 'get_current_weather', arguments: '{"location": "Paris"}' } }] },
    { role: 'tool', tool_call_id: 'call_a', content: '{"temperature": 22, "description": "sunny"}' },
    { role: 'assistant', content: 'It is 22 degrees and sunny.' },
  ]);
  // The second request carries the call and its result after the user's message; tools offered both times.
  assert.equal(completer.requests.length, 2);
  assert.deepEqual(completer.requests[1]!.messages.slice(0, 1), ask);
  assert.deepEqual(completer.requests[1]!.messages.slice(1), d.messages.slice(0, 2));
  for (const r of completer.requests) assert.deepEqual(r.tools?.map((t) => t.function.name), ['get_current_weather']);
  const result = events.find((e) => e.type === 'tool_result') as AgentEvent & { type: 'tool_result' };
  assert.deepEqual(result.result, { ok: true, value: { temperature: 22, description: 'sunny' }, text: '{"temperature": 22, "description": "sunny"}' });
  // ChatGLM3's tool-mode sampling unless the caller says otherwise.
  assert.equal(completer.requests[0]!.temperature, 0.1);
  assert.equal(completer.requests[0]!.top_p, 0.2);
});

test('invalid arguments, an unknown tool, and a tool that throws become observations; the model retries', async () => {
  const log: unknown[] = [];
  const boom = defineTool({ name: 'boom', run: () => { throw new Error('disk on fire'); } });
  const completer = new ScriptedCompleter([
    { calls: [{ name: 'get_current_weather', arguments: '{"location": 7}' }] },
    { calls: [{ name: 'get_weather', arguments: '{"location": "Paris"}' }] },
    { calls: [{ name: 'boom', arguments: '{}' }] },
    { calls: [{ name: 'get_current_weather', arguments: 'location=Paris' }] },
    { calls: [{ name: 'get_current_weather', arguments: '{"location": "Paris"}' }] },
    { text: 'Sunny, 22.' },
  ]);
  const events = await collect({ completer, messages: ask, tools: [weatherTool(log), boom as unknown as AnyTool], maxRounds: 6 });
  const results = events.filter((e): e is AgentEvent & { type: 'tool_result' } => e.type === 'tool_result');
  assert.equal(results.length, 5);
  const errors = results.slice(0, 4).map((r) => (r.result.ok ? 'ok' : r.result.error));
  assert.deepEqual(errors.map((e) => (e === 'ok' ? e : e.kind)), ['invalid_arguments', 'unknown_tool', 'tool_error', 'invalid_arguments']);
  assert.deepEqual(JSON.parse(results[0]!.content), { error: 'get_current_weather: invalid arguments: arguments/location must be string' });
  assert.deepEqual(JSON.parse(results[1]!.content), { error: 'there is no tool named "get_weather"; the tools are: get_current_weather, boom' });
  assert.deepEqual(JSON.parse(results[2]!.content), { error: 'boom failed: disk on fire' });
  assert.match(JSON.parse(results[3]!.content).error as string, /^get_current_weather: the arguments are not JSON/);
  // Only the valid call ran.
  assert.deepEqual(log, ['Paris']);
  assert.equal(results[4]!.content, '{"temperature": 22, "description": "sunny"}');
  assert.equal(done(events).stopReason, 'answer');
});

test('a tool past its time limit is reported as a timeout and its signal is aborted', async () => {
  let sawAbort = false;
  const slow = defineTool({
    name: 'slow',
    timeoutMs: 40,
    run: (_args, { signal }) =>
      new Promise(() => {
        signal.addEventListener('abort', () => {
          sawAbort = true;
        });
      }),
  });
  const completer = new ScriptedCompleter([{ calls: [{ name: 'slow', arguments: '{}' }] }, { text: 'gave up' }]);
  const t0 = performance.now();
  const events = await collect({ completer, messages: ask, tools: [slow as unknown as AnyTool] });
  const r = events.find((e) => e.type === 'tool_result') as AgentEvent & { type: 'tool_result' };
  assert.deepEqual(r.result, { ok: false, error: { kind: 'timeout', message: 'slow did not finish within 40 ms' } });
  assert.ok(sawAbort);
  assert.ok(performance.now() - t0 < 5000);
  // The loop's default applies to tools without their own limit.
  const slow2 = defineTool({ name: 'slow2', run: () => new Promise(() => {}) });
  const events2 = await collect({ completer: new ScriptedCompleter([{ calls: [{ name: 'slow2', arguments: '{}' }] }, { text: 'x' }]), messages: ask, tools: [slow2 as unknown as AnyTool], toolTimeoutMs: 30 });
  assert.match((events2.find((e) => e.type === 'tool_result') as AgentEvent & { type: 'tool_result' }).content, /did not finish within 30 ms/);
});

test('aborting while a tool runs stops the tool and ends the run with stopReason "aborted"', async () => {
  const ac = new AbortController();
  let toolSignal: AbortSignal | undefined;
  const waits = defineTool({
    name: 'waits',
    run: (_args, { signal }) => {
      toolSignal = signal;
      setTimeout(() => ac.abort(), 20);
      return new Promise(() => {});
    },
  });
  const completer = new ScriptedCompleter([{ calls: [{ name: 'waits', arguments: '{}' }] }, { text: 'never asked' }]);
  const events = await collect({ completer, messages: ask, tools: [waits as unknown as AnyTool], signal: ac.signal });
  const d = done(events);
  assert.equal(d.stopReason, 'aborted');
  assert.equal(toolSignal?.aborted, true);
  assert.equal(completer.requests.length, 1);
  // The transcript stays well-formed: the call and a tool message saying it was stopped.
  assert.equal(d.messages.length, 2);
  assert.deepEqual(JSON.parse((d.messages[1] as { content: string }).content), { error: 'waits: stopped, the request was aborted' });
});

test('aborting while confirm waits for a person ends the wait and the run', async () => {
  const ac = new AbortController();
  const log: unknown[] = [];
  let confirmSignal: AbortSignal | undefined;
  const completer = new ScriptedCompleter([{ calls: [{ name: 'get_current_weather', arguments: '{"location": "Paris"}' }] }, { text: 'never' }]);
  const events = await collect({
    completer,
    messages: ask,
    tools: [weatherTool(log)],
    signal: ac.signal,
    confirm: (_call, { signal }) => {
      confirmSignal = signal;
      setTimeout(() => ac.abort(), 20);
      return new Promise<boolean>(() => {});
    },
  });
  assert.equal(done(events).stopReason, 'aborted');
  assert.equal(confirmSignal, ac.signal);
  assert.deepEqual(log, []);
  assert.equal(completer.requests.length, 1);
});

test('the round limit ends a model that keeps calling tools', async () => {
  const completer = new ScriptedCompleter([{ calls: [{ name: 'get_current_weather', arguments: '{"location": "Paris"}' }] }]);
  const events = await collect({ completer, messages: ask, tools: [weatherTool()], maxRounds: 3 });
  const d = done(events);
  assert.equal(d.stopReason, 'max_rounds');
  assert.equal(d.rounds, 3);
  assert.equal(completer.requests.length, 3);
  assert.equal(d.messages.length, 6);
  assert.equal(events.filter((e) => e.type === 'final').length, 0);
  // Default limit is 5.
  const c5 = new ScriptedCompleter([{ calls: [{ name: 'get_current_weather', arguments: '{"location": "Paris"}' }] }]);
  await collect({ completer: c5, messages: ask, tools: [weatherTool()] });
  assert.equal(c5.requests.length, 5);
});

test('two calls in one reply: each gets its own tool message, in order; parallel runs overlap', async () => {
  for (const parallel of [false, true]) {
    const spans: { name: string; start: number; end: number }[] = [];
    const timed = (name: string): AnyTool =>
      defineTool({
        name,
        run: async () => {
          const start = performance.now();
          await new Promise((r) => setTimeout(r, 60));
          spans.push({ name, start, end: performance.now() });
          return name.toUpperCase();
        },
      }) as unknown as AnyTool;
    const completer = new ScriptedCompleter([
      { calls: [{ name: 'first', arguments: '{}', id: 'c1' }, { name: 'second', arguments: '{}', id: 'c2' }] },
      { text: 'both done' },
    ]);
    const events = await collect({ completer, messages: ask, tools: [timed('first'), timed('second')], parallelToolCalls: parallel });
    const d = done(events);
    assert.deepEqual(d.messages.slice(1, 3), [
      { role: 'tool', tool_call_id: 'c1', content: 'FIRST' },
      { role: 'tool', tool_call_id: 'c2', content: 'SECOND' },
    ]);
    const [a, b] = [spans.find((s) => s.name === 'first')!, spans.find((s) => s.name === 'second')!];
    if (parallel) assert.ok(b.start < a.end, 'parallel calls overlap');
    else assert.ok(b.start >= a.end, 'sequential calls do not overlap');
  }
});

test('tool_choice: none is passed on with the tools; a named function and required bind the first round only', async () => {
  // The completer leaves the tools out of the prompt for "none" (agent-local.test.ts checks the
  // in-process model); OpenAI's API takes tool_choice only together with tools.
  const none = new ScriptedCompleter([{ text: 'no tools' }]);
  await collect({ completer: none, messages: ask, tools: [weatherTool()], toolChoice: 'none' });
  assert.deepEqual(none.requests[0]!.tools?.map((t) => t.function.name), ['get_current_weather']);
  assert.equal(none.requests[0]!.tool_choice, 'none');
  const noTools = new ScriptedCompleter([{ text: 'x' }]);
  await collect({ completer: noTools, messages: ask, toolChoice: 'none' });
  assert.equal(noTools.requests[0]!.tools, undefined);
  assert.equal(noTools.requests[0]!.tool_choice, undefined);

  const named = new ScriptedCompleter([{ calls: [{ name: 'get_current_weather', arguments: '{"location": "Paris"}' }] }, { text: 'done' }]);
  const choice = { type: 'function' as const, function: { name: 'get_current_weather' } };
  await collect({ completer: named, messages: ask, tools: [weatherTool()], toolChoice: choice });
  assert.deepEqual(named.requests[0]!.tool_choice, choice);
  assert.equal(named.requests[1]!.tool_choice, undefined);

  const required = new ScriptedCompleter([{ calls: [{ name: 'get_current_weather', arguments: '{"location": "Paris"}' }] }, { text: 'done' }]);
  await collect({ completer: required, messages: ask, tools: [weatherTool()], toolChoice: 'required' });
  assert.equal(required.requests[0]!.tool_choice, 'required');
  assert.equal(required.requests[1]!.tool_choice, undefined);
  await assert.rejects(collect({ completer: new ScriptedCompleter([{ text: 'x' }]), messages: ask, toolChoice: 'required' }), (e: unknown) => e instanceof ChatGLMError && e.code === 'BAD_ARGUMENT' && /no tools are declared/.test(e.message));
  await assert.rejects(
    collect({ completer: new ScriptedCompleter([{ text: 'x' }]), messages: ask, tools: [weatherTool()], toolChoice: { type: 'function', function: { name: 'nope' } } }),
    /names the function "nope", but the tools are: get_current_weather/,
  );
});

test('a long result is cut for the model (1024 characters by default) and whole for the caller', async () => {
  const long = 'x'.repeat(5000);
  const big = defineTool({ name: 'big', run: () => long });
  const completer = new ScriptedCompleter([{ calls: [{ name: 'big', arguments: '{}' }] }, { text: 'ok' }]);
  const events = await collect({ completer, messages: ask, tools: [big as unknown as AnyTool] });
  const r = events.find((e) => e.type === 'tool_result') as AgentEvent & { type: 'tool_result' };
  assert.equal(r.content, 'x'.repeat(1024) + ' [TRUNCATED]');
  assert.equal(r.result.ok && r.result.text, long);
  const events2 = await collect({ completer: new ScriptedCompleter([{ calls: [{ name: 'big', arguments: '{}' }] }, { text: 'ok' }]), messages: ask, tools: [big as unknown as AnyTool], maxObservationChars: 10 });
  assert.equal((events2.find((e) => e.type === 'tool_result') as AgentEvent & { type: 'tool_result' }).content, 'xxxxxxxxxx [TRUNCATED]');
});

test('a call whose arguments do not parse is answered with the parse error; a declined call is not run', async () => {
  const completer = new ScriptedCompleter([
    { invalid: { name: 'get_current_weather', content: "```python\ntool_call(location='Paris)\n```", error: 'cannot parse the tool call arguments: unterminated string at offset 19' } },
    { calls: [{ name: 'get_current_weather', arguments: '{"location": "Paris"}' }] },
    { text: 'fine' },
  ]);
  const log: unknown[] = [];
  const asked: string[] = [];
  const events = await collect({
    completer,
    messages: ask,
    tools: [weatherTool(log)],
    confirm: (call) => {
      asked.push(call.name);
      return false;
    },
  });
  const results = events.filter((e): e is AgentEvent & { type: 'tool_result' } => e.type === 'tool_result');
  assert.deepEqual(JSON.parse(results[0]!.content), { error: 'get_current_weather: cannot parse the tool call arguments: unterminated string at offset 19' });
  // The raw text stays in the transcript as the call's arguments.
  assert.equal(done(events).messages[0]!.role, 'assistant');
  assert.equal((done(events).messages[0] as { tool_calls: { function: { arguments: string } }[] }).tool_calls[0]!.function.arguments, "```python\ntool_call(location='Paris)\n```");
  // The unparsable call was not offered for confirmation; the valid one was, and was declined.
  assert.deepEqual(asked, ['get_current_weather']);
  assert.deepEqual(JSON.parse(results[1]!.content), { error: 'get_current_weather: the user declined to run this call' });
  assert.deepEqual(log, []);
});

class FakeInterpreter implements CodeInterpreterLike {
  readonly ran: string[] = [];
  constructor(private readonly results: CodeRunResult[]) {}
  async run(code: string): Promise<CodeRunResult> {
    this.ran.push(code);
    return this.results[this.ran.length - 1]!;
  }
}

const PNG = { mime: 'image/png' as const, data: new Uint8Array([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]) };

test('code interpreter: ChatGLM3 prompt, the code runs, text + [Image] go back, images whole to the caller', async () => {
  const interp = new FakeInterpreter([
    { text: '31375\n', images: [PNG], timedOut: false, restarted: false },
    { text: '', error: { name: 'ZeroDivisionError', message: 'division by zero', traceback: 'Traceback (most recent call last):\nZeroDivisionError: division by zero' }, images: [], timedOut: false, restarted: false },
    { text: 'y'.repeat(2000), images: [PNG, PNG], timedOut: true, restarted: true },
  ]);
  const code = (c: string): string => JSON.stringify({ code: c });
  const completer = new ScriptedCompleter(
    [
      { calls: [{ name: 'interpreter', arguments: code('print(sum(range(251)))\nplt.plot([1])'), id: 'ci1' }] },
      { calls: [{ name: 'interpreter', arguments: code('1/0'), id: 'ci2' }] },
      { calls: [{ name: 'interpreter', arguments: code('while True: print("y")'), id: 'ci3' }] },
      { text: 'The sum is 31375.' },
    ],
    'chatglm3',
  );
  const events = await collect({ completer, messages: [{ role: 'user', content: 'Sum 1..250 and plot it' }], interpreter: interp });
  assert.deepEqual(interp.ran, ['print(sum(range(251)))\nplt.plot([1])', '1/0', 'while True: print("y")']);
  // No system message was given: ChatGLM3's code-interpreter prompt is put first.
  assert.deepEqual(completer.requests[0]!.messages[0], { role: 'system', content: CHATGLM3_CODE_INTERPRETER_PROMPT });
  const d = done(events);
  const tools = d.messages.filter((m) => m.role === 'tool') as { content: string; images?: (typeof PNG)[] }[];
  assert.equal(tools[0]!.content, '31375\n[Image]');
  assert.deepEqual(tools[0]!.images, [PNG]);
  assert.equal(tools[1]!.content, 'Traceback (most recent call last):\nZeroDivisionError: division by zero');
  assert.equal(tools[1]!.images, undefined);
  // The output is cut to 1024 characters; the notes and image marks after it are not.
  assert.equal(tools[2]!.content, 'y'.repeat(1024) + ' [TRUNCATED]\nTimed out\n(the interpreter was restarted: earlier variables are gone)\n[Image]\n[Image]');
  const ev = events.find((e) => e.type === 'tool_result' && e.call.id === 'ci1') as AgentEvent & { type: 'tool_result' };
  assert.deepEqual(ev.images, [PNG]);
  // Without an interpreter, such a call gets an observation saying so.
  const none = new ScriptedCompleter([{ calls: [{ name: 'interpreter', arguments: code('print(1)') }] }, { text: 'ok' }]);
  const ev2 = await collect({ completer: none, messages: ask });
  assert.match((ev2.find((e) => e.type === 'tool_result') as AgentEvent & { type: 'tool_result' }).content, /no code interpreter/);
  // A conversation's own system message is kept.
  const own = new ScriptedCompleter([{ text: 'hi' }], 'chatglm3');
  await collect({ completer: own, messages: [{ role: 'system', content: 'Be brief.' }, ...ask], interpreter: interp });
  assert.deepEqual(own.requests[0]!.messages[0], { role: 'system', content: 'Be brief.' });
});

test('bad options are ChatGLMErrors', async () => {
  const c = new ScriptedCompleter([{ text: 'x' }]);
  await assert.rejects(collect({ completer: c, messages: [] }), ChatGLMError);
  await assert.rejects(collect({ messages: ask }), /give a model or a completer/);
  await assert.rejects(collect({ completer: c, messages: ask, maxRounds: 0 }), /maxRounds/);
  await assert.rejects(collect({ completer: c, messages: ask, tools: [weatherTool(), weatherTool()] }), /two tools are named/);
});

export type { ScriptedReply };

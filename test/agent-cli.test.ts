/**
 * The `agent` command and the tool-running `chat` with the bundled demo model (a few hundred ms
 * per run). Expected values come from the question and from the tool results the test defines:
 * the city in the call is the one asked about, the answer quotes the tool's temperature, the
 * calculator's result is 4821 + 377. The code interpreter is a scripted fake whose image bytes
 * the test checks on disk.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundledModelPath } from '../src/api.js';
import { runAgentCli, type AgentCliOptions } from '../src/cli/commands/agent.js';
import type { CodeInterpreterLike, CodeRunResult } from '../src/agent/interpreter-types.js';
import { ChatGLMError } from '../src/errors.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const present = existsSync(path.join(bundledModelPath(), 'model.safetensors'));
const skip = present ? false : 'the bundled demo model is missing';
const example = path.join(repoRoot, 'examples', 'weather-tools.mjs');

function cli(args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, ['bin/chatglm.js', ...args], { cwd: repoRoot }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
    });
    child.stdin?.end(input ?? '');
  });
}

interface OpenAIMessage {
  role: string;
  content: string | null;
  tool_calls?: { id: string; type: string; function: { name: string; arguments: string } }[];
  tool_call_id?: string;
  images?: string[];
}

test('agent --json with the demo model: the weather call for Paris, its tool message, an answer quoting 22', { skip }, async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'chatglm-agent-cli-'));
  try {
    const file = path.join(dir, 'messages.json');
    await writeFile(file, JSON.stringify([{ role: 'user', content: "What's the weather in Paris?" }]));
    const r = await cli(['agent', '--json', '--tools-module', example, '--messages', file]);
    assert.equal(r.code, 0, r.stderr);
    const { messages } = JSON.parse(r.stdout) as { messages: OpenAIMessage[] };
    assert.deepEqual(messages.map((m) => m.role), ['assistant', 'tool', 'assistant']);
    const call = messages[0]!.tool_calls![0]!;
    assert.equal(call.type, 'function');
    assert.equal(call.function.name, 'get_current_weather');
    assert.deepEqual(JSON.parse(call.function.arguments), { location: 'Paris' });
    assert.equal(messages[1]!.tool_call_id, call.id);
    assert.deepEqual(JSON.parse(messages[1]!.content!), { temperature: 22, description: 'sunny' });
    assert.match(messages[2]!.content ?? '', /22/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('chat --tools-module / --builtin-tools --confirm-tools: calls run by themselves and are shown as [tool] lines', { skip }, async () => {
  const weather = await cli(['chat', '--tools-module', example, '--max-new-tokens', '40'], "What's the weather in Paris?\n");
  assert.equal(weather.code, 0, weather.stderr);
  assert.match(weather.stdout, /\[tool\] get_current_weather \{"location":"Paris"\} -> \{"temperature": 22, "description": "sunny"\}\n/);

  const calc = await cli(['chat', '--builtin-tools', 'calculator', '--confirm-tools', '--greedy', '--max-new-tokens', '40'], 'What is 4821 + 377?\ny\n');
  assert.equal(calc.code, 0, calc.stderr);
  assert.match(calc.stdout, /\[tool\] run calculator \{"expression":"4821 \+ 377"\}\? \[y\/N\] /);
  assert.match(calc.stdout, /\[tool\] calculator \{"expression":"4821 \+ 377"\} -> 5198\n/);

  // Declined: the tool does not run, and the model is told so.
  const no = await cli(['chat', '--builtin-tools', 'calculator', '--confirm-tools', '--greedy', '--max-new-tokens', '40'], 'What is 4821 + 377?\nn\n');
  assert.match(no.stdout, /\[tool\] calculator \{"expression":"4821 \+ 377"\} -> error: calculator: the user declined to run this call\n/);

  const both = await cli(['chat', '--messages', example, '--builtin-tools', 'calculator']);
  assert.equal(both.code, 1);
  assert.match(both.stderr, /use: chatglm agent --messages FILE\.json --tools-module M\.mjs/);
});

class FakeInterpreter implements CodeInterpreterLike {
  readonly code: string[] = [];
  constructor(private readonly result: CodeRunResult) {}
  async run(code: string): Promise<CodeRunResult> {
    this.code.push(code);
    return this.result;
  }
}

function capture(): { stream: NodeJS.WritableStream; text: () => string } {
  let out = '';
  const stream = { write: (s: string) => ((out += s), true) } as unknown as NodeJS.WritableStream;
  return { stream, text: () => out };
}

const base: AgentCliOptions = { backend: 'auto' };

test('agent CLI runner with a code interpreter: images land in --out-dir and are named in the JSON', { skip }, async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'chatglm-agent-img-'));
  try {
    const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 7, 7]);
    const interp = new FakeInterpreter({ text: '31375\n', images: [{ mime: 'image/png', data: png }], timedOut: false, restarted: false });
    const out = capture();
    const err = capture();
    await runAgentCli({ ...base, prompt: 'Compute the sum of the integers from 1 to 250.', outDir: dir, json: true }, { interpreter: interp, stdout: out.stream, stderr: err.stream });
    assert.equal(interp.code.length >= 1, true, out.text());
    assert.match(interp.code[0]!, /\bsum\(|\bprint\(/);
    const { messages } = JSON.parse(out.text()) as { messages: OpenAIMessage[] };
    assert.equal(messages[0]!.tool_calls![0]!.function.name, 'interpreter');
    const tool = messages[1]!;
    assert.equal(tool.content, '31375\n[Image]');
    assert.deepEqual(tool.images, [`${tool.tool_call_id!.replace(/[^A-Za-z0-9_-]/g, '_')}-1.png`]);
    assert.deepEqual(await readdir(dir), tool.images);
    assert.deepEqual(new Uint8Array(await readFile(path.join(dir, tool.images![0]!))), png);

    // Without --out-dir the bytes are not written anywhere, and stderr says how to keep them.
    const out2 = capture();
    const err2 = capture();
    await runAgentCli({ ...base, prompt: 'Compute the sum of the integers from 1 to 250.', json: true }, { interpreter: interp, stdout: out2.stream, stderr: err2.stream });
    const m2 = (JSON.parse(out2.text()) as { messages: OpenAIMessage[] }).messages;
    assert.equal(m2[1]!.images, undefined);
    assert.match(err2.text(), /1 image\(s\) from the code interpreter not saved; pass --out-dir DIR/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('agent CLI: bad flags are one-line ChatGLMErrors', async () => {
  const reject = (opts: Partial<AgentCliOptions>, re: RegExp): Promise<void> => assert.rejects(runAgentCli({ ...base, ...opts }), (e: unknown) => e instanceof ChatGLMError && re.test(e.message));
  await reject({}, /agent needs --messages FILE\.json or --prompt TEXT/);
  await reject({ prompt: 'x', messages: 'm.json' }, /not both/);
  await reject({ prompt: 'x', builtinTools: 'nope' }, /unknown built-in tool "nope"/);
  await reject({ prompt: 'x', toolsModule: '/nonexistent/tools.mjs' }, /tools module not found/);
  await reject({ prompt: 'x', maxRounds: '0' }, /--max-rounds must be a positive integer/);
  await reject({ prompt: 'x', endpoint: 'http://127.0.0.1:1', model: 'dir' }, /leave out --model/);
  const r = await cli(['agent', '--tool-choice', 'required', '--prompt', 'x']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^chatglm: tool_choice "required" needs tools: no tools are declared/m);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
});

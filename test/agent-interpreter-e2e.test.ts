// The code-interpreter mode end to end: the agent loop sends an `interpreter` reply's code to the
// real sandbox, the observation goes back, and the final answer arrives. Once with a scripted model
// (exact code, a plot), once with the bundled demo model through the CLI.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundledModelPath, createCodeInterpreter, runAgent } from '../src/index.js';
import type { AgentEvent, AgentMessage } from '../src/agent/loop.js';
import { ScriptedCompleter } from './support/agent-scripted-completer.js';
import { decodePng, sandboxSkipReason } from './support/interpreter-sandbox.js';

const skip = sandboxSkipReason();
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

test('an interpreter reply runs in the sandbox and its output and plot reach the model and the caller', { skip }, async () => {
  const ci = await createCodeInterpreter();
  try {
    const code = 'import matplotlib.pyplot as plt\nvalues = [i * i for i in range(1, 11)]\nprint(sum(values))\nplt.plot(values)\nplt.show()';
    const completer = new ScriptedCompleter([
      { calls: [{ name: 'interpreter', arguments: JSON.stringify({ code }) }] },
      { text: 'The sum of the squares is 385.' },
    ]);
    const events: AgentEvent[] = [];
    for await (const ev of runAgent({ completer, interpreter: ci, messages: [{ role: 'user', content: 'Sum the squares of 1..10 and plot them.' }] })) events.push(ev);
    // 1^2 + ... + 10^2 = 385, computed by Python in the sandbox; the plot is the observation's [Image].
    const second = completer.requests[1]!.messages;
    const observation = second[second.length - 1]!;
    assert.equal(observation.role, 'tool');
    assert.equal(observation.content, '385\n[Image]');
    const result = events.find((e): e is AgentEvent & { type: 'tool_result' } => e.type === 'tool_result')!;
    assert.equal(result.images?.length, 1);
    const png = decodePng(result.images![0]!.data);
    assert.ok(png.width > 100 && png.height > 100, `plot is ${png.width}x${png.height}`);
    const done = events.find((e): e is AgentEvent & { type: 'done' } => e.type === 'done')!;
    const messages: AgentMessage[] = done.messages;
    assert.deepEqual(messages.map((m) => m.role), ['assistant', 'tool', 'assistant']);
    assert.equal(messages[2]!.content, 'The sum of the squares is 385.');
    // Variables outlive the run: the interpreter is persistent.
    assert.equal((await ci.run('values[-1]')).text.trim(), '100');
  } finally {
    await ci.close();
  }
});

const demoSkip = skip ?? (existsSync(path.join(bundledModelPath(), 'model.safetensors')) ? false : 'the bundled demo model is missing');

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['bin/chatglm.js', ...args], { cwd: repoRoot }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
    });
  });
}

interface WireMessage {
  role: string;
  content: string | null;
  tool_calls?: { function: { name: string; arguments: string } }[];
  images?: string[];
}

test('the demo model writes code for a computation; it runs and the result is in the transcript', { skip: demoSkip }, async () => {
  const r = await cli(['agent', '--interpreter', '--greedy', '--json', '--prompt', 'Compute the sum of the integers from 1 to 100.']);
  assert.equal(r.code, 0, r.stderr);
  const { messages } = JSON.parse(r.stdout) as { messages: WireMessage[] };
  assert.equal(messages[0]!.tool_calls?.[0]?.function.name, 'interpreter');
  // 5050 = 100 * 101 / 2: what the sandbox printed, then what the model says.
  assert.equal(messages[1]!.role, 'tool');
  assert.equal(messages[1]!.content, '5050');
  assert.match(messages[2]!.content ?? '', /5050/);
});

test('the demo model plots; the PNG lands in --out-dir and the JSON names it', { skip: demoSkip }, async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'chatglm-ci-out-'));
  try {
    const r = await cli(['agent', '--interpreter', '--greedy', '--json', '--out-dir', dir, '--prompt', 'Plot sin(x) from 0 to 10.']);
    assert.equal(r.code, 0, r.stderr);
    const { messages } = JSON.parse(r.stdout) as { messages: WireMessage[] };
    const tool = messages.find((m) => m.role === 'tool')!;
    assert.equal(tool.content, '[Image]');
    assert.equal(tool.images?.length, 1);
    const png = decodePng(new Uint8Array(readFileSync(path.join(dir, tool.images![0]!))));
    assert.ok(png.width > 100 && png.height > 100);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--interpreter-timeout without --interpreter is refused before anything loads', async () => {
  const r = await cli(['agent', '--interpreter-timeout', '100', '--prompt', 'x']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /--interpreter-timeout needs --interpreter/);
});

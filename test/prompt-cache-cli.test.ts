/**
 * `chatglm generate --prompt-cache FILE` on the bundled demo model: the second run with a prompt
 * that extends the first prefills only the new ids and generates what a run without the cache
 * generates; a truncated file is reported on one line and replaced, and the command still succeeds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

interface Run {
  ids: number[];
  prefill: number;
  stderr: string;
}

function generate(prompt: string, extra: string[]): Run {
  const r = spawnSync(
    process.execPath,
    [path.join(root, 'bin/chatglm.js'), 'generate', '--backend', 'reference', '--prompt', prompt, '--greedy', '--max-new-tokens', '4', '--json', '--stats', ...extra],
    { encoding: 'utf8' },
  );
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { ids: number[] };
  const stats = JSON.parse(r.stderr.trim().split('\n').at(-1)!) as { usage: { prefill_tokens: number; prompt_tokens: number } };
  return { ids: out.ids, prefill: stats.usage.prefill_tokens, stderr: r.stderr };
}

test('generate --prompt-cache: the second run prefills only what is new, with the same output', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'chatglm-pc-cli-'));
  try {
    const file = path.join(dir, 'p.kvc');
    const first = generate('What is the weather like in Paris', ['--prompt-cache', file]);
    assert.ok((await fs.stat(file)).size > 0);
    const longer = 'What is the weather like in Paris and in Rome';
    const plain = generate(longer, []);
    const cached = generate(longer, ['--prompt-cache', file]);
    assert.ok(first.prefill > 5);
    assert.ok(cached.prefill < plain.prefill - 5, `prefilled ${cached.prefill} of ${plain.prefill}`);
    assert.deepEqual(cached.ids, plain.ids);
    assert.doesNotMatch(cached.stderr, /prompt cache/);

    // A truncated file: one notice, then a normal run that writes a good file again.
    const bytes = await fs.readFile(file);
    await fs.writeFile(file, bytes.subarray(0, bytes.length >> 1));
    const broken = generate(longer, ['--prompt-cache', file]);
    assert.match(broken.stderr, /prompt cache .* not used: the file is truncated or corrupt/);
    assert.equal(broken.prefill, plain.prefill);
    assert.deepEqual(broken.ids, plain.ids);
    const again = generate(longer, ['--prompt-cache', file]);
    assert.equal(again.prefill, 1);
    assert.deepEqual(again.ids, plain.ids);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

/** Tool call ids are random per run. */
const sameIds = (s: string): string => s.replace(/call_[0-9a-f]+/g, 'call_ID');

function cli(args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [path.join(root, 'bin/chatglm.js'), ...args], { encoding: 'utf8' });
}

test('chat --messages and agent --prompt-cache: the second run restores the tools prompt and answers the same', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'chatglm-pc-cli-'));
  try {
    const messages = path.join(dir, 'm.json');
    const tools = path.join(dir, 't.json');
    await fs.writeFile(messages, JSON.stringify([{ role: 'user', content: 'What is the weather in Paris?' }]));
    await fs.writeFile(
      tools,
      JSON.stringify([{ type: 'function', function: { name: 'get_current_weather', description: 'Get the current weather in a given location', parameters: { type: 'object', properties: { location: { type: 'string' } }, required: ['location'] } } }]),
    );
    const file = path.join(dir, 'chat.kvc');
    const chat = (): { out: string; usage: { prompt_tokens: number; prefill_tokens: number }; stderr: string } => {
      const r = cli(['chat', '--backend', 'reference', '--messages', messages, '--tools', tools, '--greedy', '--json', '--stats', '--prompt-cache', file]);
      assert.equal(r.status, 0, r.stderr);
      return { out: sameIds(r.stdout), usage: (JSON.parse(r.stderr.trim().split('\n').at(-1)!) as { usage: { prompt_tokens: number; prefill_tokens: number } }).usage, stderr: r.stderr };
    };
    const first = chat();
    const second = chat();
    assert.equal(first.usage.prefill_tokens, first.usage.prompt_tokens);
    assert.ok(first.usage.prompt_tokens > 50);
    assert.equal(second.usage.prefill_tokens, 1);
    assert.equal(second.out, first.out);
    assert.match(first.out, /get_current_weather/);

    const agentFile = path.join(dir, 'agent.kvc');
    const agent = (): string => {
      const r = cli(['agent', '--backend', 'reference', '--prompt', 'Give me a random number', '--builtin-tools', 'random_number_generator', '--greedy', '--json', '--prompt-cache', agentFile]);
      assert.equal(r.status, 0, r.stderr);
      assert.doesNotMatch(r.stderr, /prompt cache/);
      return sameIds(r.stdout);
    };
    const a1 = agent();
    assert.ok((await fs.stat(agentFile)).size > 0);
    assert.equal(agent(), a1);

    const remote = cli(['agent', '--endpoint', 'http://127.0.0.1:9/v1', '--prompt', 'hi', '--prompt-cache', agentFile]);
    assert.notEqual(remote.status, 0);
    assert.match(remote.stderr, /--prompt-cache .* --endpoint/);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

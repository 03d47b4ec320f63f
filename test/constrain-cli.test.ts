/**
 * `chatglm chat --json-schema FILE` and `--no-constrain`, run as a user runs them, on the bundled
 * demo model: the printed reply is JSON that validates; a schema the grammar cannot express is
 * reported in one line without a stack trace.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { validator } from './support/grammar-fixtures.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const bin = path.join(root, 'bin/chatglm.js');

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [bin, ...args], { encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

const schema = {
  type: 'object',
  properties: { city: { type: 'string', maxLength: 12 }, temp: { type: 'integer', minimum: -40, maximum: 50 } },
  required: ['city', 'temp'],
};
const tools = [{ type: 'function', function: { name: 'search_flights', parameters: { type: 'object', properties: { origin: { type: 'string' } }, required: ['origin'] } } }];
let dir = '';
before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'constrain-cli-'));
  await writeFile(path.join(dir, 'm.json'), JSON.stringify([{ role: 'user', content: 'Weather in Paris as JSON' }]));
  await writeFile(path.join(dir, 'flight.json'), JSON.stringify([{ role: 'user', content: 'What is 37 * 41?' }]));
  await writeFile(path.join(dir, 's.json'), JSON.stringify(schema));
  await writeFile(path.join(dir, 'bad.json'), JSON.stringify({ type: 'array', uniqueItems: true }));
  await writeFile(path.join(dir, 'tools.json'), JSON.stringify(tools));
});
after(async () => rm(dir, { recursive: true, force: true }));

test('chat --json-schema: the reply is JSON that validates', async () => {
  for (const seed of ['1', '2']) {
    const r = await run(['chat', '--messages', path.join(dir, 'm.json'), '--json-schema', path.join(dir, 's.json'), '--seed', seed, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const content = (JSON.parse(r.stdout) as { content: string }).content;
    assert.ok(validator(schema)(JSON.parse(content)), content);
  }
});

test('chat --json-schema with an unsupported keyword: one line naming it, exit code 1', async () => {
  const r = await run(['chat', '--messages', path.join(dir, 'm.json'), '--json-schema', path.join(dir, 'bad.json')]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /uniqueItems/);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
});

test('chat --tools: a call names the declared tool, unless --no-constrain', async () => {
  const names = async (extra: string[]): Promise<string[]> => {
    const r = await run(['chat', '--messages', path.join(dir, 'flight.json'), '--tools', path.join(dir, 'tools.json'), '--greedy', '--json', ...extra]);
    assert.equal(r.code, 0, r.stderr);
    const m = JSON.parse(r.stdout) as { tool_calls?: { function: { name: string } }[]; invalid_tool_call?: { name: string } };
    return [...(m.tool_calls ?? []).map((c) => c.function.name), ...(m.invalid_tool_call ? [m.invalid_tool_call.name] : [])];
  };
  // Constrained, the same greedy answer can no longer be the undeclared calculator call.
  for (const name of await names([])) assert.equal(name, 'search_flights');
  // The demo model was trained on a calculator tool: unconstrained, it calls that undeclared tool.
  const free = await names(['--no-constrain']);
  assert.equal(free.length, 1);
  assert.equal(free[0], 'calculator');
});

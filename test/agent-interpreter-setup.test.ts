// What needs no sandbox: the observation text the model sees, the error when the sandbox cannot
// exist, option checks, and the properties of the bubblewrap profile.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createCodeInterpreter, formatCodeObservation, CODE_OBSERVATION_MAX_CHARS, ChatGLMError } from '../src/index.js';
import type { CodeRunResult } from '../src/index.js';
import { buildSandboxCommand, findSandboxTools } from '../src/agent/interpreter/sandbox-command.js';

const base: CodeRunResult = { text: '', images: [], timedOut: false, restarted: false };
const png = { mime: 'image/png' as const, data: new Uint8Array([137, 80, 78, 71]) };

test('the observation is the text, cut at 1,024 characters with " [TRUNCATED]", as in ChatGLM3\'s demo', () => {
  assert.equal(CODE_OBSERVATION_MAX_CHARS, 1024);
  assert.equal(formatCodeObservation({ ...base, text: '42\n' }), '42');
  assert.equal(formatCodeObservation({ ...base, text: 'a'.repeat(1024) }), 'a'.repeat(1024));
  assert.equal(formatCodeObservation({ ...base, text: 'a'.repeat(2000) }), `${'a'.repeat(1024)} [TRUNCATED]`);
  // Python counts code points: a character outside the BMP is one, not two.
  assert.equal(formatCodeObservation({ ...base, text: '😀'.repeat(1100) }), `${'😀'.repeat(1024)} [TRUNCATED]`);
  assert.equal(formatCodeObservation({ ...base, text: 'abcdef' }, 3), 'abc [TRUNCATED]');
});

test('a figure is [Image] in the observation; an error shows its traceback', () => {
  assert.equal(formatCodeObservation({ ...base, images: [png] }), '[Image]');
  assert.equal(formatCodeObservation({ ...base, text: 'done\n', images: [png, png] }), 'done\n[Image]\n[Image]');
  const error = { name: 'ZeroDivisionError', message: 'division by zero', traceback: 'Traceback (most recent call last):\n  File "<cell-1>", line 1, in <module>\nZeroDivisionError: division by zero\n' };
  assert.equal(
    formatCodeObservation({ ...base, text: 'partial', error }),
    'partial\nTraceback (most recent call last):\n  File "<cell-1>", line 1, in <module>\nZeroDivisionError: division by zero',
  );
  assert.equal(formatCodeObservation({ ...base, error: { ...error, traceback: '' } }), 'ZeroDivisionError: division by zero');
});

test('without bwrap the interpreter refuses with a SANDBOX error naming the Debian packages', async () => {
  const empty = mkdtempSync(path.join(tmpdir(), 'chatglm-no-tools-'));
  try {
    await assert.rejects(findSandboxTools([empty]), (err: unknown) => {
      assert.ok(err instanceof ChatGLMError);
      assert.equal(err.code, 'SANDBOX');
      assert.match(err.message, /bubblewrap python3-numpy python3-matplotlib/);
      return true;
    });
  } finally {
    rmSync(empty, { recursive: true, force: true });
  }
});

test('bad limits are BAD_ARGUMENT errors before anything starts', async () => {
  for (const options of [{ memoryMb: 10 }, { timeoutMs: 0 }, { maxProcesses: Number.NaN }]) {
    await assert.rejects(createCodeInterpreter(options), (err: unknown) => (err as ChatGLMError).code === 'BAD_ARGUMENT');
  }
});

test('the bubblewrap profile unshares everything and never binds the host root', () => {
  const limits = { memoryBytes: 1 << 30, maxProcesses: 64, maxFileBytes: 1 << 20, tmpBytes: 1 << 28, maxOutputChars: 1000 };
  const tools = { bwrap: '/usr/bin/bwrap', hasSize: true, hasDisableUserns: true };
  const { file, args } = buildSandboxCommand(tools, '/srv/work', limits);
  assert.equal(file, '/usr/bin/bwrap');
  for (const flag of ['--unshare-all', '--die-with-parent', '--new-session', '--clearenv', '--disable-userns']) assert.ok(args.includes(flag), flag);
  assert.ok(!args.some((a) => a.startsWith('--share')));
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--bind' || args[i] === '--ro-bind' || args[i] === '--bind-try' || args[i] === '--ro-bind-try') {
      assert.notEqual(args[i + 1], '/', 'the host root is never bound');
      if (args[i] === '--bind') assert.deepEqual(args.slice(i + 1, i + 3), ['/srv/work', '/mnt/data'], 'the only writable bind is the work dir');
    }
  }
  assert.deepEqual(args.slice(args.indexOf('--uid'), args.indexOf('--uid') + 4), ['--uid', '65534', '--gid', '65534']);
  const asRoot = buildSandboxCommand({ ...tools, setpriv: '/usr/bin/setpriv' }, '/srv/work', limits);
  assert.deepEqual([asRoot.file, ...asRoot.args.slice(0, 4)], ['/usr/bin/setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '/usr/bin/bwrap']);
});

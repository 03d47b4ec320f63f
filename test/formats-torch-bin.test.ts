import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { ChatGLMError } from '../src/errors.js';
import { openTorchBin } from '../src/formats/torch-bin.js';
import { writeTorchBin } from './support/torch-bin-writer.js';
import { unpickle, type PickleValue } from '../src/formats/pickle.js';
import { tensorToF32 } from '../src/formats/tensor-f32.js';
import type { TensorData } from '../src/formats/tensor-source.js';
import { repoRoot, tempDir } from './support/formats-tmp.js';

const fixtures = path.join(repoRoot, 'test/fixtures/torch');

interface Expected {
  torch_version: string;
  tensors: Record<string, { dtype: string; shape: number[]; storage_offset: number; values: number[] }>;
}

function values(t: TensorData): number[] {
  if (t.info.dtype === 'I64') {
    const a = new BigInt64Array(t.data.slice().buffer);
    return [...a].map((x) => Number(x));
  }
  return [...tensorToF32(t)];
}

function isChatGLMError(code: string, pattern: RegExp, file?: string) {
  return (e: unknown): boolean => {
    assert.ok(e instanceof ChatGLMError, `not a ChatGLMError: ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.match(e.message, pattern);
    if (file !== undefined) assert.ok(e.message.includes(file), `message does not name ${file}: ${e.message}`);
    return true;
  };
}

test('reads a real torch.save checkpoint: values recorded by torch itself', async () => {
  const expected = JSON.parse(await readFile(path.join(fixtures, 'small.expected.json'), 'utf8')) as Expected;
  const src = await openTorchBin(path.join(fixtures, 'small.bin'));
  try {
    assert.deepEqual(src.list().map((t) => t.name), Object.keys(expected.tensors));
    // The fixture is only useful if it covers offsets, halves and parameters; keep it honest.
    assert.ok(Object.values(expected.tensors).some((t) => t.storage_offset > 0));
    assert.deepEqual(new Set(Object.values(expected.tensors).map((t) => t.dtype)), new Set(['F32', 'F16', 'BF16', 'I64']));
    for (const [name, want] of Object.entries(expected.tensors)) {
      const t = await src.read(name);
      assert.equal(t.info.dtype, want.dtype, name);
      assert.deepEqual(t.info.shape, want.shape, name);
      assert.deepEqual(values(t), want.values, name);
    }
  } finally {
    await src.close();
  }
});

test('writer output round-trips: storage offset, parameter, f16/bf16, i64, scalar, ZIP64', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const tensors = [
      { name: 'h', dtype: 'F16' as const, shape: [2, 2], data: new Float32Array([1, 2, 3, 0.1]), storageOffset: 3 },
      { name: 'b', dtype: 'BF16' as const, shape: [3], data: new Float32Array([1, -2, 0.1]), parameter: true },
      { name: 's', dtype: 'F32' as const, shape: [], data: new Float32Array([5]) },
      { name: 'i', dtype: 'I64' as const, shape: [2], data: new Uint8Array(new BigInt64Array([2n ** 40n, -7n]).buffer) },
    ];
    for (const zip64 of [false, true]) {
      const file = path.join(dir, zip64 ? 'z64.bin' : 'plain.bin');
      await writeTorchBin(file, tensors, { zip64 });
      const src = await openTorchBin(file);
      assert.deepEqual(src.list(), [
        { name: 'h', dtype: 'F16', shape: [2, 2] },
        { name: 'b', dtype: 'BF16', shape: [3] },
        { name: 's', dtype: 'F32', shape: [] },
        { name: 'i', dtype: 'I64', shape: [2] },
      ]);
      // 0.1 rounded by hand: f16 0x2e66 = 0.0999755859375, bf16 0x3dcd = 0.10009765625.
      assert.deepEqual(values(await src.read('h')), [1, 2, 3, 0.0999755859375]);
      assert.deepEqual(values(await src.read('b')), [1, -2, 0.10009765625]);
      assert.deepEqual(values(await src.read('s')), [5]);
      assert.deepEqual(values(await src.read('i')), [2 ** 40, -7]);
      await src.close();
    }
  } finally {
    await cleanup();
  }
});

test('torch.load reads what writeTorchBin writes (when a system Python with torch is installed)', async (t) => {
  const python = '/usr/bin/python3';
  if (!existsSync(python)) {
    t.skip('no /usr/bin/python3 with torch: cannot cross-check the writer against torch.load');
    return;
  }
  const { dir, cleanup } = await tempDir();
  try {
    // One Python run for both files: importing torch is the slow part.
    const files: string[] = [];
    for (const zip64 of [false, true]) {
      const file = path.join(dir, `x${zip64 ? 64 : ''}.bin`);
      await writeTorchBin(file, [
        { name: 'h', dtype: 'F16', shape: [2, 2], data: new Float32Array([1, 2, 3, 0.1]), storageOffset: 3 },
        { name: 'p', dtype: 'BF16', shape: [3], data: new Float32Array([1, -2, 0.1]), parameter: true },
        { name: 'i', dtype: 'I64', shape: [1], data: new Uint8Array(new BigInt64Array([2n ** 40n]).buffer) },
      ], { zip64 });
      files.push(file);
    }
    const script =
      'import json,sys,torch\nfor f in sys.argv[1:]:\n  sd=torch.load(f)\n  print(json.dumps({k:[type(v).__name__,str(v.dtype),list(v.shape),v.storage_offset(),v.flatten().tolist()] for k,v in sd.items()}))';
    const r = spawnSync(python, ['-c', script, ...files], { encoding: 'utf8' });
    if (r.status !== 0 && /No module named 'torch'/.test(r.stderr)) {
      t.skip('/usr/bin/python3 has no torch: cannot cross-check the writer against torch.load');
      return;
    }
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 2);
    for (const line of lines) {
      assert.deepEqual(JSON.parse(line) as unknown, {
        h: ['Tensor', 'torch.float16', [2, 2], 3, [1, 2, 3, 0.0999755859375]],
        p: ['Parameter', 'torch.bfloat16', [3], 0, [1, -2, 0.10009765625]],
        i: ['Tensor', 'torch.int64', [1], 0, [2 ** 40]],
      });
    }
  } finally {
    await cleanup();
  }
});

test('refuses a pickle that calls os.system (real torch.save of a malicious object)', async () => {
  const file = path.join(fixtures, 'evil.bin');
  await assert.rejects(openTorchBin(file), isChatGLMError('UNSAFE_PICKLE', /pickle refers to (os|posix)\.system, which a checkpoint never needs; refusing to load/, file));
});

test('clear errors: non-contiguous tensor, legacy format, compressed entry, truncated file', async () => {
  await assert.rejects(openTorchBin(path.join(fixtures, 'noncontig.bin')), isChatGLMError('UNSUPPORTED', /tensor t is not contiguous.*stride \[1, 5\]/, 'noncontig.bin'));
  await assert.rejects(openTorchBin(path.join(fixtures, 'legacy.bin')), isChatGLMError('UNSUPPORTED', /legacy.*not supported/, 'legacy.bin'));
  await assert.rejects(openTorchBin(path.join(fixtures, 'compressed.bin')), isChatGLMError('UNSUPPORTED', /compressed/, 'compressed.bin'));
  const { dir, cleanup } = await tempDir();
  try {
    const bytes = await readFile(path.join(fixtures, 'small.bin'));
    const cut = path.join(dir, 'cut.bin');
    await writeFile(cut, bytes.subarray(0, bytes.length - 100));
    await assert.rejects(openTorchBin(cut), isChatGLMError('BAD_FORMAT', /truncated/, cut));
    await assert.rejects(openTorchBin(path.join(dir, 'nope.bin')), isChatGLMError('FILE_NOT_FOUND', /not found/, 'nope.bin'));
  } finally {
    await cleanup();
  }
});

function hex(s: string): Uint8Array {
  return Uint8Array.from(Buffer.from(s, 'hex'));
}

test('unpickle matches what Python pickle (protocol 2) wrote', () => {
  // pickle.dumps(OrderedDict([('a', (1, -2, 300, 70000, 2**40, -2**70, 1.5, True, False, None, 'é', [1, 2], {'k': 0.25}))]), protocol=2)
  const bytes = hex(
    '800263636f6c6c656374696f6e730a4f726465726564446963740a7100295271015801000000617102284b014afeffffff4d2c014a701101008a060000000000018a090000000000000000c0473ff800000000000088894e5802000000c3a971035d7104284b014b02657d710558010000006b7106473fd000000000000073747107732e',
  );
  const v = unpickle(bytes, 'mem.pkl');
  const expected: PickleValue = {
    type: 'dict',
    ordered: true,
    entries: [[
      'a',
      {
        type: 'tuple',
        items: [1, -2, 300, 70000, 2 ** 40, -(2n ** 70n), 1.5, true, false, null, 'é', { type: 'list', items: [1, 2] }, { type: 'dict', ordered: false, entries: [['k', 0.25]] }],
      },
    ]],
  };
  assert.deepEqual(v, expected);
});

test('unpickle refuses globals outside the allowlist and opcodes torch never writes', () => {
  // pickle.dumps(eval, protocol=2): GLOBAL __builtin__ eval
  assert.throws(() => unpickle(hex('8002635f5f6275696c74696e5f5f0a6576616c0a71002e'), 'x.pkl'), isChatGLMError('UNSAFE_PICKLE', /x\.pkl: pickle refers to __builtin__\.eval/));
  // STACK_GLOBAL 'builtins' 'exec' (protocol 4 spelling)
  const sg = Uint8Array.from([0x80, 4, 0x8c, 8, ...Buffer.from('builtins'), 0x8c, 4, ...Buffer.from('exec'), 0x93, 0x2e]);
  assert.throws(() => unpickle(sg, 'y.pkl'), isChatGLMError('UNSAFE_PICKLE', /builtins\.exec/));
  // INST (0x69) builds objects by name in protocol 0: never accepted.
  assert.throws(() => unpickle(Uint8Array.from([0x80, 2, 0x69, 0x2e]), 'z.pkl'), isChatGLMError('BAD_FORMAT', /opcode 0x69/));
  // Truncated pickle.
  assert.throws(() => unpickle(Uint8Array.from([0x80, 2, 0x58, 5, 0, 0, 0, 0x61]), 't.pkl'), isChatGLMError('BAD_FORMAT', /truncated/));
});

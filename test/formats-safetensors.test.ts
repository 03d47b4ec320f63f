import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ChatGLMError } from '../src/errors.js';
import { openSafetensors } from '../src/formats/safetensors.js';
import { writeSafetensors, writeShardedSafetensors } from './support/safetensors-writer.js';
import { tensorToF32 } from '../src/formats/tensor-f32.js';
import { rawSafetensors, tempDir } from './support/formats-tmp.js';

function f32le(values: number[]): Uint8Array {
  return new Uint8Array(new Float32Array(values).buffer);
}

test('reads a hand-assembled safetensors file (independent of our writer)', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    // Two tensors: "b" stored first in the data section, "a" after it, f16 [1, -2] as raw bytes.
    const data = new Uint8Array([...f32le([1.5, -3, 0.25]), 0x00, 0x3c, 0x00, 0xc0]);
    const header = {
      __metadata__: { format: 'pt' },
      a: { dtype: 'F16', shape: [2], data_offsets: [12, 16] },
      b: { dtype: 'F32', shape: [3, 1], data_offsets: [0, 12] },
    };
    const file = path.join(dir, 'x.safetensors');
    await writeFile(file, rawSafetensors(header, data));
    const src = await openSafetensors(file);
    assert.deepEqual(src.metadata, { format: 'pt' });
    assert.deepEqual(src.list().map((t) => [t.name, t.dtype, t.shape]).sort(), [['a', 'F16', [2]], ['b', 'F32', [3, 1]]]);
    assert.ok(src.has('a') && !src.has('c'));
    assert.deepEqual([...tensorToF32(await src.read('b'))], [1.5, -3, 0.25]);
    assert.deepEqual([...tensorToF32(await src.read('a'))], [1, -2]);
    await assert.rejects(src.read('c'), /no tensor named c/);
    await src.close();
  } finally {
    await cleanup();
  }
});

test('writer output has the documented layout: u64 length, 8-aligned JSON header, data in order', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const file = path.join(dir, 'w.safetensors');
    await writeSafetensors(file, [
      { name: 'w', dtype: 'F16', shape: [2], data: new Float32Array([1, -2]) },
      { name: 'i', dtype: 'I64', shape: [1], data: new Uint8Array([7, 0, 0, 0, 0, 0, 0, 0]) },
    ], { format: 'pt' });
    const bytes = await readFile(file);
    const n = Number(bytes.readBigUInt64LE(0));
    assert.equal((8 + n) % 8, 0);
    const header = JSON.parse(bytes.subarray(8, 8 + n).toString('utf8')) as Record<string, unknown>;
    assert.deepEqual(header, {
      __metadata__: { format: 'pt' },
      w: { dtype: 'F16', shape: [2], data_offsets: [0, 4] },
      i: { dtype: 'I64', shape: [1], data_offsets: [4, 12] },
    });
    assert.deepEqual([...bytes.subarray(8 + n)], [0x00, 0x3c, 0x00, 0xc0, 7, 0, 0, 0, 0, 0, 0, 0]);
  } finally {
    await cleanup();
  }
});

test('round trip F32/F16/BF16/I32 through writer and reader', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const vals = new Float32Array([0.1, -1.75, 3.140625, 1e-5, 2, 65504]);
    const file = path.join(dir, 'rt.safetensors');
    await writeSafetensors(file, [
      { name: 'f32', dtype: 'F32', shape: [2, 3], data: vals },
      { name: 'f16', dtype: 'F16', shape: [3, 2], data: vals },
      { name: 'bf16', dtype: 'BF16', shape: [6], data: vals },
      { name: 'i32', dtype: 'I32', shape: [2], data: new Uint8Array(new Int32Array([-5, 9]).buffer) },
      { name: 'empty', dtype: 'F32', shape: [0, 4], data: new Float32Array(0) },
    ]);
    const src = await openSafetensors(file);
    assert.deepEqual([...tensorToF32(await src.read('f32'))], [...vals]);
    // Expected values are vals rounded by hand to f16 / bf16.
    assert.deepEqual([...tensorToF32(await src.read('f16'))], [0.0999755859375, -1.75, 3.140625, 0.000010013580322265625 /* 1e-5 is subnormal in f16: 168 * 2^-24 */, 2, 65504]);
    const bf = tensorToF32(await src.read('bf16'));
    assert.deepEqual([...bf], [0.10009765625, -1.75, 3.140625, 0.000010013580322265625 /* 1e-5f = 0x3727c5ac rounds up to 0x3728 */, 2, 65536]);
    const i = await src.read('i32');
    assert.deepEqual([...new Int32Array(i.data.buffer, i.data.byteOffset, 2)], [-5, 9]);
    assert.equal((await src.read('empty')).data.byteLength, 0);
    await src.close();
  } finally {
    await cleanup();
  }
});

test('writer refuses a byte length that does not match the shape', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    await assert.rejects(
      writeSafetensors(path.join(dir, 'bad.safetensors'), [{ name: 'x', dtype: 'F32', shape: [3], data: new Float32Array(2) }]),
      (e: unknown) => e instanceof ChatGLMError && /needs 12 bytes but 8/.test(e.message),
    );
  } finally {
    await cleanup();
  }
});

test('sharded writer: HF file names, split rule, index.json', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const t = (name: string, n: number) => ({ name, dtype: 'F32' as const, shape: [n], data: new Float32Array(n).fill(n) });
    // a+b = 32 <= 40; c would make 48 -> new shard; big (100) exceeds the limit -> a shard of its own
    // emitted at once (huggingface_hub's rule); d joins c's still-open shard.
    const res = await writeShardedSafetensors(dir, [t('a', 4), t('b', 4), t('c', 4), t('big', 25), t('d', 1)], 40);
    assert.deepEqual(res.shards, [
      'model-00001-of-00003.safetensors',
      'model-00002-of-00003.safetensors',
      'model-00003-of-00003.safetensors',
    ]);
    const index = JSON.parse(await readFile(path.join(dir, 'model.safetensors.index.json'), 'utf8')) as unknown;
    assert.deepEqual(index, {
      metadata: { total_size: 16 * 3 + 100 + 4 },
      weight_map: {
        a: 'model-00001-of-00003.safetensors',
        b: 'model-00001-of-00003.safetensors',
        big: 'model-00002-of-00003.safetensors',
        c: 'model-00003-of-00003.safetensors',
        d: 'model-00003-of-00003.safetensors',
      },
    });
    const s2 = await openSafetensors(path.join(dir, res.shards[2]!));
    assert.deepEqual(s2.list().map((x) => x.name), ['c', 'd']);
    assert.deepEqual(s2.metadata, { format: 'pt' });
    await s2.close();
  } finally {
    await cleanup();
  }
});

test('sharded writer splits like huggingface_hub (its own test_multiple_shards case)', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    // huggingface_hub tests/test_serialization.py: sizes 6, 10, 30, 2, 2 with max_shard_size=10 give
    // shards [layer_1], [layer_3], [layer_2], [layer_4, layer_5], total_size 50.
    const sizes: [string, number][] = [['layer_1', 6], ['layer_2', 10], ['layer_3', 30], ['layer_4', 2], ['layer_5', 2]];
    const res = await writeShardedSafetensors(dir, sizes.map(([name, n]) => ({ name, dtype: 'U8' as const, shape: [n], data: new Uint8Array(n) })), 10);
    const index = JSON.parse(await readFile(res.indexFile, 'utf8')) as { metadata: unknown; weight_map: Record<string, string> };
    assert.deepEqual(index.metadata, { total_size: 50 });
    assert.deepEqual(index.weight_map, {
      layer_1: 'model-00001-of-00004.safetensors',
      layer_3: 'model-00002-of-00004.safetensors',
      layer_2: 'model-00003-of-00004.safetensors',
      layer_4: 'model-00004-of-00004.safetensors',
      layer_5: 'model-00004-of-00004.safetensors',
    });
  } finally {
    await cleanup();
  }
});

async function expectBad(bytes: Uint8Array, pattern: RegExp): Promise<void> {
  const { dir, cleanup } = await tempDir();
  try {
    const file = path.join(dir, 'broken.safetensors');
    await writeFile(file, bytes);
    await assert.rejects(openSafetensors(file), (e: unknown) => {
      assert.ok(e instanceof ChatGLMError, `not a ChatGLMError: ${String(e)}`);
      assert.equal(e.code, 'BAD_FORMAT');
      assert.ok(e.message.includes(file), `message does not name the file: ${e.message}`);
      assert.match(e.message, pattern);
      return true;
    });
  } finally {
    await cleanup();
  }
}

test('errors: truncated, header length larger than file, bad JSON, unknown dtype, bad offsets', async () => {
  const good = { x: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] } };
  const full = rawSafetensors(good, new Uint8Array(16));
  await expectBad(full.subarray(0, full.length - 3), /truncated/);
  await expectBad(new Uint8Array([1, 2, 3]), /too short/);
  await expectBad(rawSafetensors(good, new Uint8Array(16), 1000n), /header length 1000 is larger than the file/);
  await expectBad(rawSafetensors(good, new Uint8Array(16), 2n ** 62n), /larger than the file/);
  await expectBad(rawSafetensors('{"x": {"dtype": "F32", ', new Uint8Array(16)), /not valid JSON/);
  await expectBad(rawSafetensors({ x: { dtype: 'F64', shape: [2], data_offsets: [0, 16] } }, new Uint8Array(16)), /dtype F64.*not supported/);
  await expectBad(rawSafetensors({ x: { dtype: 'F32', shape: [3], data_offsets: [0, 16] } }, new Uint8Array(16)), /needs 12 bytes but its data_offsets span 16/);
  await expectBad(rawSafetensors({ x: { dtype: 'F32', shape: [8], data_offsets: [0, 32] } }, new Uint8Array(16)), /truncated/);
  await expectBad(
    rawSafetensors({ x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, y: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, new Uint8Array(16)),
    /overlap/,
  );
  await expectBad(rawSafetensors({ x: { dtype: 'F32', shape: [2], data_offsets: [8, 0] } }, new Uint8Array(16)), /data_offsets/);
  await expectBad(rawSafetensors({ x: { dtype: 'F32', shape: [-1], data_offsets: [0, 0] } }, new Uint8Array(0)), /shape/);
  await expectBad(rawSafetensors('[1,2]', new Uint8Array(0)), /not a JSON object/);
});

test('missing file is FILE_NOT_FOUND naming the path', async () => {
  await assert.rejects(openSafetensors('/nonexistent/dir/model.safetensors'), (e: unknown) =>
    e instanceof ChatGLMError && e.code === 'FILE_NOT_FOUND' && e.message.includes('/nonexistent/dir/model.safetensors'));
});

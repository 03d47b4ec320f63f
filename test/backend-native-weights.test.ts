// Weight memory of the native backend: repacked q4_0/q8_0 matrices live in memory the addon maps
// (2 MiB-aligned, advised for transparent huge pages on Linux). These tests check that memory is
// what the matmul needs (zeroed, the requested size, writable, freed by the GC without harm) and
// that a matrix gives bit-identical results whether it sits in that memory or in a plain array.
import { test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import assert from 'node:assert/strict';
import { loadAddon } from '../src/backend/native/addon.js';
import { NativeBackend } from '../src/backend/native/index.js';
import { ReferenceBackend } from '../src/backend/reference/index.js';
import { quantizeRows } from '../src/numeric/ggml-quants.js';
import { nativeSkipReason, randomF32, relError, seeded } from './support/backend-native-fixtures.js';

const skip = nativeSkipReason();

test('allocWeights: zeroed, writable memory of the requested size (or null off Linux)', (t) => {
  if (skip !== undefined) return t.skip(skip);
  const addon = loadAddon().addon!;
  // One size below a huge page, one spanning several with a ragged tail.
  for (const bytes of [1000, (5 << 20) + 12345]) {
    const mem = addon.allocWeights(bytes);
    if (process.platform !== 'linux') {
      assert.equal(mem, null, 'only Linux maps weight memory itself');
      continue;
    }
    assert.ok(mem instanceof Uint8Array, 'a Uint8Array on Linux');
    assert.equal(mem.byteLength, bytes);
    assert.equal(mem.buffer.byteLength, bytes);
    for (let i = 0; i < bytes; i += 4093) assert.equal(mem[i], 0, `byte ${i} is zero`);
    assert.equal(mem[bytes - 1], 0);
    mem.fill(0xa5);
    assert.equal(mem[0], 0xa5);
    assert.equal(mem[bytes - 1], 0xa5);
  }
  assert.throws(() => addon.allocWeights(0), /allocWeights: bad size/);
  assert.throws(() => addon.allocWeights(-5), /allocWeights: bad size/);
});

test('a matrix in mapped weight memory computes exactly what the same matrix in a plain array does', (t) => {
  if (skip !== undefined) return t.skip(skip);
  const addon = loadAddon().addon!;
  const mapped = new NativeBackend(addon, { threads: 2, hugePages: true });
  const plain = new NativeBackend(addon, { threads: 2, hugePages: false });
  const ref = new ReferenceBackend();
  const rand = seeded(77);
  // 4100 x 288 q8_0 is 2.5 MB: more than one huge page, and 4 rows past the last group of 8.
  for (const [type, rows, cols] of [['q8_0', 4100, 288], ['q4_0', 4100, 288], ['q4_0', 13, 64]] as const) {
    const bytes = quantizeRows(type, randomF32(rand, rows * cols), rows, cols);
    const a = mapped.loadMatrix(type, rows, cols, bytes);
    const b = plain.loadMatrix(type, rows, cols, bytes);
    for (const n of [1, 5]) {
      const x = randomF32(rand, n * cols, 3);
      const got = new Float32Array(n * rows);
      const want = new Float32Array(n * rows);
      mapped.matmul(a, x, n, got);
      plain.matmul(b, x, n, want);
      assert.deepEqual(got, want, `${type} [${rows}x${cols}] n=${n}`);
      const oracle = new Float32Array(n * rows);
      ref.matmul(ref.loadMatrix(type, rows, cols, bytes), x, n, oracle);
      const err = relError(got, oracle);
      assert.ok(err < (type === 'q8_0' ? 1e-2 : 5e-2), `${type} vs reference: rel error ${err}`);
    }
    const ids = new Int32Array([0, rows - 1, 7]);
    const e1 = new Float32Array(3 * cols);
    const e2 = new Float32Array(3 * cols);
    mapped.embedding(a, ids, e1);
    plain.embedding(b, ids, e2);
    assert.deepEqual(e1, e2, `${type} embedding rows`);
  }
});

test('mapped weight memory is released by the garbage collector', async (t) => {
  if (skip !== undefined) return t.skip(skip);
  if (process.platform !== 'linux') return t.skip('weight memory is only mapped on Linux');
  // The flag exposes gc() to contexts created after it is set.
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const addon = loadAddon().addon!;
  const rssBefore = process.memoryUsage().rss;
  // 40 x 64 MiB touched = 2.5 GiB if nothing were freed.
  for (let i = 0; i < 40; i++) {
    const mem = addon.allocWeights(64 << 20)!;
    mem.fill(1);
    gc();
    await new Promise((r) => setImmediate(r));
  }
  gc();
  await new Promise((r) => setImmediate(r));
  const grown = process.memoryUsage().rss - rssBefore;
  assert.ok(grown < 512 << 20, `RSS grew by ${(grown / 2 ** 20).toFixed(0)} MiB`);
});

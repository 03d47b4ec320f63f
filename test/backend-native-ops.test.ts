// Native kernels (every variant this CPU runs: scalar, AVX2, AVX-512 VNNI) against the reference
// backend on random inputs: matmul for every weight type, embedding, rmsnorm, rope, swiglu, add.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReferenceBackend } from '../src/backend/reference/index.js';
import type { WeightType } from '../src/backend/types.js';
import { quantizeRows } from '../src/numeric/ggml-quants.js';
import { f32ToBf16Bytes, f32ToF16Bytes } from '../src/numeric/half.js';
import { ChatGLMError } from '../src/errors.js';
import { bytesOf, nativeBackend, nativeIsas, nativeSkipReason, randomF32, relError, seeded } from './support/backend-native-fixtures.js';

const skip = nativeSkipReason();
const ref = new ReferenceBackend();

function weightBytes(type: WeightType, w: Float32Array, rows: number, cols: number): Uint8Array {
  switch (type) {
    case 'f32':
      return bytesOf(w);
    case 'f16':
      return f32ToF16Bytes(w);
    case 'bf16':
      return f32ToBf16Bytes(w);
    case 'q8_0':
    case 'q4_0':
      return quantizeRows(type, w, rows, cols);
    default:
      throw new Error(`no test weights for ${type}`);
  }
}

// Per-type tolerance on ||native - reference|| / ||reference||. The weights are the same bytes for
// both; the quantized types differ by the native side's 8-bit activations (llama.cpp's kernel tests
// allow ~1e-2 for q8_0 and ~5e-2 for q4_0; we stay well inside).
const TOL: Partial<Record<WeightType, number>> = { f32: 1e-5, f16: 1e-5, bf16: 1e-5, q8_0: 1e-2, q4_0: 5e-2 };

for (const isa of skip === undefined ? nativeIsas() : ['(none)']) {
  test(`matmul [${isa}]: every weight type, decode and prefill row counts, with and without bias`, (t) => {
    if (skip !== undefined) return t.skip(skip);
    const be = nativeBackend(isa);
    const rand = seeded(1234);
    for (const type of ['f32', 'f16', 'bf16', 'q8_0', 'q4_0'] as WeightType[]) {
      // 37 rows: not a multiple of the row tiles; odd cols for the float types exercise the tails.
      const shapes: [number, number][] = type === 'q8_0' || type === 'q4_0' ? [[37, 256], [5, 32]] : [[37, 259], [3, 8]];
      for (const [rows, cols] of shapes) {
        const w = randomF32(rand, rows * cols);
        const bytes = weightBytes(type, w, rows, cols);
        const mr = ref.loadMatrix(type, rows, cols, bytes);
        const mn = be.loadMatrix(type, rows, cols, bytes);
        for (const n of [1, 3, 4, 9]) {
          const x = randomF32(rand, n * cols, 2);
          for (const withBias of [false, true]) {
            const bias = withBias ? randomF32(rand, rows) : undefined;
            const want = new Float32Array(n * rows);
            const got = new Float32Array(n * rows);
            ref.matmul(mr, x, n, want, bias);
            be.matmul(mn, x, n, got, bias);
            const err = relError(got, want);
            assert.ok(err < TOL[type]!, `${type} [${rows}x${cols}] n=${n} bias=${withBias}: rel error ${err} >= ${TOL[type]}`);
          }
        }
      }
    }
  });

  test(`matmul [${isa}]: q8_0/q4_0 are exact when the activations are exactly 8-bit representable`, (t) => {
    if (skip !== undefined) return t.skip(skip);
    // Activations whose blocks hold integers in [-127, 127] with a 127 in every block quantize to
    // themselves (scale exactly 1), so the integer dot products must reproduce the reference's
    // result to float rounding, far tighter than the quantization tolerance above.
    const be = nativeBackend(isa);
    const rand = seeded(99);
    const rows = 19;
    const cols = 128;
    for (const type of ['q8_0', 'q4_0'] as const) {
      const bytes = quantizeRows(type, randomF32(rand, rows * cols), rows, cols);
      for (const n of [1, 6]) {
        const x = new Float32Array(n * cols);
        for (let i = 0; i < x.length; i++) x[i] = i % 32 === 5 ? 127 : Math.round((rand() * 2 - 1) * 127);
        const want = new Float32Array(n * rows);
        const got = new Float32Array(n * rows);
        ref.matmul(ref.loadMatrix(type, rows, cols, bytes), x, n, want);
        be.matmul(be.loadMatrix(type, rows, cols, bytes), x, n, got);
        const err = relError(got, want);
        assert.ok(err < 1e-6, `${type} n=${n}: rel error ${err}`);
      }
    }
  });

  test(`elementwise ops [${isa}]: rmsnorm, rope, swiglu, add, embedding`, (t) => {
    if (skip !== undefined) return t.skip(skip);
    const be = nativeBackend(isa);
    const rand = seeded(7);
    // rmsnorm, including out aliasing x
    for (const [n, dim] of [[1, 4096], [5, 259]] as const) {
      const x = randomF32(rand, n * dim, 3);
      const w = randomF32(rand, dim);
      const want = new Float32Array(n * dim);
      const got = new Float32Array(n * dim);
      ref.rmsnorm(x, w, n, dim, 1e-5, want);
      be.rmsnorm(x, w, n, dim, 1e-5, got);
      assert.ok(relError(got, want) < 1e-6, `rmsnorm n=${n}`);
      const alias = x.slice();
      be.rmsnorm(alias, w, n, dim, 1e-5, alias);
      assert.ok(relError(alias, want) < 1e-6, 'rmsnorm aliased');
    }
    // rope: half of each head rotated, large positions and a scaled base
    for (const [n, heads, hd, base] of [[3, 4, 128, 10000], [2, 2, 64, 500000]] as const) {
      const x = randomF32(rand, n * heads * hd);
      const positions = Float32Array.from({ length: n }, (_, i) => i * 3071 + 5);
      const want = x.slice();
      const got = x.slice();
      ref.rope(want, n, heads, hd, hd / 2, positions, base);
      be.rope(got, n, heads, hd, hd / 2, positions, base);
      assert.ok(relError(got, want) < 1e-6, `rope hd=${hd}`);
      // the unrotated half is untouched
      for (let i = hd / 2; i < hd; i++) assert.equal(got[i], x[i]);
    }
    // swiglu
    for (const [n, half] of [[1, 13696], [4, 37]] as const) {
      const x = randomF32(rand, n * 2 * half, 6);
      const want = new Float32Array(n * half);
      const got = new Float32Array(n * half);
      ref.swiglu(x, n, half, want);
      be.swiglu(x, n, half, got);
      assert.ok(relError(got, want) < 1e-6, `swiglu half=${half}`);
    }
    // add over a prefix only
    {
      const a = randomF32(rand, 1001);
      const b = randomF32(rand, 1001);
      const want = a.slice();
      ref.add(want, b, 999);
      be.add(a, b, 999);
      assert.deepEqual(Array.from(a), Array.from(want));
    }
    // embedding: the decoded rows must be bit-identical for every type
    for (const type of ['f32', 'f16', 'bf16', 'q8_0', 'q4_0'] as WeightType[]) {
      const rows = 11;
      const cols = 64;
      const bytes = weightBytes(type, randomF32(rand, rows * cols), rows, cols);
      const ids = [3, 0, 10, 3];
      const want = new Float32Array(ids.length * cols);
      const got = new Float32Array(ids.length * cols);
      ref.embedding(ref.loadMatrix(type, rows, cols, bytes), ids, want);
      be.embedding(be.loadMatrix(type, rows, cols, bytes), ids, got);
      assert.deepEqual(Array.from(got), Array.from(want), `embedding ${type}`);
    }
  });
}

test('native: bad calls fail with clear errors instead of reading out of bounds', (t) => {
  if (skip !== undefined) return t.skip(skip);
  const be = nativeBackend();
  assert.throws(() => be.loadMatrix('q4_0', 2, 48, new Uint8Array(2 * 27)), ChatGLMError);
  assert.throws(() => be.loadMatrix('f16', 2, 4, new Uint8Array(15)), ChatGLMError);
  const m = be.loadMatrix('f32', 2, 4, new Uint8Array(32));
  assert.throws(() => be.matmul(m, new Float32Array(3), 1, new Float32Array(2)), /too small/);
  assert.throws(() => be.matmul(m, new Float32Array(4), 1, new Float32Array(1)), /too small/);
  assert.throws(() => be.embedding(m, [2], new Float32Array(4)), ChatGLMError);
  assert.throws(() => nativeBackend('no-such-isa'), ChatGLMError);
});

test('native: the thread count is honoured and results do not depend on it', (t) => {
  if (skip !== undefined) return t.skip(skip);
  const rand = seeded(5);
  const rows = 300;
  const cols = 512;
  const bytes = quantizeRows('q4_0', randomF32(rand, rows * cols), rows, cols);
  const x = randomF32(rand, 8 * cols);
  const outs: Float32Array[] = [];
  for (const threads of [1, 2, 3]) {
    const be = nativeBackend(undefined, threads);
    assert.equal(be.info.threads, threads);
    const out = new Float32Array(8 * rows);
    be.matmul(be.loadMatrix('q4_0', rows, cols, bytes), x, 8, out);
    outs.push(out);
  }
  assert.deepEqual(Array.from(outs[1]!), Array.from(outs[0]!));
  assert.deepEqual(Array.from(outs[2]!), Array.from(outs[0]!));
  nativeBackend(undefined, 2);
});

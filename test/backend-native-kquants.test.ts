// Native kernels for the k-quants (q8_K activations) and q4_1/q5_0/q5_1 (8-bit activations),
// native/kernels_kquants.inc, for every kernel variant this CPU runs, against the reference backend
// on the same weight bytes: matmul in decode and prefill shapes, prefill equal to decode bit for bit,
// exactness when the activations are exactly representable in 8 bits, and the embedding lookup bit for bit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReferenceBackend } from '../src/backend/reference/index.js';
import type { WeightType } from '../src/backend/types.js';
import { quantizeRowsK } from '../src/numeric/ggml-kquants-quantize.js';
import { quantizeRows } from '../src/numeric/ggml-quants.js';
import { nativeBackend, nativeIsas, nativeSkipReason, randomF32, relError, seeded } from './support/backend-native-fixtures.js';

const skip = nativeSkipReason();
const ref = new ReferenceBackend();
const K_TYPES = ['q2_K', 'q3_K', 'q4_K', 'q5_K', 'q6_K'] as const;
const LEGACY = ['q4_1', 'q5_0', 'q5_1'] as const;

function weights(type: WeightType, w: Float32Array, rows: number, cols: number): Uint8Array {
  if ((K_TYPES as readonly string[]).includes(type)) return quantizeRowsK(type as (typeof K_TYPES)[number], w, rows, cols);
  return quantizeRows(type as (typeof LEGACY)[number], w, rows, cols);
}

// ||native - reference|| / ||reference||: only the 8-bit activations differ (one scale per 256 for
// the k-quants, per 32 for the others). llama.cpp's own test-quantize-fns allows 4e-3..2e-2 for
// these dot products.
const TOL = 1.5e-2;

// Random weight bytes quantize slowly in JavaScript: make each matrix once and share it.
const rand = seeded(4321);
const ROWS = 37;
const COLS = 512;
const MATS = new Map<string, { w: Float32Array; bytes: Uint8Array }>();
for (const type of [...K_TYPES, ...LEGACY]) {
  const w = randomF32(rand, ROWS * COLS);
  MATS.set(type, { w, bytes: weights(type, w, ROWS, COLS) });
}

for (const isa of skip === undefined ? nativeIsas() : ['(none)']) {
  test(`k-quant matmul [${isa}]: decode and prefill row counts, with and without bias`, (t) => {
    if (skip !== undefined) return t.skip(skip);
    const be = nativeBackend(isa);
    try {
      for (const type of [...K_TYPES, ...LEGACY]) {
        const { bytes } = MATS.get(type)!;
        const mr = ref.loadMatrix(type, ROWS, COLS, bytes);
        const mn = be.loadMatrix(type, ROWS, COLS, bytes);
        // every type stays in its own blocks
        assert.equal(mn.type, type);
        for (const n of [1, 3, 9, 17]) {
          const x = randomF32(rand, n * COLS, 2);
          for (const withBias of [false, true]) {
            const bias = withBias ? randomF32(rand, ROWS) : undefined;
            const want = new Float32Array(n * ROWS);
            const got = new Float32Array(n * ROWS);
            ref.matmul(mr, x, n, want, bias);
            be.matmul(mn, x, n, got, bias);
            const err = relError(got, want);
            assert.ok(err < TOL, `${type} n=${n} bias=${withBias}: rel error ${err}`);
          }
        }
      }
    } finally {
      be.dispose();
    }
  });

  test(`k-quant matmul [${isa}]: 17 tokens in one call give each token's one-token result bit for bit`, (t) => {
    if (skip !== undefined) return t.skip(skip);
    // A prompt chunk (the prefill GEMM on AVX-512) and the decode kernels must sum alike, or a
    // sequence's logits would depend on how it was batched or chunked.
    const be = nativeBackend(isa);
    try {
      for (const type of [...K_TYPES, ...LEGACY]) {
        const mn = be.loadMatrix(type, ROWS, COLS, MATS.get(type)!.bytes);
        const n = 17;
        const x = randomF32(rand, n * COLS, 2);
        const bias = randomF32(rand, ROWS);
        const all = new Float32Array(n * ROWS);
        be.matmul(mn, x, n, all, bias);
        const one = new Float32Array(ROWS);
        for (let i = 0; i < n; i++) {
          be.matmul(mn, x.subarray(i * COLS, (i + 1) * COLS), 1, one, bias);
          assert.deepEqual(all.subarray(i * ROWS, (i + 1) * ROWS), one, `${type}: token ${i}`);
        }
      }
    } finally {
      be.dispose();
    }
  });

  test(`k-quant matmul [${isa}]: exact when the activations are exactly q8_K-representable`, (t) => {
    if (skip !== undefined) return t.skip(skip);
    // Integers in [-127, 127] with 127 first in every 256-block quantize to themselves (d = -1,
    // q = -x), so only float rounding separates the integer dot products from the reference.
    const be = nativeBackend(isa);
    try {
      // (for the 32-element types, 127 leads every 32-block too: their activation blocks are exact as well)
      for (const type of [...K_TYPES, ...LEGACY]) {
        const { bytes } = MATS.get(type)!;
        for (const n of [1, 10]) {
          const x = new Float32Array(n * COLS);
          for (let i = 0; i < x.length; i++) x[i] = i % 32 === 0 ? 127 : Math.round((rand() * 2 - 1) * 127);
          const want = new Float32Array(n * ROWS);
          const got = new Float32Array(n * ROWS);
          ref.matmul(ref.loadMatrix(type, ROWS, COLS, bytes), x, n, want);
          be.matmul(be.loadMatrix(type, ROWS, COLS, bytes), x, n, got);
          const err = relError(got, want);
          assert.ok(err < 1e-6, `${type} n=${n}: rel error ${err}`);
        }
      }
    } finally {
      be.dispose();
    }
  });

  test(`k-quant and q4_1/q5_0/q5_1 embedding [${isa}]: rows equal ggml's dequantization bit for bit`, (t) => {
    if (skip !== undefined) return t.skip(skip);
    const be = nativeBackend(isa);
    try {
      const ids = [0, 36, 7, 7, 20];
      for (const type of [...K_TYPES, ...LEGACY]) {
        const { bytes } = MATS.get(type)!;
        const want = new Float32Array(ids.length * COLS);
        const got = new Float32Array(ids.length * COLS);
        ref.embedding(ref.loadMatrix(type, ROWS, COLS, bytes), ids, want);
        be.embedding(be.loadMatrix(type, ROWS, COLS, bytes), ids, got);
        assert.deepEqual(Array.from(got), Array.from(want), type);
      }
    } finally {
      be.dispose();
    }
  });
}

test('k-quant matrices need whole 256-element super-blocks', (t) => {
  if (skip !== undefined) return t.skip(skip);
  const be = nativeBackend();
  try {
    assert.throws(() => be.loadMatrix('q4_K', 2, 96, new Uint8Array(2 * 54)), /multiple of 256/);
  } finally {
    be.dispose();
  }
});

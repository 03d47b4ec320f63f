// Our quantizers and dequantizers against llama.cpp's own ggml (libggml-base.so from node-llama-cpp,
// through test/support/ggml-golden.c): the same floats must give the same bytes, and the same bytes
// the same floats, for every block type. Skips with the reason when node-llama-cpp or cc is absent.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { QK_K, dequantizeRowsK } from '../src/numeric/ggml-kquants.js';
import { quantizeRowsK } from '../src/numeric/ggml-kquants-quantize.js';
import type { KQuantType } from '../src/numeric/ggml-kquants.js';
import { dequantizeRows, quantizeRows } from '../src/numeric/ggml-quants.js';
import type { GgmlQuantType } from '../src/numeric/ggml-quants.js';
import { ggmlGolden, type GgmlGolden } from './support/ggml-golden.js';

function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return (s + 0.5) / 4294967296;
  };
}

/**
 * rows x cols floats, one 256-element super-block at a time in a different regime: normal samples
 * at scales from 1e-4 to 10, an all-zero block, a constant block, a single outlier, exact quarter
 * steps (rounding ties), all-positive and all-negative blocks, values near ggml's 1e-15 threshold.
 */
function inputs(rows: number, cols: number, seed: number): Float32Array {
  const u = rng(seed);
  const normal = (): number => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
  const x = new Float32Array(rows * cols);
  for (let b = 0; b < x.length / QK_K; b++) {
    const o = b * QK_K;
    const scale = 10 ** (-4 + 5 * u());
    for (let j = 0; j < QK_K; j++) {
      let v: number;
      switch (b % 9) {
        case 0:
          v = 0;
          break;
        case 1:
          v = 0.75;
          break;
        case 2:
          v = j === 77 ? 40 * scale : normal() * scale * 0.01;
          break;
        case 3:
          v = Math.round(normal() * 8) / 4;
          break;
        case 4:
          v = Math.abs(normal()) * scale + scale;
          break;
        case 5:
          v = -Math.abs(normal()) * scale;
          break;
        case 6:
          v = normal() * 1e-16;
          break;
        default:
          v = normal() * scale;
      }
      x[o + j] = v;
    }
  }
  return x;
}

let golden: GgmlGolden | string | undefined;
async function oracle(): Promise<GgmlGolden | string> {
  golden ??= await ggmlGolden();
  return golden;
}

test.after(async () => {
  if (typeof golden === 'object') await golden.close();
});

const K_TYPES: KQuantType[] = ['q2_K', 'q3_K', 'q4_K', 'q5_K', 'q6_K', 'q8_K'];
const LEGACY: GgmlQuantType[] = ['q4_0', 'q4_1', 'q5_0', 'q5_1', 'q8_0'];

for (const type of K_TYPES) {
  test(`${type}: quantization equals ggml's byte for byte, dequantization bit for bit`, async (t) => {
    const g = await oracle();
    if (typeof g === 'string') return t.skip(g);
    const rows = 9;
    const cols = 2 * QK_K;
    const x = inputs(rows, cols, 1000 + type.charCodeAt(1));
    const want = await g.quantize(type, x, rows, cols);
    const got = quantizeRowsK(type, x, rows, cols);
    assert.equal(got.length, want.length);
    const bb = got.length / ((rows * cols) / QK_K);
    for (let b = 0; b < (rows * cols) / QK_K; b++) {
      const a = got.subarray(b * bb, (b + 1) * bb);
      const w = want.subarray(b * bb, (b + 1) * bb);
      // q8_K leaves bsums unwritten for an all-zero block; compare what it defines.
      const n = type === 'q8_K' && x.subarray(b * QK_K, (b + 1) * QK_K).every((v) => v === 0) ? 260 : bb;
      assert.deepEqual(Array.from(a.subarray(0, n)), Array.from(w.subarray(0, n)), `${type} super-block ${b} (regime ${b % 9})`);
    }
    const deqWant = await g.dequantize(type, want, rows, cols);
    const deqGot = dequantizeRowsK(type, want, rows, cols);
    assert.deepEqual(Array.from(deqGot), Array.from(deqWant));
  });
}

for (const type of LEGACY) {
  test(`${type}: quantization equals ggml's byte for byte, dequantization bit for bit`, async (t) => {
    const g = await oracle();
    if (typeof g === 'string') return t.skip(g);
    const rows = 9;
    const cols = 2 * QK_K;
    const x = inputs(rows, cols, 2000 + type.charCodeAt(1));
    const want = await g.quantize(type, x, rows, cols);
    assert.deepEqual(quantizeRows(type, x, rows, cols), want);
    assert.deepEqual(Array.from(dequantizeRows(type, want, rows, cols)), Array.from(await g.dequantize(type, want, rows, cols)));
  });
}

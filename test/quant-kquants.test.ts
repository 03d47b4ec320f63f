import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  K_BLOCK_BYTES,
  QK_K,
  dequantizeRowsK,
  kBytesPerRow,
  nearestInt,
} from '../src/numeric/ggml-kquants.js';
import { quantizeRowsK } from '../src/numeric/ggml-kquants-quantize.js';
import type { KQuantType } from '../src/numeric/ggml-kquants.js';
import { ChatGLMError } from '../src/errors.js';

// xorshift32, deterministic.
function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
}

function randn(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  const u = (): number => (r() + 0.5) / 4294967296;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = scale * Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
  return out;
}

// ---- an independent float64 reading of ggml-common.h's block layouts, one element at a time

function f16(lo: number, hi: number): number {
  const h = lo | (hi << 8);
  const e = (h >> 10) & 31;
  const m = h & 1023;
  const v = e === 0 ? m * 2 ** -24 : (1 + m / 1024) * 2 ** (e - 15);
  return h & 0x8000 ? -v : v;
}
const bit = (byte: number, i: number): number => (byte >> i) & 1;
const int8 = (v: number): number => (v >= 128 ? v - 256 : v);

/** Element e (0..255) of one super-block, exactly, in float64. */
function element(type: KQuantType, b: Uint8Array, e: number): number {
  const half = e >> 7; // which 128-element half
  const g = (e & 127) >> 5; // which 32-element quarter of that half
  const l = e & 31;
  switch (type) {
    case 'q2_K': {
      const sc = b[e >> 4]!;
      const q = (b[16 + 32 * half + l]! >> (2 * g)) & 3;
      return f16(b[80]!, b[81]!) * (sc & 15) * q - f16(b[82]!, b[83]!) * (sc >> 4);
    }
    case 'q3_K': {
      const j = e >> 4;
      const low4 = j < 8 ? b[96 + j]! & 15 : b[96 + j - 8]! >> 4;
      const high2 = (b[96 + 8 + (j % 4)]! >> (2 * Math.floor(j / 4))) & 3;
      const scale = low4 + 16 * high2 - 32;
      const q2 = (b[32 + 32 * half + l]! >> (2 * g)) & 3;
      const q = q2 + 4 * bit(b[e & 31]!, e >> 5) - 4;
      return f16(b[108]!, b[109]!) * scale * q;
    }
    case 'q4_K':
    case 'q5_K': {
      const s = e >> 5; // sub-block of 32
      const S = (i: number): number => b[4 + i]!;
      const sc = s < 4 ? S(s) & 63 : (S(s + 4) & 15) + 16 * (S(s - 4) >> 6);
      const mn = s < 4 ? S(s + 4) & 63 : (S(s + 4) >> 4) + 16 * (S(s) >> 6);
      const qsAt = type === 'q5_K' ? 48 : 16;
      const byte = b[qsAt + 32 * (e >> 6) + l]!;
      let q = s % 2 === 0 ? byte & 15 : byte >> 4;
      if (type === 'q5_K') q += 16 * bit(b[16 + l]!, s);
      return f16(b[0]!, b[1]!) * sc * q - f16(b[2]!, b[3]!) * mn;
    }
    case 'q6_K': {
      const lowByte = b[64 * half + 32 * (g % 2) + l]!;
      const low = g < 2 ? lowByte & 15 : lowByte >> 4;
      const high = (b[128 + 32 * half + l]! >> (2 * g)) & 3;
      return f16(b[208]!, b[209]!) * int8(b[192 + (e >> 4)]!) * (low + 16 * high - 32);
    }
    case 'q8_K': {
      const d = new DataView(b.buffer, b.byteOffset, 4).getFloat32(0, true);
      return d * int8(b[4 + e]!);
    }
  }
}

/** Random bytes with finite, moderately sized f16 scales (subnormals included). */
function randomBlock(type: KQuantType, r: () => number): Uint8Array {
  const b = new Uint8Array(K_BLOCK_BYTES[type]);
  for (let i = 0; i < b.length; i++) b[i] = r() & 0xff;
  const half = (at: number): void => {
    // exponent 0..20 (subnormal to ~32), random sign and mantissa
    const h = (r() & 0x83ff) | ((r() % 21) << 10);
    b[at] = h & 0xff;
    b[at + 1] = h >> 8;
  };
  switch (type) {
    case 'q2_K':
      half(80);
      half(82);
      break;
    case 'q3_K':
      half(108);
      break;
    case 'q4_K':
    case 'q5_K':
      half(0);
      half(2);
      break;
    case 'q6_K':
      half(208);
      break;
    case 'q8_K':
      new DataView(b.buffer).setFloat32(0, ((r() % 2000) - 1000) / 997, true);
      break;
  }
  return b;
}

const TYPES: KQuantType[] = ['q2_K', 'q3_K', 'q4_K', 'q5_K', 'q6_K', 'q8_K'];

test('k-quant block sizes are ggml-common.h sizes, rows must be multiples of 256', () => {
  assert.deepEqual(
    TYPES.map((t) => K_BLOCK_BYTES[t]),
    [84, 110, 144, 176, 210, 292],
  );
  assert.equal(kBytesPerRow('q4_K', 4096), 16 * 144);
  assert.throws(() => kBytesPerRow('q6_K', 13696), ChatGLMError);
});

test('nearestInt is round half to even on f32 values (ggml nearest_int)', () => {
  const cases: [number, number][] = [
    [0.5, 0],
    [1.5, 2],
    [2.5, 2],
    [-0.5, 0],
    [-1.5, -2],
    [-2.5, -2],
    [3.4999998, 3],
    [-7.6, -8],
    [127.5, 128],
    [4194303, 4194303],
  ];
  for (const [x, want] of cases) assert.equal(nearestInt(Math.fround(x)), want, `nearestInt(${x})`);
});

for (const type of TYPES) {
  test(`${type}: dequantization equals a float64 reading of the layout, rounded once to f32`, () => {
    // ggml's intermediate products (f16 scale x 6-8 bit sub-scale x quant) are exact in f32, so the
    // f32 result is the exact value rounded once: the comparison is bit-exact.
    const r = rng(0x5eed + type.charCodeAt(1));
    const nb = 40;
    const bytes = new Uint8Array(nb * K_BLOCK_BYTES[type]);
    for (let i = 0; i < nb; i++) bytes.set(randomBlock(type, r), i * K_BLOCK_BYTES[type]);
    const got = dequantizeRowsK(type, bytes, 2, (nb / 2) * QK_K);
    let checked = 0;
    for (let i = 0; i < nb; i++) {
      const blk = bytes.subarray(i * K_BLOCK_BYTES[type], (i + 1) * K_BLOCK_BYTES[type]);
      for (let e = 0; e < QK_K; e++) {
        const want = Math.fround(element(type, blk, e));
        const g = got[i * QK_K + e]!;
        if (!Object.is(g, want) && !(g === 0 && want === 0)) {
          assert.fail(`${type} block ${i} element ${e}: got ${g}, want ${want}`);
        }
        checked++;
      }
    }
    assert.equal(checked, nb * QK_K);
  });
}

// Error bounds of the reference quantizers: |x - dequant(quant(x))| relative to each block's range.
// (Bit-exactness against llama.cpp's own quantizer is checked by quant-kquants-golden.test.ts.)
const BOUND: Record<KQuantType, number> = {
  q2_K: 0.12,
  q3_K: 0.06,
  q4_K: 0.03,
  q5_K: 0.015,
  q6_K: 0.008,
  q8_K: 0.0025,
};

for (const type of TYPES) {
  test(`${type}: the reference quantizer round-trips within its precision`, () => {
    const rows = 3;
    const cols = 2 * QK_K;
    const x = randn(rows * cols, 77 + type.charCodeAt(1), 0.02);
    // one block with a large outlier, one all-zero sub-block
    x[5] = 0.5;
    x.fill(0, QK_K, QK_K + 32);
    const q = quantizeRowsK(type, x, rows, cols);
    assert.equal(q.length, rows * kBytesPerRow(type, cols));
    const y = dequantizeRowsK(type, q, rows, cols);
    for (let blk = 0; blk < (rows * cols) / QK_K; blk++) {
      let lo = Infinity;
      let hi = -Infinity;
      for (let j = 0; j < QK_K; j++) {
        lo = Math.min(lo, x[blk * QK_K + j]!);
        hi = Math.max(hi, x[blk * QK_K + j]!);
      }
      const range = Math.max(hi - lo, 1e-9);
      let worst = 0;
      let sq = 0;
      for (let j = 0; j < QK_K; j++) {
        const d = Math.abs(x[blk * QK_K + j]! - y[blk * QK_K + j]!);
        worst = Math.max(worst, d);
        sq += d * d;
      }
      const rms = Math.sqrt(sq / QK_K);
      assert.ok(rms / range < BOUND[type], `${type} block ${blk}: rms error ${rms} vs range ${range}`);
      assert.ok(worst / range < 4 * BOUND[type], `${type} block ${blk}: worst error ${worst} vs range ${range}`);
    }
    // q8_K's bsums are the sums of each 16 quants.
    if (type === 'q8_K') {
      const dv = new DataView(q.buffer);
      for (let j = 0; j < 16; j++) {
        let s = 0;
        for (let i = 0; i < 16; i++) s += int8(q[4 + 16 * j + i]!);
        assert.equal(dv.getInt16(260 + 2 * j, true), s);
      }
    }
  });
}

test('k-quant quantizers keep an all-zero block zero', () => {
  for (const type of TYPES) {
    const y = dequantizeRowsK(type, quantizeRowsK(type, new Float32Array(QK_K), 1, QK_K), 1, QK_K);
    assert.ok(
      y.every((v) => v === 0),
      type,
    );
  }
});

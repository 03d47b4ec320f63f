import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  QK,
  bytesPerRow,
  dequantizeRow,
  dequantizeRows,
  quantizeRows,
} from '../src/numeric/ggml-quants.js';
import type { GgmlQuantType } from '../src/numeric/ggml-quants.js';
import { ChatGLMError } from '../src/errors.js';
import { GOLDEN_INPUT_F32, GOLDEN_QUANTS } from './support/gguf-quant-golden.js';

function block(values: Record<number, number>): Float32Array {
  const x = new Float32Array(QK);
  for (const [k, v] of Object.entries(values)) x[Number(k)] = v;
  return x;
}

function hex(b: Uint8Array): string {
  return Array.from(b, (v) => v.toString(16).padStart(2, '0')).join(' ');
}

function bytes(...parts: (number | number[])[]): Uint8Array {
  return Uint8Array.from(parts.flat());
}

// Deterministic normal-ish samples (xorshift + Box-Muller) for the error-bound tests.
function randn(n: number, seed: number): Float32Array {
  let s = seed >>> 0 || 1;
  const u = (): number => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return (s + 0.5) / 4294967296;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u());
  return out;
}

test('bytesPerRow matches the ggml block sizes and rejects ragged rows', () => {
  assert.equal(bytesPerRow('q8_0', 64), 68);
  assert.equal(bytesPerRow('q4_0', 4096), 128 * 18);
  assert.equal(bytesPerRow('q4_1', 32), 20);
  assert.equal(bytesPerRow('q5_0', 32), 22);
  assert.equal(bytesPerRow('q5_1', 32), 24);
  assert.throws(() => bytesPerRow('q8_0', 33), ChatGLMError);
});

test('q8_0: exact bytes, d = amax/127 as f16, roundf ties away from zero', () => {
  // amax 127 -> d = 1 (f16 0x3c00), id = 1, q = round(x).
  const x = block({ 0: 127, 1: -127, 2: 1, 3: 0.5, 4: 1.5, 5: -0.5, 6: 2.5, 7: -2.5, 8: 3.4, 9: -3.6 });
  const q = quantizeRows('q8_0', x, 1, QK);
  const qs = [127, -127, 1, 1, 2, -1, 3, -3, 3, -4, ...new Array<number>(22).fill(0)].map((v) => v & 0xff);
  assert.equal(hex(q), hex(bytes([0x00, 0x3c], qs)));
  // Round half to even on request: only the ties change.
  const e = quantizeRows('q8_0', x, 1, QK, { rounding: 'even' });
  const qe = [127, -127, 1, 0, 2, 0, 2, -2, 3, -4, ...new Array<number>(22).fill(0)].map((v) => v & 0xff);
  assert.equal(hex(e), hex(bytes([0x00, 0x3c], qe)));
});

test('q8_0: d = 31/127 rounds to f16 0x33d0 and q = round(j * 127 / 31)', () => {
  // 31/127 = 1.95276 * 2^-3: mantissa 0.95276 * 1024 = 975.6 -> 976 = 0x3d0, exponent 12 -> 0x33d0.
  const x = new Float32Array(QK);
  for (let j = 0; j < QK; j++) x[j] = j;
  x[0] = 31; // amax must be 31; put it first and keep j = 1..31
  const q = quantizeRows('q8_0', x, 1, QK);
  assert.equal(q[0], 0xd0);
  assert.equal(q[1], 0x33);
  for (let j = 1; j < QK; j++) assert.equal(q[2 + j], Math.round((j * 127) / 31), `element ${j}`);
  assert.equal(q[2], 127);
});

test('q4_0: exact bytes, low nibbles 0-15, high nibbles 16-31, d = max / -8', () => {
  // The first element of largest magnitude is -8, so d = 1 and q = trunc(x + 8.5) clamped to 15.
  const x = block({ 0: -8, 1: 7, 2: 0.5, 3: -0.5, 4: 1.5, 5: 2.5, 6: 3, 7: -3, 16: 8, 17: -7.9 });
  const q = quantizeRows('q4_0', x, 1, QK);
  const qs = [0xf0, 0x0f, 0x89, 0x88, 0x8a, 0x8b, 0x8b, 0x85, ...new Array<number>(8).fill(0x88)];
  assert.equal(hex(q), hex(bytes([0x00, 0x3c], qs)));
  const e = quantizeRows('q4_0', x, 1, QK, { rounding: 'even' });
  const qe = [0xf0, 0x0f, 0x88, 0x88, 0x8a, 0x8a, 0x8b, 0x85, ...new Array<number>(8).fill(0x88)];
  assert.equal(hex(e), hex(bytes([0x00, 0x3c], qe)));
  // Dequantized: (q - 8) * d; the clamped 8 comes back as 7.
  const out = new Float32Array(QK);
  dequantizeRow('q4_0', q, 0, QK, out);
  assert.deepEqual(Array.from(out.subarray(0, 8)), [-8, 7, 1, 0, 2, 3, 3, -3]);
  assert.equal(out[16], 7);
  assert.equal(out[17], -8);
});

test('q4_0: a positive extreme gives a negative scale (f16 0xb800 for -0.5)', () => {
  const x = block({ 0: 4, 1: -2, 20: 1 });
  const q = quantizeRows('q4_0', x, 1, QK);
  // id = -2: 4 -> trunc(-8 + 8.5) = 0; -2 -> trunc(4 + 8.5) = 12; 1 -> trunc(-2 + 8.5) = 6; 0 -> 8.
  const qs = new Array<number>(16).fill(0x88);
  qs[0] = 0x80;
  qs[1] = 0x8c;
  qs[4] = 0x68;
  assert.equal(hex(q), hex(bytes([0x00, 0xb8], qs)));
  assert.deepEqual(Array.from(dequantizeRows('q4_0', q, 1, QK).subarray(0, 2)), [4, -2]);
});

test('all-zero blocks quantize to d = 0 and dequantize to zeros', () => {
  const x = new Float32Array(QK);
  assert.equal(hex(quantizeRows('q8_0', x, 1, QK)), hex(new Uint8Array(34)));
  // q4_0: d = 0.0f / -8 is -0.0f in C, stored as f16 0x8000; every q is trunc(0 + 8.5) = 8.
  assert.equal(hex(quantizeRows('q4_0', x, 1, QK)), hex(bytes([0x00, 0x80], new Array<number>(16).fill(0x88))));
  for (const t of ['q8_0', 'q4_0', 'q4_1', 'q5_0', 'q5_1'] as GgmlQuantType[]) {
    assert.ok(dequantizeRows(t, quantizeRows(t, x, 1, QK), 1, QK).every((v) => v === 0), t);
  }
});

test('q4_1, q5_0, q5_1: exact bytes for exactly representable blocks', () => {
  const ramp16 = new Float32Array(QK).map((_, j) => (j % 16) - 3); // min -3, max 12: d = 1, m = -3
  const qs17 = Array.from({ length: 16 }, (_, j) => j * 17);
  // q4_1 with min -3, max 12: d = 15/15 = 1, m = -3 (f16 0xc200), q = x + 3.
  assert.equal(hex(quantizeRows('q4_1', ramp16, 1, QK)), hex(bytes([0x00, 0x3c, 0x00, 0xc2], qs17)));
  // q5_0 with x = j - 16: the extreme is -16 -> d = 1, q = j; qh has the fifth bit of j = 16..31.
  const ramp32 = new Float32Array(QK).map((_, j) => j - 16);
  assert.equal(hex(quantizeRows('q5_0', ramp32, 1, QK)), hex(bytes([0x00, 0x3c, 0x00, 0x00, 0xff, 0xff], qs17)));
  // q5_1 with x = j: d = 31/31 = 1, m = 0.
  const ramp = new Float32Array(QK).map((_, j) => j);
  assert.equal(hex(quantizeRows('q5_1', ramp, 1, QK)), hex(bytes([0x00, 0x3c, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff], qs17)));
  assert.deepEqual(Array.from(dequantizeRows('q5_0', quantizeRows('q5_0', ramp32, 1, QK), 1, QK)), Array.from(ramp32));
  assert.deepEqual(Array.from(dequantizeRows('q5_1', quantizeRows('q5_1', ramp, 1, QK), 1, QK)), Array.from(ramp));
  assert.deepEqual(Array.from(dequantizeRows('q4_1', quantizeRows('q4_1', ramp16, 1, QK), 1, QK)), Array.from(ramp16));
});

test('q8_0 and q4_0 agree with a float64 oracle away from ties', () => {
  const rows = 16;
  const cols = 256;
  const x = randn(rows * cols, 12345);
  const q8 = quantizeRows('q8_0', x, rows, cols);
  const q4 = quantizeRows('q4_0', x, rows, cols);
  let checked = 0;
  for (let b = 0; b < (rows * cols) / QK; b++) {
    const blk = x.subarray(b * QK, (b + 1) * QK);
    let amax = 0;
    let max = 0;
    for (const v of blk) {
      if (Math.abs(v) > amax) {
        amax = Math.abs(v);
        max = v;
      }
    }
    for (let j = 0; j < QK; j++) {
      const r8 = (blk[j]! * 127) / amax;
      if (Math.abs(Math.abs(r8 % 1) - 0.5) > 1e-4) {
        assert.equal((q8[b * 34 + 2 + j]! << 24) >> 24, Math.round(r8) + 0, `q8_0 block ${b} element ${j}`);
        checked++;
      }
      const r4 = (blk[j]! * -8) / max;
      if (Math.abs(Math.abs(r4 % 1) - 0.5) > 1e-4) {
        const want = Math.min(15, Math.max(0, Math.floor(r4 + 0.5) + 8));
        const byte = q4[b * 18 + 2 + (j % 16)]!;
        assert.equal(j < 16 ? byte & 15 : byte >>> 4, want, `q4_0 block ${b} element ${j}`);
      }
    }
  }
  assert.ok(checked > rows * cols * 0.99);
});

test('dequantization error bounds and llama.cpp test-quantize-fns RMSE threshold', () => {
  const cols = 4096;
  // llama.cpp tests/test-quantize-fns.cpp: data 0.1 + 2 cos(i), RMSE sqrt(sum d^2)/n < 0.002 for 4-5 bit types.
  const synth = new Float32Array(cols).map((_, i) => 0.1 + 2 * Math.cos(i));
  for (const t of ['q8_0', 'q4_0', 'q4_1', 'q5_0', 'q5_1'] as GgmlQuantType[]) {
    const back = dequantizeRows(t, quantizeRows(t, synth, 1, cols), 1, cols);
    let sum = 0;
    for (let i = 0; i < cols; i++) sum += (back[i]! - synth[i]!) ** 2;
    assert.ok(Math.sqrt(sum) / cols < 0.002, `${t} rmse ${Math.sqrt(sum) / cols}`);
  }
  // Per element: |error| <= d/2 plus the f16 rounding of d (relative 2^-11, times |q| <= 127 or 8).
  const x = randn(8 * cols, 777);
  const q8 = quantizeRows('q8_0', x, 8, cols);
  const q4 = quantizeRows('q4_0', x, 8, cols);
  const d8 = dequantizeRows('q8_0', q8, 8, cols);
  const d4 = dequantizeRows('q4_0', q4, 8, cols);
  for (let b = 0; b < x.length / QK; b++) {
    let amax = 0;
    let max = 0;
    for (let j = 0; j < QK; j++) {
      const v = x[b * QK + j]!;
      if (Math.abs(v) > amax) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const s8 = amax / 127;
    const s4 = Math.abs(max) / 8;
    for (let j = 0; j < QK; j++) {
      const i = b * QK + j;
      assert.ok(Math.abs(d8[i]! - x[i]!) <= s8 * (0.5 + 127 * 2 ** -11) + 1e-7, `q8_0 element ${i}`);
      // The one clamped case: the opposite extreme (+8 d) comes back as 7 d.
      const clamped = (x[i]! * -8) / max > 7.5;
      const bound = clamped ? s4 * (1 + 8 * 2 ** -11) : s4 * (0.5 + 8 * 2 ** -11);
      assert.ok(Math.abs(d4[i]! - x[i]!) <= bound + 1e-7, `q4_0 element ${i}`);
    }
  }
});

test('quantizeRows: rows are independent and laid out one after another', () => {
  const x = randn(3 * 64, 5);
  const all = quantizeRows('q4_0', x, 3, 64);
  for (let r = 0; r < 3; r++) {
    const one = quantizeRows('q4_0', x.subarray(r * 64, (r + 1) * 64), 1, 64);
    assert.deepEqual(all.subarray(r * 36, (r + 1) * 36), one);
  }
  assert.throws(() => quantizeRows('q8_0', new Float32Array(10), 1, 64), ChatGLMError);
  assert.throws(() => dequantizeRow('q8_0', new Uint8Array(10), 0, 32, new Float32Array(32)), ChatGLMError);
});

test('all five formats are byte-identical to a C transcription of ggml reference quantizers', () => {
  const raw = Buffer.from(GOLDEN_INPUT_F32, 'base64');
  const x = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
  for (const t of ['q8_0', 'q4_0', 'q4_1', 'q5_0', 'q5_1'] as GgmlQuantType[]) {
    const want = new Uint8Array(Buffer.from(GOLDEN_QUANTS[t]!, 'base64'));
    assert.equal(hex(quantizeRows(t, x, x.length / QK, QK)), hex(want), t);
    // Whole rows of 4 blocks give the same bytes as single blocks.
    assert.equal(hex(quantizeRows(t, x, x.length / 128, 128)), hex(want), `${t} rows of 128`);
  }
});

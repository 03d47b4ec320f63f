// Reference backend ops against independent references: chatglm.cpp's golden linear/RMSNorm data,
// hand-computed RoPE rotations, a naive full-softmax attention, and dequantized matrices.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ReferenceBackend } from '../src/backend/reference/index.js';
import { dequantizeRows, quantizeRows } from '../src/numeric/ggml-quants.js';
import { f32ToBf16Bytes, f32ToF16Bytes, roundToBf16, roundToF16 } from '../src/numeric/half.js';
import { ChatGLMError } from '../src/errors.js';
import { goldenDir, haveGolden, rng, uniform } from './support/model-fixtures.js';

const SKIP = '../shared/golden/chatglm.cpp is not present';

function f32s(buf: Buffer, offFloats: number, n: number): Float32Array {
  return Float32Array.from({ length: n }, (_, i) => buf.readFloatLE(4 * (offFloats + i)));
}
function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}
const bytesOf = (v: Float32Array) => new Uint8Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength));

test('linear.data: matmul with bias, matrix and vector inputs, within 1e-5', (t) => {
  if (!haveGolden('linear.data')) return t.skip(SKIP);
  const buf = readFileSync(path.join(goldenDir, 'linear.data'));
  assert.equal(buf.length, (32 * 64 + 32 + 2 * 64 + 2 * 32 + 64 + 32) * 4);
  let o = 0;
  const take = (n: number) => {
    const v = f32s(buf, o, n);
    o += n;
    return v;
  };
  const w = take(32 * 64), b = take(32), x = take(2 * 64), y = take(2 * 32), vx = take(64), vy = take(32);
  const be = new ReferenceBackend();
  const m = be.loadMatrix('f32', 32, 64, bytesOf(w));
  const out = new Float32Array(64);
  be.matmul(m, x, 2, out, b);
  assert.ok(maxDiff(out, y) <= 1e-5, `matrix: ${maxDiff(out, y)}`);
  const vout = new Float32Array(32);
  be.matmul(m, vx, 1, vout, b);
  assert.ok(maxDiff(vout, vy) <= 1e-5, `vector: ${maxDiff(vout, vy)}`);
});

test('rms_norm.data: RMSNorm (eps 1e-5) within 1e-5, also in place', (t) => {
  if (!haveGolden('rms_norm.data')) return t.skip(SKIP);
  const buf = readFileSync(path.join(goldenDir, 'rms_norm.data'));
  assert.equal(buf.length, (64 + 3 * 64 + 3 * 64) * 4);
  const w = f32s(buf, 0, 64), x = f32s(buf, 64, 192), y = f32s(buf, 256, 192);
  const be = new ReferenceBackend();
  const out = new Float32Array(192);
  be.rmsnorm(x, w, 3, 64, 1e-5, out);
  assert.ok(maxDiff(out, y) <= 1e-5, `${maxDiff(out, y)}`);
  be.rmsnorm(x, w, 3, 64, 1e-5, x);
  assert.ok(maxDiff(x, y) <= 1e-5);
});

test('RoPE: adjacent pairs of the first rotaryDim channels, θ_i = base^(-2i/rotaryDim), rest untouched', () => {
  const be = new ReferenceBackend();
  const headDim = 8, rotaryDim = 4, base = 10000 * 500;
  // two tokens (positions 3 and 10), two heads
  const x = Float32Array.from({ length: 2 * 2 * headDim }, (_, i) => (i % headDim) + 1 + 0.25 * Math.floor(i / headDim));
  const orig = x.slice();
  be.rope(x, 2, 2, headDim, rotaryDim, Float32Array.of(3, 10), base);
  for (const [t, pos] of [[0, 3], [1, 10]] as const) {
    for (let h = 0; h < 2; h++) {
      const o = (t * 2 + h) * headDim;
      const e = orig.subarray(o, o + headDim);
      // pair 0: θ = 1; pair 1: θ = base^(-1/2), written out by hand
      const a0 = pos * 1;
      const a1 = pos / Math.sqrt(base);
      const want = [
        e[0]! * Math.cos(a0) - e[1]! * Math.sin(a0),
        e[1]! * Math.cos(a0) + e[0]! * Math.sin(a0),
        e[2]! * Math.cos(a1) - e[3]! * Math.sin(a1),
        e[3]! * Math.cos(a1) + e[2]! * Math.sin(a1),
        e[4]!, e[5]!, e[6]!, e[7]!,
      ];
      assert.ok(maxDiff(x.subarray(o, o + headDim), want) <= 1e-6, `token ${t} head ${h}`);
    }
  }
  // position 0 is the identity
  const y = orig.slice(0, headDim);
  be.rope(y, 1, 1, headDim, rotaryDim, Float32Array.of(0), base);
  assert.deepEqual(Array.from(y), Array.from(orig.slice(0, headDim)));
});

test('SwiGLU: silu(first half) * second half', () => {
  const be = new ReferenceBackend();
  const x = Float32Array.of(1, -2, 0.5, 3, 4, -1); // one row, half = 3
  const out = new Float32Array(3);
  be.swiglu(x, 1, 3, out);
  const silu = (g: number) => g / (1 + Math.exp(-g));
  assert.ok(maxDiff(out, [silu(1) * 3, silu(-2) * 4, silu(0.5) * -1]) <= 1e-6);
});

/** Naive causal attention with full softmax rows, in float64. */
function naiveAttention(q: Float32Array, k: Float32Array, v: Float32Array, n: number, nh: number, ng: number, d: number): Float64Array {
  const out = new Float64Array(n * nh * d);
  for (let t = 0; t < n; t++) {
    for (let h = 0; h < nh; h++) {
      const g = Math.floor(h / (nh / ng));
      const s: number[] = [];
      for (let j = 0; j <= t; j++) {
        let dot = 0;
        for (let i = 0; i < d; i++) dot += q[(t * nh + h) * d + i]! * k[(j * ng + g) * d + i]!;
        s.push(dot / Math.sqrt(d));
      }
      const mx = Math.max(...s);
      const e = s.map((x) => Math.exp(x - mx));
      const sum = e.reduce((a, b) => a + b, 0);
      for (let j = 0; j <= t; j++) for (let i = 0; i < d; i++) out[(t * nh + h) * d + i] += (e[j]! / sum) * v[(j * ng + g) * d + i]!;
    }
  }
  return out;
}

test('tiled online-softmax attention equals naive attention, in one call or split across calls', () => {
  const be = new ReferenceBackend();
  const n = 150, nh = 4, ng = 2, d = 8; // 150 keys span three 64-key tiles
  const r = rng(7);
  const q = uniform(n * nh * d, r, -2, 2), k = uniform(n * ng * d, r, -2, 2), v = uniform(n * ng * d, r, -1, 1);
  const want = naiveAttention(q, k, v, n, nh, ng, d);
  const params = { layer: 0, nHeads: nh, nGroups: ng, headDim: d, scale: 1 / Math.sqrt(d) };

  const cache = be.createKVCache(1, ng, d, n);
  const out = new Float32Array(n * nh * d);
  be.attention(q, k, v, out, [{ cache, rowStart: 0, nTokens: n, startPos: 0 }], params);
  assert.ok(maxDiff(out, want) <= 1e-6, `one call: ${maxDiff(out, want)}`);

  // 100 tokens, then 49, then 1 (decode), each call appending to the same cache
  const cache2 = be.createKVCache(1, ng, d, n);
  const out2 = new Float32Array(n * nh * d);
  for (const [s, e] of [[0, 100], [100, 149], [149, 150]] as const) {
    const part = (a: Float32Array, w: number) => a.subarray(s * w, e * w);
    be.attention(part(q, nh * d), part(k, ng * d), part(v, ng * d), part(out2, nh * d), [{ cache: cache2, rowStart: 0, nTokens: e - s, startPos: s }], params);
    cache2.length = e;
  }
  assert.ok(maxDiff(out2, want) <= 1e-6, `split: ${maxDiff(out2, want)}`);
});

test('attention past the cache capacity is a CONTEXT_OVERFLOW ChatGLMError', () => {
  const be = new ReferenceBackend();
  const cache = be.createKVCache(1, 1, 4, 2);
  const z = new Float32Array(3 * 4);
  assert.throws(
    () => be.attention(z, z, z, new Float32Array(12), [{ cache, rowStart: 0, nTokens: 3, startPos: 0 }], { layer: 0, nHeads: 1, nGroups: 1, headDim: 4, scale: 0.5 }),
    (e: unknown) => e instanceof ChatGLMError && e.code === 'CONTEXT_OVERFLOW',
  );
});

test('matmul over f16, bf16, q8_0 and q4_0 matrices equals f32 matmul over their decoded values', () => {
  const be = new ReferenceBackend();
  const rows = 5, cols = 64, n = 3;
  const r = rng(9);
  const w = uniform(rows * cols, r, -1, 1);
  const x = uniform(n * cols, r, -1, 1);
  const bias = uniform(rows, r);
  const ref = (decoded: Float32Array) => {
    const out = new Float64Array(n * rows);
    for (let i = 0; i < n; i++) for (let o = 0; o < rows; o++) {
      let s = bias[o]!;
      for (let c = 0; c < cols; c++) s += x[i * cols + c]! * decoded[o * cols + c]!;
      out[i * rows + o] = s;
    }
    return out;
  };
  const check = (m: ReturnType<ReferenceBackend['loadMatrix']>, decoded: Float32Array, what: string) => {
    const out = new Float32Array(n * rows);
    be.matmul(m, x, n, out, bias);
    assert.ok(maxDiff(out, ref(decoded)) <= 1e-5, what);
  };
  check(be.loadMatrix('f16', rows, cols, f32ToF16Bytes(w)), Float32Array.from(w, (v) => roundToF16(v)), 'f16');
  check(be.loadMatrix('bf16', rows, cols, f32ToBf16Bytes(w)), Float32Array.from(w, (v) => roundToBf16(v)), 'bf16');
  for (const type of ['q8_0', 'q4_0'] as const) {
    const q = quantizeRows(type, w, rows, cols);
    check(be.loadMatrix(type, rows, cols, q), dequantizeRows(type, q, rows, cols), type);
  }
  // embedding rows decode the same way
  const emb = new Float32Array(2 * cols);
  be.embedding(be.loadMatrix('bf16', rows, cols, f32ToBf16Bytes(w)), [4, 0], emb);
  assert.ok(maxDiff(emb.subarray(0, cols), Float32Array.from(w.subarray(4 * cols, 5 * cols), (v) => roundToBf16(v))) === 0);
});

test('loadMatrix rejects a byte length that does not match the shape', () => {
  const be = new ReferenceBackend();
  assert.throws(() => be.loadMatrix('f16', 2, 4, new Uint8Array(15)), ChatGLMError);
});

test('matrices whose bytes start at an odd offset decode the same as aligned ones', () => {
  const be = new ReferenceBackend();
  const rows = 3, cols = 8;
  const w = uniform(rows * cols, rng(12), -1, 1);
  const x = uniform(cols, rng(13), -1, 1);
  for (const [type, bytes] of [['f32', bytesOf(w)], ['f16', f32ToF16Bytes(w)], ['bf16', f32ToBf16Bytes(w)]] as const) {
    const shifted = new Uint8Array(bytes.length + 1);
    shifted.set(bytes, 1);
    const a = new Float32Array(rows), b = new Float32Array(rows);
    be.matmul(be.loadMatrix(type, rows, cols, bytes), x, 1, a);
    be.matmul(be.loadMatrix(type, rows, cols, shifted.subarray(1)), x, 1, b);
    assert.deepEqual(Array.from(b), Array.from(a), type);
  }
});

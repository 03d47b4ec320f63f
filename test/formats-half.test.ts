import { test } from 'node:test';
import assert from 'node:assert/strict';
import { f16BitsToF32, f32ToF16Bits, bf16BitsToF32, f32ToBf16Bits, f16ToF32Array, bf16ToF32Array, f32ToF16Bytes, f32ToBf16Bytes } from '../src/numeric/half.js';
import { tensorToF32 } from '../src/formats/tensor-f32.js';

/** f32 value with the given bit pattern (hand-written test inputs). */
function fromBits(bits: number): number {
  return new Float32Array(new Uint32Array([bits >>> 0]).buffer)[0]!;
}

test('f32 -> f16: hand-computed bit patterns, ties to even, overflow, subnormals', () => {
  const cases: [number, number][] = [
    [0, 0x0000],
    [-0, 0x8000],
    [1, 0x3c00],
    [-2, 0xc000],
    [0.5, 0x3800],
    [65504, 0x7bff], // largest f16
    [65519, 0x7bff], // below the midpoint to infinity
    [65520, 0x7c00], // exact midpoint 65504..65536: ties to even -> infinity
    [1e6, 0x7c00],
    [-1e6, 0xfc00],
    [Infinity, 0x7c00],
    [-Infinity, 0xfc00],
    [2 ** -14, 0x0400], // smallest normal
    [2 ** -24, 0x0001], // smallest subnormal
    [2 ** -25, 0x0000], // half of it: tie -> even (0)
    [1.5 * 2 ** -25, 0x0001],
    [3 * 2 ** -25, 0x0002], // 1.5 units: tie -> even (2)
    [5 * 2 ** -25, 0x0002], // 2.5 units: tie -> even (2)
    [1023 * 2 ** -24, 0x03ff], // largest subnormal
    [2 ** -26, 0x0000],
    [1 + 2 ** -11, 0x3c00], // midpoint of 1 and 1+2^-10: even is 1
    [1 + 3 * 2 ** -11, 0x3c02], // midpoint of 0x3c01 and 0x3c02: even is 0x3c02
    [1 + 2 ** -11 + 2 ** -20, 0x3c01], // just above the midpoint
    [fromBits(0x3dcccccd) /* 0.1f */, 0x2e66],
    [fromBits(0x3eaaaaab) /* 1/3 f */, 0x3555],
    [-1.0009765625 * 2 ** -14 + 0, 0x8401],
  ];
  for (const [x, bits] of cases) {
    assert.equal(f32ToF16Bits(x).toString(16), bits.toString(16), `f32ToF16Bits(${x})`);
  }
  const nan = f32ToF16Bits(NaN);
  assert.equal(nan & 0x7c00, 0x7c00);
  assert.notEqual(nan & 0x3ff, 0);
  // A NaN whose payload is only in the 13 low bits must not turn into infinity.
  const lowNan = f32ToF16Bits(fromBits(0x7f800001));
  assert.ok(Number.isNaN(f16BitsToF32(lowNan)));
});

test('f16 -> f32: hand-computed values', () => {
  assert.equal(f16BitsToF32(0x3c00), 1);
  assert.equal(f16BitsToF32(0xc000), -2);
  assert.equal(f16BitsToF32(0x7bff), 65504);
  assert.equal(f16BitsToF32(0x0001), 2 ** -24);
  assert.equal(f16BitsToF32(0x03ff), 1023 * 2 ** -24);
  assert.equal(f16BitsToF32(0x0400), 2 ** -14);
  assert.equal(f16BitsToF32(0x3555), 0.333251953125);
  assert.equal(f16BitsToF32(0x7c00), Infinity);
  assert.equal(f16BitsToF32(0xfc00), -Infinity);
  assert.ok(Number.isNaN(f16BitsToF32(0x7e00)));
  assert.ok(Object.is(f16BitsToF32(0x8000), -0));
});

test('f32 -> f16 agrees with a nearest-value search over all f16 values (independent oracle)', () => {
  // Oracle: every finite non-negative f16 value in order, nearest by float64 distance, ties to the
  // even bit pattern, overflow past the 65504/65536 midpoint to infinity.
  const vals: number[] = [];
  for (let h = 0; h < 0x7c00; h++) vals.push((h >> 10 === 0 ? (h & 0x3ff) * 2 ** -24 : (1 + (h & 0x3ff) / 1024) * 2 ** ((h >> 10) - 15)));
  function oracle(x: number): number {
    const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
    const a = Math.abs(x);
    if (a >= 65520) return sign | 0x7c00;
    let lo = 0;
    let hi = vals.length - 1;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (vals[mid]! <= a) lo = mid;
      else hi = mid;
    }
    const dl = a - vals[lo]!;
    const dh = vals[hi]! - a;
    const pick = dl < dh ? lo : dh < dl ? hi : lo % 2 === 0 ? lo : hi;
    return sign | pick;
  }
  let seed = 12345;
  const rand = (): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed / 2 ** 32;
  };
  const xs = new Float32Array(20000);
  for (let i = 0; i < xs.length; i++) {
    // Log-uniform magnitudes from 2^-28 to 2^17 covers zero-flush, subnormals, normals and overflow.
    xs[i] = (rand() < 0.5 ? -1 : 1) * 2 ** (rand() * 45 - 28);
  }
  // Exact f16 values and midpoints between neighbours are where rounding bugs live.
  for (let i = 0; i < 2000; i++) {
    const h = Math.floor(rand() * 0x7bff);
    xs[i] = (vals[h]! + vals[h + 1]!) / 2;
    xs[2000 + i] = vals[h]!;
  }
  const bulk = new Uint16Array(f32ToF16Bytes(xs).buffer);
  for (let i = 0; i < xs.length; i++) {
    const want = oracle(xs[i]!);
    assert.equal(f32ToF16Bits(xs[i]!), want, `x=${xs[i]}`);
    assert.equal(bulk[i], want, `bulk x=${xs[i]}`);
  }
});

test('every f16 bit pattern survives f16 -> f32 -> f16', () => {
  const all = new Uint16Array(65536);
  for (let h = 0; h < 65536; h++) all[h] = h;
  const f = f16ToF32Array(new Uint8Array(all.buffer));
  const back = new Uint16Array(f32ToF16Bytes(f).buffer);
  for (let h = 0; h < 65536; h++) {
    if ((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0) assert.ok(Number.isNaN(f[h]!));
    else assert.equal(back[h], h);
  }
});

test('f32 -> bf16: hand-computed bit patterns', () => {
  const cases: [number, number][] = [
    [1, 0x3f80],
    [-1, 0xbf80],
    [0, 0],
    [-0, 0x8000],
    [fromBits(0x3dcccccd) /* 0.1f */, 0x3dcd],
    [fromBits(0x3f808000), 0x3f80], // tie -> even
    [fromBits(0x3f818000), 0x3f82], // tie -> even (up)
    [fromBits(0x3f808001), 0x3f81], // just above the tie
    [fromBits(0x7f7fffff) /* max f32 */, 0x7f80], // rounds up into infinity, like torch
    [Infinity, 0x7f80],
    [-Infinity, 0xff80],
    [fromBits(0x00000001), 0x0000],
    [fromBits(0x00018000), 0x0002], // subnormal tie -> even
    [3.140625, 0x4049],
  ];
  for (const [x, bits] of cases) assert.equal(f32ToBf16Bits(x).toString(16), bits.toString(16), `f32ToBf16Bits(${x})`);
  assert.equal(f32ToBf16Bits(fromBits(0x7f800001)) & 0x7fc0, 0x7fc0); // NaN stays (quiet) NaN
  assert.equal(bf16BitsToF32(0x3f80), 1);
  assert.equal(bf16BitsToF32(0x4049), 3.140625);
  assert.equal(bf16BitsToF32(0xff80), -Infinity);
});

test('bulk bf16 and tensorToF32 for F32/F16/BF16, including unaligned input', () => {
  const xs = new Float32Array([1, -2.5, 0.1, 65504, 3.140625]);
  const b = f32ToBf16Bytes(xs);
  assert.deepEqual([...b], [0x80, 0x3f, 0x20, 0xc0, 0xcd, 0x3d, 0x80, 0x47, 0x49, 0x40]);
  assert.deepEqual([...bf16ToF32Array(b)], [1, -2.5, fromBits(0x3dcd0000), 65536, 3.140625]);
  const h = f32ToF16Bytes(xs);
  assert.deepEqual([...h.subarray(0, 6)], [0x00, 0x3c, 0x00, 0xc1, 0x66, 0x2e]);
  // Unaligned views (a tensor inside a bigger buffer) must decode the same.
  const padded = new Uint8Array(h.length + 1);
  padded.set(h, 1);
  const un = padded.subarray(1);
  assert.deepEqual([...tensorToF32({ info: { name: 'x', dtype: 'F16', shape: [5] }, data: un })], [1, -2.5, 0.0999755859375, 65504, 3.140625]);
  const f32 = new Uint8Array(xs.buffer.slice(0));
  assert.deepEqual([...tensorToF32({ info: { name: 'x', dtype: 'F32', shape: [5] }, data: f32 })], [...xs]);
  assert.deepEqual([...tensorToF32({ info: { name: 'x', dtype: 'BF16', shape: [5] }, data: b })], [...bf16ToF32Array(b)]);
  assert.throws(() => tensorToF32({ info: { name: 'q', dtype: 'Q8_0', shape: [32] }, data: new Uint8Array(34) }), /Q8_0/);
});

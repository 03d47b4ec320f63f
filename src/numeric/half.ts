/**
 * IEEE half (f16) and bfloat16 <-> f32 conversion, scalar and bulk.
 *
 * f32 -> f16/bf16 rounds to nearest, ties to even (what PyTorch's `.half()` / `.bfloat16()` and
 * numpy do), so a checkpoint written by us is bit-identical to one written by torch. NaN stays NaN
 * (quiet), infinities stay infinite, values too large overflow to infinity, and tiny values become
 * f16 subnormals (bf16 has f32's exponent range, so it only rounds the mantissa).
 *
 * Bulk functions read/write little-endian bytes, the layout of every checkpoint format we read.
 */
import { ChatGLMError } from '../errors.js';

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

// Typed arrays use the platform byte order; every platform Node 20 supports is little-endian, but
// check once so a big-endian host fails loudly instead of producing garbage weights.
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
export function requireLittleEndian(): void {
  if (!LITTLE_ENDIAN) throw new ChatGLMError('UNSUPPORTED', 'big-endian hosts are not supported');
}

/** f16 bit pattern -> f32 value (exact: every f16 is representable as f32). */
export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24; // zero or subnormal
  if (exp === 31) return mant === 0 ? sign * Infinity : NaN;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** f32 bit pattern (as an unsigned 32-bit number) -> f16 bit pattern, round to nearest even. */
function f32BitsToF16Bits(bits: number): number {
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) {
    // Keep NaN a NaN even when its payload lives only in the low bits that are dropped.
    return mant === 0 ? sign | 0x7c00 : sign | 0x7e00 | (mant >>> 13);
  }
  const e = exp - 127 + 15; // f16 biased exponent
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    // Subnormal f16 (or zero). Values below 2^-25 round to zero; 2^-25 itself is a tie to even (0).
    if (e < -10) return sign;
    const m = mant | 0x800000; // restore the implicit leading 1
    const shift = 14 - e; // 14..24
    let r = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (r & 1) === 1)) r++;
    return sign | r; // r may carry into 0x400, which is exactly the smallest normal
  }
  let r = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (r & 1) === 1)) r++; // a carry may reach 0x7c00 = inf: correct
  return sign | r;
}

/** f32 value -> f16 bit pattern, round to nearest even. */
export function f32ToF16Bits(x: number): number {
  f32Scratch[0] = x;
  return f32BitsToF16Bits(u32Scratch[0]!);
}

/** bf16 bit pattern -> f32 value (exact). */
export function bf16BitsToF32(b: number): number {
  u32Scratch[0] = (b & 0xffff) << 16;
  return f32Scratch[0]!;
}

function f32BitsToBf16Bits(bits: number): number {
  if ((bits & 0x7f800000) === 0x7f800000 && (bits & 0x7fffff) !== 0) {
    return ((bits >>> 16) | 0x40) & 0xffff; // quiet NaN, never rounded into infinity
  }
  // Round to nearest even on the 16 dropped bits; a carry into the exponent is the correct result.
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

/** f32 value -> bf16 bit pattern, round to nearest even. */
export function f32ToBf16Bits(x: number): number {
  f32Scratch[0] = x;
  return f32BitsToBf16Bits(u32Scratch[0]!);
}

/** Rounds an f32 value to the nearest f16 and back, for tests and oracles. */
export function roundToF16(x: number): number {
  return f16BitsToF32(f32ToF16Bits(x));
}

/** Rounds an f32 value to the nearest bf16 and back. */
export function roundToBf16(x: number): number {
  return bf16BitsToF32(f32ToBf16Bits(x));
}

let f16Table: Float32Array | undefined;
/** All 65536 f16 values as f32: a 256 KiB table makes bulk decoding a single lookup per element. */
function f16ToF32Table(): Float32Array {
  if (f16Table === undefined) {
    f16Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16BitsToF32(h);
  }
  return f16Table;
}

/** Views little-endian bytes as u16 elements, copying only when the bytes are not 2-aligned. */
export function asU16(bytes: Uint8Array, what: string): Uint16Array {
  requireLittleEndian();
  if (bytes.byteLength % 2 !== 0) {
    throw new ChatGLMError('BAD_FORMAT', `${what}: ${bytes.byteLength} bytes is not a whole number of 2-byte values`);
  }
  if (bytes.byteOffset % 2 === 0) return new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2);
  return new Uint16Array(bytes.slice().buffer);
}

/** f16 bit patterns -> f32 values in out[0..src.length). */
export function f16BitsToF32Into(src: Uint16Array, out: Float32Array): void {
  const table = f16ToF32Table();
  for (let i = 0; i < src.length; i++) out[i] = table[src[i]!]!;
}

/** bf16 bit patterns -> f32 values in out[0..src.length): bf16 is the top half of an f32. */
export function bf16BitsToF32Into(src: Uint16Array, out: Float32Array): void {
  const outBits = new Uint32Array(out.buffer, out.byteOffset, src.length);
  for (let i = 0; i < src.length; i++) outBits[i] = src[i]! << 16;
}

/** Little-endian f16 bytes -> new Float32Array. */
export function f16ToF32Array(bytes: Uint8Array): Float32Array {
  const src = asU16(bytes, 'f16 data');
  const out = new Float32Array(src.length);
  f16BitsToF32Into(src, out);
  return out;
}

/** Little-endian bf16 bytes -> new Float32Array. */
export function bf16ToF32Array(bytes: Uint8Array): Float32Array {
  const src = asU16(bytes, 'bf16 data');
  const out = new Float32Array(src.length);
  bf16BitsToF32Into(src, out);
  return out;
}

/** Float32Array -> little-endian f16 bytes (round to nearest even). */
export function f32ToF16Bytes(values: Float32Array): Uint8Array {
  requireLittleEndian();
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = f32BitsToF16Bits(bits[i]!);
  return new Uint8Array(out.buffer);
}

/** Float32Array -> little-endian bf16 bytes (round to nearest even). */
export function f32ToBf16Bytes(values: Float32Array): Uint8Array {
  requireLittleEndian();
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = f32BitsToBf16Bits(bits[i]!);
  return new Uint8Array(out.buffer);
}

/** Float32Array -> its little-endian bytes (a view, no copy). */
export function f32Bytes(values: Float32Array): Uint8Array {
  requireLittleEndian();
  return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
}

/**
 * ggml block quantization formats, bit-compatible with llama.cpp's ggml-quants.c reference code
 * (`quantize_row_*_ref` / `dequantize_row_*`), so our files match llama-quantize's byte for byte and
 * llama.cpp reads ours.
 *
 * Every format cuts a row into blocks of QK = 32 consecutive elements:
 *   q8_0: f16 d, 32 x int8 q                         value = q * d          (34 bytes)
 *   q4_0: f16 d, 16 bytes of nibbles                 value = (q - 8) * d    (18 bytes)
 *   q4_1: f16 d, f16 m, 16 bytes of nibbles          value = q * d + m      (20 bytes)
 *   q5_0: f16 d, u32 high bits, 16 bytes of nibbles  value = (q - 16) * d   (22 bytes)
 *   q5_1: f16 d, f16 m, u32 high bits, 16 bytes      value = q * d + m      (24 bytes)
 * In the nibble formats byte j holds element j in its low nibble and element j + 16 in its high one;
 * in q5 bit j of the u32 is the fifth bit of element j.
 *
 * Rounding. ggml computes in f32 and rounds q8_0 with `roundf` (ties away from zero) and the
 * nibble formats by truncating `x * id + 8.5f` (or `+ 0.5f`), i.e. ties upward, after an f32 add
 * that can itself round. The default mode, 'ggml', reproduces that arithmetic exactly (every f32
 * step through Math.fround), ties included, because bit-identity with llama.cpp's own quantizer is
 * the property that can be checked and that keeps files interchangeable. DESIGN.md asks for round
 * half to even; `{ rounding: 'even' }` gives that: each scaled value x * id (an f32) goes to the
 * nearest integer, ties to even, with no intermediate f32 add. The two modes differ only at exact
 * ties and at values within half an f32 ulp of one (rare with real weights); the scales (d, m) are
 * identical in both.
 */
import { ChatGLMError } from '../errors.js';
import { f16BitsToF32, f32ToF16Bits } from './half.js';

export const QK = 32;

export type GgmlQuantType = 'q8_0' | 'q4_0' | 'q4_1' | 'q5_0' | 'q5_1';
export const GGML_QUANT_TYPES: readonly GgmlQuantType[] = ['q8_0', 'q4_0', 'q4_1', 'q5_0', 'q5_1'];

export interface QuantizeOptions {
  /** 'ggml' (default): exactly ggml's reference arithmetic. 'even': round half to even. */
  rounding?: 'ggml' | 'even';
}

/** Bytes of one block of QK elements. */
export const BLOCK_BYTES: Readonly<Record<GgmlQuantType, number>> = {
  q8_0: 34,
  q4_0: 18,
  q4_1: 20,
  q5_0: 22,
  q5_1: 24,
};

export function isGgmlQuantType(s: string): s is GgmlQuantType {
  return (GGML_QUANT_TYPES as readonly string[]).includes(s);
}

function checkCols(type: GgmlQuantType, cols: number): void {
  if (!Number.isSafeInteger(cols) || cols <= 0 || cols % QK !== 0) {
    throw new ChatGLMError(
      'BAD_ARGUMENT',
      `${type}: a row of ${cols} elements cannot be quantized; rows must be a positive multiple of ${QK}`,
    );
  }
}

/** Bytes one row of `cols` elements takes in `type` (cols must be a multiple of QK). */
export function bytesPerRow(type: GgmlQuantType, cols: number): number {
  checkCols(type, cols);
  return (cols / QK) * BLOCK_BYTES[type];
}

const fr = Math.fround;

/** Nearest integer, ties to even (x is finite). */
function roundHalfEven(x: number): number {
  const r = Math.round(x); // ties toward +inf
  return r - x === 0.5 && (r & 1) !== 0 ? r - 1 : r;
}

function writeF16(out: Uint8Array, at: number, x: number): void {
  const h = f32ToF16Bits(x);
  out[at] = h & 0xff;
  out[at + 1] = h >>> 8;
}

function readF16(b: Uint8Array, at: number): number {
  return f16BitsToF32(b[at]! | (b[at + 1]! << 8));
}

function quantizeBlocksQ8_0(x: Float32Array, xo: number, nb: number, out: Uint8Array, o: number, even: boolean): void {
  // Plain loops with locals and a signed view for the stores: this runs over every weight of a model.
  const q8 = new Int8Array(out.buffer, out.byteOffset, out.byteLength);
  for (let b = 0; b < nb; b++, xo += QK, o += 34) {
    let amax = 0;
    for (let j = 0; j < QK; j++) {
      const a = Math.abs(x[xo + j]!);
      if (a > amax) amax = a;
    }
    const d = fr(amax / 127);
    const id = d !== 0 ? fr(1 / d) : 0;
    writeF16(out, o, d);
    const qo = o + 2;
    if (even) {
      for (let j = 0; j < QK; j++) q8[qo + j] = roundHalfEven(fr(x[xo + j]! * id));
    } else {
      for (let j = 0; j < QK; j++) {
        const v = fr(x[xo + j]! * id);
        // roundf: ties away from zero. |v| <= 127 by construction (up to an ulp roundf absorbs).
        q8[qo + j] = v < 0 ? -Math.round(-v) : Math.round(v);
      }
    }
  }
}

/** Symmetric nibble/5-bit formats: d = (element of largest magnitude) / -half, q = round(x/d) + half. */
function quantizeBlockSym(
  x: Float32Array,
  xo: number,
  out: Uint8Array,
  o: number,
  bits: 4 | 5,
  even: boolean,
): void {
  const half = bits === 4 ? 8 : 16;
  const qmax = bits === 4 ? 15 : 31;
  let amax = 0;
  let max = 0;
  for (let j = 0; j < QK; j++) {
    const v = x[xo + j]!;
    // Strict `<` like ggml: the first element of largest magnitude wins, keeping its sign.
    if (amax < Math.abs(v)) {
      amax = Math.abs(v);
      max = v;
    }
  }
  const d = fr(max / -half);
  const id = d !== 0 ? fr(1 / d) : 0;
  writeF16(out, o, d);
  const qsAt = o + (bits === 4 ? 2 : 6);
  if (bits === 4 && !even) {
    // q4_0 as ggml does it: MIN(15, (int8_t)(x * id + 8.5f)); the sum is >= 0 up to an ulp, so
    // truncation is `| 0` and only the upper clamp can bite.
    for (let j = 0; j < QK / 2; j++) {
      const a = Math.trunc(fr(fr(x[xo + j]! * id) + 8.5));
      const b = Math.trunc(fr(fr(x[xo + j + QK / 2]! * id) + 8.5));
      out[qsAt + j] = (a > 15 ? 15 : a < 0 ? 0 : a) | ((b > 15 ? 15 : b < 0 ? 0 : b) << 4);
    }
    return;
  }
  let qh = 0;
  const bias = fr(half + 0.5);
  for (let j = 0; j < QK / 2; j++) {
    const q0 = quantSym(fr(x[xo + j]! * id), half, bias, qmax, even);
    const q1 = quantSym(fr(x[xo + j + QK / 2]! * id), half, bias, qmax, even);
    out[qsAt + j] = (q0 & 0x0f) | ((q1 & 0x0f) << 4);
    if (bits === 5) {
      qh |= ((q0 >>> 4) & 1) << j;
      qh |= ((q1 >>> 4) & 1) << (j + QK / 2);
    }
  }
  if (bits === 5) writeU32(out, o + 2, qh);
}

function quantSym(v: number, half: number, bias: number, qmax: number, even: boolean): number {
  // ggml: MIN(qmax, (int8_t)(v + half + 0.5f)); v >= -half (up to an ulp), so truncation is floor
  // except in (-1, 0) where both give 0.
  const q = even ? roundHalfEven(v) + half : Math.trunc(fr(v + bias));
  return Math.max(0, Math.min(qmax, q));
}

/** Asymmetric formats: d = (max - min) / qmax, m = min, q = round((x - min) / d). */
function quantizeBlockAsym(
  x: Float32Array,
  xo: number,
  out: Uint8Array,
  o: number,
  bits: 4 | 5,
  even: boolean,
): void {
  const qmax = bits === 4 ? 15 : 31;
  let min = Infinity;
  let max = -Infinity;
  for (let j = 0; j < QK; j++) {
    const v = x[xo + j]!;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  const d = fr(fr(max - min) / qmax);
  const id = d !== 0 ? fr(1 / d) : 0;
  writeF16(out, o, d);
  writeF16(out, o + 2, min);
  const qsAt = o + (bits === 4 ? 4 : 8);
  let qh = 0;
  for (let j = 0; j < QK / 2; j++) {
    const q0 = quantAsym(fr(fr(x[xo + j]! - min) * id), qmax, bits, even);
    const q1 = quantAsym(fr(fr(x[xo + j + QK / 2]! - min) * id), qmax, bits, even);
    out[qsAt + j] = (q0 & 0x0f) | ((q1 & 0x0f) << 4);
    if (bits === 5) {
      qh |= ((q0 >>> 4) & 1) << j;
      qh |= ((q1 >>> 4) & 1) << (j + QK / 2);
    }
  }
  if (bits === 5) writeU32(out, o + 4, qh);
}

function quantAsym(v: number, qmax: number, bits: 4 | 5, even: boolean): number {
  // ggml q4_1: MIN(15, (int8_t)(v + 0.5f)); q5_1: (uint8_t)(v + 0.5f) with no clamp (v <= 31 + ulp).
  const q = even ? roundHalfEven(v) : Math.trunc(fr(v + 0.5));
  return bits === 4 ? Math.min(qmax, q) : Math.min(qmax, Math.max(0, q));
}

function writeU32(out: Uint8Array, at: number, v: number): void {
  out[at] = v & 0xff;
  out[at + 1] = (v >>> 8) & 0xff;
  out[at + 2] = (v >>> 16) & 0xff;
  out[at + 3] = (v >>> 24) & 0xff;
}

function readU32(b: Uint8Array, at: number): number {
  return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
}

/**
 * Quantizes one row of `cols` f32 values starting at src[srcOffset] into out[outOffset...]
 * (bytesPerRow(type, cols) bytes). The streaming building block of quantizeRows.
 */
export function quantizeRowInto(
  type: GgmlQuantType,
  src: Float32Array,
  srcOffset: number,
  cols: number,
  out: Uint8Array,
  outOffset: number,
  options?: QuantizeOptions,
): void {
  checkCols(type, cols);
  const even = options?.rounding === 'even';
  const bb = BLOCK_BYTES[type];
  if (type === 'q8_0') {
    quantizeBlocksQ8_0(src, srcOffset, cols / QK, out, outOffset, even);
    return;
  }
  for (let b = 0; b < cols / QK; b++) {
    const xo = srcOffset + b * QK;
    const o = outOffset + b * bb;
    switch (type) {
      case 'q4_0':
        quantizeBlockSym(src, xo, out, o, 4, even);
        break;
      case 'q5_0':
        quantizeBlockSym(src, xo, out, o, 5, even);
        break;
      case 'q4_1':
        quantizeBlockAsym(src, xo, out, o, 4, even);
        break;
      case 'q5_1':
        quantizeBlockAsym(src, xo, out, o, 5, even);
        break;
    }
  }
}

/** Quantizes a row-major [rows, cols] f32 matrix; returns rows * bytesPerRow(type, cols) bytes. */
export function quantizeRows(
  type: GgmlQuantType,
  src: Float32Array,
  rows: number,
  cols: number,
  options?: QuantizeOptions,
): Uint8Array {
  const rb = bytesPerRow(type, cols);
  if (!Number.isSafeInteger(rows) || rows < 0 || src.length < rows * cols) {
    throw new ChatGLMError('BAD_ARGUMENT', `${type}: ${rows} rows of ${cols} need ${rows * cols} values, got ${src.length}`);
  }
  const out = new Uint8Array(rows * rb);
  for (let r = 0; r < rows; r++) quantizeRowInto(type, src, r * cols, cols, out, r * rb, options);
  return out;
}

/**
 * Dequantizes one row of `cols` elements whose blocks start at bytes[byteOffset] into out[0..cols)
 * (or out[outOffset..]), with ggml's f32 arithmetic.
 */
export function dequantizeRow(
  type: GgmlQuantType,
  bytes: Uint8Array,
  byteOffset: number,
  cols: number,
  out: Float32Array,
  outOffset = 0,
): void {
  checkCols(type, cols);
  const bb = BLOCK_BYTES[type];
  if (byteOffset < 0 || byteOffset + (cols / QK) * bb > bytes.length) {
    throw new ChatGLMError('BAD_ARGUMENT', `${type}: row at byte ${byteOffset} runs past the end of its ${bytes.length}-byte buffer`);
  }
  for (let b = 0; b < cols / QK; b++) {
    const o = byteOffset + b * bb;
    const y = outOffset + b * QK;
    const d = readF16(bytes, o);
    switch (type) {
      case 'q8_0':
        for (let j = 0; j < QK; j++) out[y + j] = ((bytes[o + 2 + j]! << 24) >> 24) * d;
        break;
      case 'q4_0':
        for (let j = 0; j < QK / 2; j++) {
          const q = bytes[o + 2 + j]!;
          out[y + j] = ((q & 0x0f) - 8) * d;
          out[y + j + QK / 2] = ((q >>> 4) - 8) * d;
        }
        break;
      case 'q4_1': {
        const m = readF16(bytes, o + 2);
        for (let j = 0; j < QK / 2; j++) {
          const q = bytes[o + 4 + j]!;
          out[y + j] = fr((q & 0x0f) * d) + m;
          out[y + j + QK / 2] = fr((q >>> 4) * d) + m;
        }
        break;
      }
      case 'q5_0': {
        const qh = readU32(bytes, o + 2);
        for (let j = 0; j < QK / 2; j++) {
          const q = bytes[o + 6 + j]!;
          const h0 = ((qh >>> j) & 1) << 4;
          const h1 = ((qh >>> (j + 16)) & 1) << 4;
          out[y + j] = (((q & 0x0f) | h0) - 16) * d;
          out[y + j + QK / 2] = (((q >>> 4) | h1) - 16) * d;
        }
        break;
      }
      case 'q5_1': {
        const m = readF16(bytes, o + 2);
        const qh = readU32(bytes, o + 4);
        for (let j = 0; j < QK / 2; j++) {
          const q = bytes[o + 8 + j]!;
          const h0 = ((qh >>> j) & 1) << 4;
          const h1 = ((qh >>> (j + 16)) & 1) << 4;
          out[y + j] = fr(((q & 0x0f) | h0) * d) + m;
          out[y + j + QK / 2] = fr(((q >>> 4) | h1) * d) + m;
        }
        break;
      }
    }
  }
}

/** Dequantizes a whole [rows, cols] quantized matrix to f32. */
export function dequantizeRows(type: GgmlQuantType, bytes: Uint8Array, rows: number, cols: number): Float32Array {
  const rb = bytesPerRow(type, cols);
  if (bytes.length < rows * rb) {
    throw new ChatGLMError('BAD_ARGUMENT', `${type}: ${rows} rows of ${cols} need ${rows * rb} bytes, got ${bytes.length}`);
  }
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) dequantizeRow(type, bytes, r * rb, cols, out, r * cols);
  return out;
}

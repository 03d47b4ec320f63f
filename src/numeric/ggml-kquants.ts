/**
 * ggml's k-quant formats (super-blocks of QK_K = 256 elements), byte for byte as llama.cpp's
 * ggml-common.h lays them out, with ggml-quants.c's dequantization (`dequantize_row_q*_K`) and its
 * importance-free reference quantizers (`quantize_row_q*_K_ref`, what llama-quantize runs when no
 * imatrix is given), so files we write are the ones llama.cpp writes and files it writes read here.
 *
 * Layouts (little-endian; d/dmin are f16):
 *   q2_K  84 B: scales[16] (low nibble scale, high nibble min, per 16), qs[64] (2 bits), d, dmin
 *   q3_K 110 B: hmask[32] (third bit), qs[64] (low 2 bits), scales[12] (16 x 6 bits), d
 *   q4_K 144 B: d, dmin, scales[12] (8 x 6-bit scale + 8 x 6-bit min), qs[128] (4 bits)
 *   q5_K 176 B: d, dmin, scales[12], qh[32] (fifth bit), qs[128]
 *   q6_K 210 B: ql[128] (low 4 bits), qh[64] (high 2 bits), scales[16] (int8, per 16), d
 *   q8_K 292 B: f32 d, qs[256] int8, bsums[16] int16 (sum of each 16 quants): activations only
 *
 * Element order inside a super-block. q2_K/q3_K: byte l of each 32-byte half of qs (n = 0, 128)
 * holds elements n+l, n+l+32, n+l+64, n+l+96 in bit pairs 0-1, 2-3, 4-5, 6-7; q3_K's hmask bit b of
 * byte m is the third bit of element 32b + m. q4_K/q5_K: each 32-byte run of qs covers 64 elements,
 * low nibbles first; q5_K's qh bit 2i / 2i+1 of byte l is the fifth bit of element 64i + l /
 * 64i + 32 + l. q6_K: per 128 elements, 64 bytes of ql and 32 of qh; ql[l] low/high nibble are
 * elements l / l+64, ql[l+32] are l+32 / l+96, qh[l] bit pairs are l, l+32, l+64, l+96.
 *
 * Arithmetic. ggml computes in f32 (ggml-base is built without FMA contraction), so every f32
 * operation here goes through Math.fround in the same order as the C code, and `nearest_int` is
 * emulated on the f32 bits (round half to even via the 1.5 * 2^23 trick, including its behaviour
 * outside the range it asserts). The quantizers live in ggml-kquants-quantize.ts.
 */
import { ChatGLMError } from '../errors.js';
import { f16BitsToF32, f32ToF16Bits } from './half.js';

export const QK_K = 256;

export type KQuantType = 'q2_K' | 'q3_K' | 'q4_K' | 'q5_K' | 'q6_K' | 'q8_K';
export const K_QUANT_TYPES: readonly KQuantType[] = ['q2_K', 'q3_K', 'q4_K', 'q5_K', 'q6_K', 'q8_K'];

/** Bytes of one super-block of QK_K elements. */
export const K_BLOCK_BYTES: Readonly<Record<KQuantType, number>> = {
  q2_K: 84,
  q3_K: 110,
  q4_K: 144,
  q5_K: 176,
  q6_K: 210,
  q8_K: 292,
};

export function isKQuantType(s: string): s is KQuantType {
  return (K_QUANT_TYPES as readonly string[]).includes(s);
}

export function checkCols(type: KQuantType, cols: number): void {
  if (!Number.isSafeInteger(cols) || cols <= 0 || cols % QK_K !== 0) {
    throw new ChatGLMError(
      'BAD_ARGUMENT',
      `${type}: a row of ${cols} elements cannot be stored; k-quant rows must be a positive multiple of ${QK_K}`,
    );
  }
}

/** Bytes one row of `cols` elements takes in `type` (cols must be a multiple of QK_K). */
export function kBytesPerRow(type: KQuantType, cols: number): number {
  checkCols(type, cols);
  return (cols / QK_K) * K_BLOCK_BYTES[type];
}

export const fr = Math.fround;

export function readF16(b: Uint8Array, at: number): number {
  return f16BitsToF32(b[at]! | (b[at + 1]! << 8));
}

export function writeF16(out: Uint8Array, at: number, x: number): void {
  const h = f32ToF16Bits(x);
  out[at] = h & 0xff;
  out[at + 1] = h >>> 8;
}

const nf = new Float32Array(1);
const ni = new Int32Array(nf.buffer);

/**
 * ggml's nearest_int: adds 12582912.f (1.5 * 2^23) in f32 and reads the low mantissa bits, i.e.
 * round half to even for |x| <= 4194303; outside that range it returns what the bits say, as C does.
 */
export function nearestInt(x: number): number {
  nf[0] = x + 12582912; // the f32 store rounds the exact double sum once, as the f32 add does
  return (ni[0]! & 0x007fffff) - 0x00400000;
}

/** (int8_t) / (uint8_t) conversions of an int. */
export const toI8 = (v: number): number => (v << 24) >> 24;
export const toU8 = (v: number): number => v & 0xff;

/** The 6-bit scale and min of sub-block j (0..7) of q4_K/q5_K (ggml's get_scale_min_k4). */
export function scaleMinK4(j: number, s: Uint8Array, at: number): [number, number] {
  if (j < 4) return [s[at + j]! & 63, s[at + j + 4]! & 63];
  return [(s[at + j + 4]! & 0xf) | ((s[at + j - 4]! >> 6) << 4), (s[at + j + 4]! >> 4) | ((s[at + j]! >> 6) << 4)];
}

/** The 16 signed 6-bit scales of a q3_K block (already minus 32). */
export function q3KScales(b: Uint8Array, at: number): Int8Array {
  const out = new Int8Array(16);
  for (let j = 0; j < 16; j++) {
    const lo = j < 8 ? b[at + j]! & 0xf : b[at + j - 8]! >> 4;
    const hi = (b[at + 8 + (j % 4)]! >> (2 * Math.floor(j / 4))) & 3;
    out[j] = (lo | (hi << 4)) - 32;
  }
  return out;
}

// ---------------------------------------------------------------- dequantization

function dequantBlock(type: KQuantType, b: Uint8Array, o: number, y: Float32Array, yo: number): void {
  switch (type) {
    case 'q2_K': {
      const d = readF16(b, o + 80);
      const min = readF16(b, o + 82);
      let is = 0;
      for (let n = 0; n < QK_K; n += 128) {
        const q = o + 16 + n / 4;
        for (let shift = 0; shift < 8; shift += 2) {
          for (let half = 0; half < 2; half++) {
            const sc = b[o + is++]!;
            const dl = fr(d * (sc & 0xf));
            const ml = fr(min * (sc >> 4));
            for (let l = 0; l < 16; l++) y[yo++] = fr(dl * ((b[q + 16 * half + l]! >> shift) & 3)) - ml;
          }
        }
      }
      return;
    }
    case 'q3_K': {
      const dAll = readF16(b, o + 108);
      const scales = q3KScales(b, o + 96);
      let is = 0;
      let m = 1;
      for (let n = 0; n < QK_K; n += 128) {
        const q = o + 32 + n / 4;
        for (let shift = 0; shift < 8; shift += 2, m <<= 1) {
          for (let half = 0; half < 2; half++) {
            const dl = fr(dAll * scales[is++]!);
            for (let l = 0; l < 16; l++) {
              const k = 16 * half + l;
              const v = ((b[q + k]! >> shift) & 3) - (b[o + k]! & m ? 0 : 4);
              y[yo++] = fr(dl * v);
            }
          }
        }
      }
      return;
    }
    case 'q4_K':
    case 'q5_K': {
      const d = readF16(b, o);
      const min = readF16(b, o + 2);
      const five = type === 'q5_K';
      const qs = o + (five ? 48 : 16);
      for (let j = 0; j < 4; j++) {
        const [s1, m1] = scaleMinK4(2 * j, b, o + 4);
        const [s2, m2] = scaleMinK4(2 * j + 1, b, o + 4);
        const d1 = fr(d * s1);
        const mm1 = fr(min * m1);
        const d2 = fr(d * s2);
        const mm2 = fr(min * m2);
        const q = qs + 32 * j;
        for (let l = 0; l < 32; l++) {
          const h = five ? ((b[o + 16 + l]! >> (2 * j)) & 1) << 4 : 0;
          y[yo + l] = fr(d1 * ((b[q + l]! & 0xf) + h)) - mm1;
        }
        for (let l = 0; l < 32; l++) {
          const h = five ? ((b[o + 16 + l]! >> (2 * j + 1)) & 1) << 4 : 0;
          y[yo + 32 + l] = fr(d2 * ((b[q + l]! >> 4) + h)) - mm2;
        }
        yo += 64;
      }
      return;
    }
    case 'q6_K': {
      const d = readF16(b, o + 208);
      for (let n = 0; n < 2; n++) {
        const ql = o + 64 * n;
        const qh = o + 128 + 32 * n;
        const sc = o + 192 + 8 * n;
        for (let l = 0; l < 32; l++) {
          const is = l >> 4;
          const h = b[qh + l]!;
          const q1 = ((b[ql + l]! & 0xf) | ((h & 3) << 4)) - 32;
          const q2 = ((b[ql + l + 32]! & 0xf) | (((h >> 2) & 3) << 4)) - 32;
          const q3 = ((b[ql + l]! >> 4) | (((h >> 4) & 3) << 4)) - 32;
          const q4 = ((b[ql + l + 32]! >> 4) | (((h >> 6) & 3) << 4)) - 32;
          y[yo + l] = fr(fr(d * toI8(b[sc + is]!)) * q1);
          y[yo + l + 32] = fr(fr(d * toI8(b[sc + is + 2]!)) * q2);
          y[yo + l + 64] = fr(fr(d * toI8(b[sc + is + 4]!)) * q3);
          y[yo + l + 96] = fr(fr(d * toI8(b[sc + is + 6]!)) * q4);
        }
        yo += 128;
      }
      return;
    }
    case 'q8_K': {
      const d = new DataView(b.buffer, b.byteOffset + o, 4).getFloat32(0, true);
      for (let j = 0; j < QK_K; j++) y[yo + j] = fr(d * toI8(b[o + 4 + j]!));
      return;
    }
  }
}

/**
 * Dequantizes one row of `cols` elements whose super-blocks start at bytes[byteOffset] into
 * out[outOffset..outOffset + cols), with ggml's f32 arithmetic.
 */
export function dequantizeRowK(type: KQuantType, bytes: Uint8Array, byteOffset: number, cols: number, out: Float32Array, outOffset = 0): void {
  checkCols(type, cols);
  const bb = K_BLOCK_BYTES[type];
  if (byteOffset < 0 || byteOffset + (cols / QK_K) * bb > bytes.length) {
    throw new ChatGLMError('BAD_ARGUMENT', `${type}: row at byte ${byteOffset} runs past the end of its ${bytes.length}-byte buffer`);
  }
  for (let i = 0; i < cols / QK_K; i++) dequantBlock(type, bytes, byteOffset + i * bb, out, outOffset + i * QK_K);
}

/** Dequantizes a whole [rows, cols] k-quant matrix to f32. */
export function dequantizeRowsK(type: KQuantType, bytes: Uint8Array, rows: number, cols: number): Float32Array {
  const rb = kBytesPerRow(type, cols);
  if (bytes.length < rows * rb) {
    throw new ChatGLMError('BAD_ARGUMENT', `${type}: ${rows} rows of ${cols} need ${rows * rb} bytes, got ${bytes.length}`);
  }
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) dequantizeRowK(type, bytes, r * rb, cols, out, r * cols);
  return out;
}

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
 * outside the range it asserts). The quantizers are slow in JavaScript; they run once per convert.
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

function checkCols(type: KQuantType, cols: number): void {
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

const fr = Math.fround;

function readF16(b: Uint8Array, at: number): number {
  return f16BitsToF32(b[at]! | (b[at + 1]! << 8));
}

function writeF16(out: Uint8Array, at: number, x: number): void {
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
const toI8 = (v: number): number => (v << 24) >> 24;
const toU8 = (v: number): number => v & 0xff;

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

// ---------------------------------------------------------------- quantization helpers (ggml-quants.c)

const GROUP_MAX_EPS = fr(1e-15);

/** make_qx_quants with rmse_type 1 and no importance weights (w = x^2); L gets values 0..2*nmax-1. */
function makeQxQuants(n: number, nmax: number, x: Float32Array, xo: number, L: Int8Array | Uint8Array, lo: number): number {
  let max = 0;
  let amax = 0;
  for (let i = 0; i < n; i++) {
    const ax = Math.abs(x[xo + i]!);
    if (ax > amax) {
      amax = ax;
      max = x[xo + i]!;
    }
  }
  if (amax < GROUP_MAX_EPS) {
    for (let i = 0; i < n; i++) L[lo + i] = 0;
    return 0;
  }
  let iscale = fr(-nmax / max);
  let sumlx = 0;
  let suml2 = 0;
  for (let i = 0; i < n; i++) {
    const xi = x[xo + i]!;
    let l = nearestInt(fr(iscale * xi));
    l = Math.max(-nmax, Math.min(nmax - 1, l));
    L[lo + i] = l + nmax;
    const w = fr(xi * xi);
    sumlx = fr(sumlx + fr(fr(w * xi) * l));
    suml2 = fr(suml2 + fr(fr(w * l) * l));
  }
  let scale = suml2 !== 0 ? fr(sumlx / suml2) : 0;
  let best = fr(scale * sumlx);
  for (let is = -9; is <= 9; is++) {
    if (is === 0) continue;
    iscale = fr(-fr(nmax + fr(fr(0.1) * is)) / max);
    sumlx = 0;
    suml2 = 0;
    for (let i = 0; i < n; i++) {
      const xi = x[xo + i]!;
      let l = nearestInt(fr(iscale * xi));
      l = Math.max(-nmax, Math.min(nmax - 1, l));
      const w = fr(xi * xi);
      sumlx = fr(sumlx + fr(fr(w * xi) * l));
      suml2 = fr(suml2 + fr(fr(w * l) * l));
    }
    if (suml2 > 0 && fr(sumlx * sumlx) > fr(best * suml2)) {
      for (let i = 0; i < n; i++) {
        const l = nearestInt(fr(iscale * x[xo + i]!));
        L[lo + i] = nmax + Math.max(-nmax, Math.min(nmax - 1, l));
      }
      scale = fr(sumlx / suml2);
      best = fr(scale * sumlx);
    }
  }
  return scale;
}

/** make_q3_quants with do_rmse: L gets values 0..2*nmax-1. */
function makeQ3Quants(n: number, nmax: number, x: Float32Array, xo: number, L: Int8Array, lo: number): number {
  let max = 0;
  let amax = 0;
  for (let i = 0; i < n; i++) {
    const ax = Math.abs(x[xo + i]!);
    if (ax > amax) {
      amax = ax;
      max = x[xo + i]!;
    }
  }
  if (amax < GROUP_MAX_EPS) {
    for (let i = 0; i < n; i++) L[lo + i] = 0;
    return 0;
  }
  const iscale = fr(-nmax / max);
  let sumlx = 0;
  let suml2 = 0;
  for (let i = 0; i < n; i++) {
    const xi = x[xo + i]!;
    let l = nearestInt(fr(iscale * xi));
    l = Math.max(-nmax, Math.min(nmax - 1, l));
    L[lo + i] = l;
    const w = fr(xi * xi);
    sumlx = fr(sumlx + fr(fr(w * xi) * l));
    suml2 = fr(suml2 + fr(fr(w * l) * l));
  }
  for (let itry = 0; itry < 5; itry++) {
    let changed = 0;
    for (let i = 0; i < n; i++) {
      const xi = x[xo + i]!;
      const w = fr(xi * xi);
      const Li = L[lo + i]!;
      let slx = fr(sumlx - fr(fr(w * xi) * Li));
      if (slx > 0) {
        let sl2 = fr(suml2 - fr(fr(w * Li) * Li));
        let nl = nearestInt(fr(fr(xi * sl2) / slx));
        nl = Math.max(-nmax, Math.min(nmax - 1, nl));
        if (nl !== Li) {
          slx = fr(slx + fr(fr(w * xi) * nl));
          sl2 = fr(sl2 + fr(fr(w * nl) * nl));
          if (sl2 > 0 && fr(fr(slx * slx) * suml2) > fr(fr(sumlx * sumlx) * sl2)) {
            L[lo + i] = nl;
            sumlx = slx;
            suml2 = sl2;
            changed++;
          }
        }
      }
    }
    if (changed === 0) break;
  }
  for (let i = 0; i < n; i++) L[lo + i] = L[lo + i]! + nmax;
  return suml2 > 0 ? fr(sumlx / suml2) : 0;
}

/**
 * make_qkx2_quants: an asymmetric (scale, min) search over nstep+1 candidate scales, minimising the
 * weighted squared (or absolute, useMad) error. Returns [scale, -min]; L gets values 0..nmax.
 */
function makeQkx2Quants(
  n: number,
  nmax: number,
  x: Float32Array,
  xo: number,
  weights: Float32Array,
  L: Uint8Array,
  lo: number,
  Laux: Uint8Array,
  rmin: number,
  rdelta: number,
  nstep: number,
  useMad: boolean,
): [number, number] {
  let min = x[xo]!;
  let max = x[xo]!;
  let sumW = weights[0]!;
  let sumX = fr(sumW * x[xo]!);
  for (let i = 1; i < n; i++) {
    const xi = x[xo + i]!;
    if (xi < min) min = xi;
    if (xi > max) max = xi;
    const w = weights[i]!;
    sumW = fr(sumW + w);
    sumX = fr(sumX + fr(w * xi));
  }
  if (min > 0) min = 0;
  if (max === min) {
    for (let i = 0; i < n; i++) L[lo + i] = 0;
    return [0, -min];
  }
  let iscale = fr(nmax / fr(max - min));
  let scale = fr(1 / iscale);
  let bestError = 0;
  for (let i = 0; i < n; i++) {
    const xi = x[xo + i]!;
    const l = Math.max(0, Math.min(nmax, nearestInt(fr(iscale * fr(xi - min)))));
    L[lo + i] = l;
    let diff = fr(fr(fr(scale * l) + min) - xi);
    diff = useMad ? Math.abs(diff) : fr(diff * diff);
    bestError = fr(bestError + fr(weights[i]! * diff));
  }
  if (nstep < 1) return [scale, -min];
  for (let is = 0; is <= nstep; is++) {
    // `min` is the best candidate's so far (ggml updates it inside the search), so is the range.
    iscale = fr(fr(fr(rmin + fr(rdelta * is)) + nmax) / fr(max - min));
    let sumL = 0;
    let sumL2 = 0;
    let sumXL = 0;
    for (let i = 0; i < n; i++) {
      const xi = x[xo + i]!;
      const l = Math.max(0, Math.min(nmax, nearestInt(fr(iscale * fr(xi - min)))));
      Laux[i] = l;
      const w = weights[i]!;
      const wl = fr(w * l);
      sumL = fr(sumL + wl);
      sumL2 = fr(sumL2 + fr(wl * l));
      sumXL = fr(sumXL + fr(wl * xi));
    }
    const D = fr(fr(sumW * sumL2) - fr(sumL * sumL));
    if (D > 0) {
      let thisScale = fr(fr(fr(sumW * sumXL) - fr(sumX * sumL)) / D);
      let thisMin = fr(fr(fr(sumL2 * sumX) - fr(sumL * sumXL)) / D);
      if (thisMin > 0) {
        thisMin = 0;
        thisScale = fr(sumXL / sumL2);
      }
      let curError = 0;
      for (let i = 0; i < n; i++) {
        let diff = fr(fr(fr(thisScale * Laux[i]!) + thisMin) - x[xo + i]!);
        diff = useMad ? Math.abs(diff) : fr(diff * diff);
        curError = fr(curError + fr(weights[i]! * diff));
      }
      if (curError < bestError) {
        for (let i = 0; i < n; i++) L[lo + i] = Laux[i]!;
        bestError = curError;
        scale = thisScale;
        min = thisMin;
      }
    }
  }
  return [scale, -min];
}

// ---------------------------------------------------------------- reference quantizers

function packQ2Bits(L: Uint8Array | Int8Array, out: Uint8Array, qo: number): void {
  for (let j = 0; j < QK_K; j += 128) {
    for (let l = 0; l < 32; l++) {
      out[qo + j / 4 + l] = L[j + l]! | (L[j + l + 32]! << 2) | (L[j + l + 64]! << 4) | (L[j + l + 96]! << 6);
    }
  }
}

function quantizeBlockQ2K(x: Float32Array, xo: number, out: Uint8Array, o: number): void {
  const L = new Uint8Array(QK_K);
  const Laux = new Uint8Array(16);
  const weights = new Float32Array(16);
  const mins = new Float32Array(16);
  const scales = new Float32Array(16);
  let maxScale = 0;
  let maxMin = 0;
  for (let j = 0; j < 16; j++) {
    for (let l = 0; l < 16; l++) weights[l] = Math.abs(x[xo + 16 * j + l]!);
    const [s, m] = makeQkx2Quants(16, 3, x, xo + 16 * j, weights, L, 16 * j, Laux, fr(-0.5), fr(0.1), 15, true);
    scales[j] = s;
    mins[j] = m;
    if (scales[j]! > maxScale) maxScale = scales[j]!;
    if (mins[j]! > maxMin) maxMin = mins[j]!;
  }
  for (let j = 0; j < 16; j++) out[o + j] = 0;
  if (maxScale > 0) {
    const iscale = fr(15 / maxScale);
    for (let j = 0; j < 16; j++) out[o + j] = toU8(nearestInt(fr(iscale * scales[j]!)));
    writeF16(out, o + 80, fr(maxScale / 15));
  } else {
    writeF16(out, o + 80, 0);
  }
  if (maxMin > 0) {
    const iscale = fr(15 / maxMin);
    for (let j = 0; j < 16; j++) out[o + j] = toU8(out[o + j]! | (nearestInt(fr(iscale * mins[j]!)) << 4));
    writeF16(out, o + 82, fr(maxMin / 15));
  } else {
    writeF16(out, o + 82, 0);
  }
  const dAll = readF16(out, o + 80);
  const mAll = readF16(out, o + 82);
  for (let j = 0; j < 16; j++) {
    const d = fr(dAll * (out[o + j]! & 0xf));
    if (d === 0) continue;
    const dm = fr(mAll * (out[o + j]! >> 4));
    for (let ii = 0; ii < 16; ii++) {
      const l = nearestInt(fr(fr(x[xo + 16 * j + ii]! + dm) / d));
      L[16 * j + ii] = Math.max(0, Math.min(3, l));
    }
  }
  packQ2Bits(L, out, o + 16);
}

function quantizeBlockQ3K(x: Float32Array, xo: number, out: Uint8Array, o: number): void {
  const L = new Int8Array(QK_K);
  const scales = new Float32Array(16);
  let maxScale = 0;
  let amax = 0;
  for (let j = 0; j < 16; j++) {
    scales[j] = makeQ3Quants(16, 4, x, xo + 16 * j, L, 16 * j);
    const s = Math.abs(scales[j]!);
    if (s > amax) {
      amax = s;
      maxScale = scales[j]!;
    }
  }
  const sc = o + 96;
  for (let j = 0; j < 12; j++) out[sc + j] = 0;
  if (maxScale !== 0) {
    const iscale = fr(-32 / maxScale);
    for (let j = 0; j < 16; j++) {
      let l = toI8(nearestInt(fr(iscale * scales[j]!)));
      l = Math.max(-32, Math.min(31, l)) + 32;
      if (j < 8) out[sc + j] = l & 0xf;
      else out[sc + j - 8] = out[sc + j - 8]! | ((l & 0xf) << 4);
      l >>= 4;
      out[sc + (j % 4) + 8] = out[sc + (j % 4) + 8]! | (l << (2 * Math.floor(j / 4)));
    }
    writeF16(out, o + 108, fr(1 / iscale));
  } else {
    writeF16(out, o + 108, 0);
  }
  const dAll = readF16(out, o + 108);
  const s16 = q3KScales(out, sc);
  for (let j = 0; j < 16; j++) {
    const d = fr(dAll * s16[j]!);
    if (d === 0) continue;
    for (let ii = 0; ii < 16; ii++) {
      const l = nearestInt(fr(x[xo + 16 * j + ii]! / d));
      L[16 * j + ii] = Math.max(-4, Math.min(3, l)) + 4;
    }
  }
  for (let j = 0; j < 32; j++) out[o + j] = 0;
  let m = 0;
  let hm = 1;
  for (let j = 0; j < QK_K; j++) {
    if (L[j]! > 3) {
      out[o + m] = out[o + m]! | hm;
      L[j] = L[j]! - 4;
    }
    if (++m === 32) {
      m = 0;
      hm <<= 1;
    }
  }
  packQ2Bits(L, out, o + 32);
}

/** q4_K and q5_K share the scale search and the 6-bit scale/min packing. */
function quantizeBlockQ45K(x: Float32Array, xo: number, out: Uint8Array, o: number, five: boolean): void {
  const nmax = five ? 31 : 15;
  const L = new Uint8Array(QK_K);
  const Laux = new Uint8Array(32);
  const weights = new Float32Array(32);
  const mins = new Float32Array(8);
  const scales = new Float32Array(8);
  let maxScale = 0;
  let maxMin = 0;
  for (let j = 0; j < 8; j++) {
    let sumX2 = 0;
    for (let l = 0; l < 32; l++) {
      const v = x[xo + 32 * j + l]!;
      sumX2 = fr(sumX2 + fr(v * v));
    }
    const avX = fr(Math.sqrt(fr(sumX2 / 32)));
    for (let l = 0; l < 32; l++) weights[l] = fr(avX + Math.abs(x[xo + 32 * j + l]!));
    const [s, m] = five
      ? makeQkx2Quants(32, 31, x, xo + 32 * j, weights, L, 32 * j, Laux, fr(-0.5), fr(0.1), 15, false)
      : makeQkx2Quants(32, 15, x, xo + 32 * j, weights, L, 32 * j, Laux, -1, fr(0.1), 20, false);
    scales[j] = s;
    mins[j] = m;
    if (scales[j]! > maxScale) maxScale = scales[j]!;
    if (mins[j]! > maxMin) maxMin = mins[j]!;
  }
  const invScale = maxScale > 0 ? fr(63 / maxScale) : 0;
  const invMin = maxMin > 0 ? fr(63 / maxMin) : 0;
  const sc = o + 4;
  for (let j = 0; j < 12; j++) out[sc + j] = 0;
  for (let j = 0; j < 8; j++) {
    const ls = Math.min(63, toU8(nearestInt(fr(invScale * scales[j]!))));
    const lm = Math.min(63, toU8(nearestInt(fr(invMin * mins[j]!))));
    if (j < 4) {
      out[sc + j] = ls;
      out[sc + j + 4] = lm;
    } else {
      out[sc + j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
      out[sc + j - 4] = out[sc + j - 4]! | ((ls >> 4) << 6);
      out[sc + j] = out[sc + j]! | ((lm >> 4) << 6);
    }
  }
  writeF16(out, o, fr(maxScale / 63));
  writeF16(out, o + 2, fr(maxMin / 63));
  const dAll = readF16(out, o);
  const mAll = readF16(out, o + 2);
  for (let j = 0; j < 8; j++) {
    const [s, m] = scaleMinK4(j, out, sc);
    const d = fr(dAll * s);
    if (d === 0) continue;
    const dm = fr(mAll * m);
    for (let ii = 0; ii < 32; ii++) {
      const l = nearestInt(fr(fr(x[xo + 32 * j + ii]! + dm) / d));
      L[32 * j + ii] = Math.max(0, Math.min(nmax, l));
    }
  }
  if (!five) {
    const q = o + 16;
    for (let j = 0; j < QK_K; j += 64) {
      for (let l = 0; l < 32; l++) out[q + j / 2 + l] = L[j + l]! | (L[j + l + 32]! << 4);
    }
    return;
  }
  const qh = o + 16;
  const ql = o + 48;
  for (let j = 0; j < 32; j++) out[qh + j] = 0;
  let m1 = 1;
  let m2 = 2;
  for (let n = 0; n < QK_K; n += 64) {
    for (let j = 0; j < 32; j++) {
      let l1 = L[n + j]!;
      if (l1 > 15) {
        l1 -= 16;
        out[qh + j] = out[qh + j]! | m1;
      }
      let l2 = L[n + j + 32]!;
      if (l2 > 15) {
        l2 -= 16;
        out[qh + j] = out[qh + j]! | m2;
      }
      out[ql + n / 2 + j] = l1 | (l2 << 4);
    }
    m1 <<= 2;
    m2 <<= 2;
  }
}

function quantizeBlockQ6K(x: Float32Array, xo: number, out: Uint8Array, o: number): void {
  const L = new Int8Array(QK_K);
  const scales = new Float32Array(16);
  let maxScale = 0;
  let maxAbsScale = 0;
  for (let ib = 0; ib < 16; ib++) {
    const scale = makeQxQuants(16, 32, x, xo + 16 * ib, L, 16 * ib);
    scales[ib] = scale;
    const a = Math.abs(scale);
    if (a > maxAbsScale) {
      maxAbsScale = a;
      maxScale = scale;
    }
  }
  if (maxAbsScale < GROUP_MAX_EPS) {
    out.fill(0, o, o + 210);
    return;
  }
  const iscale = fr(-128 / maxScale);
  writeF16(out, o + 208, fr(1 / iscale));
  for (let ib = 0; ib < 16; ib++) out[o + 192 + ib] = toU8(Math.min(127, nearestInt(fr(iscale * scales[ib]!))));
  const dAll = readF16(out, o + 208);
  for (let j = 0; j < 16; j++) {
    const d = fr(dAll * toI8(out[o + 192 + j]!));
    if (d === 0) continue;
    for (let ii = 0; ii < 16; ii++) {
      const l = nearestInt(fr(x[xo + 16 * j + ii]! / d));
      L[16 * j + ii] = Math.max(-32, Math.min(31, l)) + 32;
    }
  }
  for (let j = 0; j < QK_K; j += 128) {
    const ql = o + j / 2;
    const qh = o + 128 + j / 4;
    for (let l = 0; l < 32; l++) {
      const a = L[j + l]!;
      const b = L[j + l + 32]!;
      const c = L[j + l + 64]!;
      const e = L[j + l + 96]!;
      out[ql + l] = (a & 0xf) | ((c & 0xf) << 4);
      out[ql + l + 32] = (b & 0xf) | ((e & 0xf) << 4);
      out[qh + l] = (a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) | ((e >> 4) << 6);
    }
  }
}

function quantizeBlockQ8K(x: Float32Array, xo: number, out: Uint8Array, o: number): void {
  let max = 0;
  let amax = 0;
  for (let j = 0; j < QK_K; j++) {
    const ax = Math.abs(x[xo + j]!);
    if (ax > amax) {
      amax = ax;
      max = x[xo + j]!;
    }
  }
  const dv = new DataView(out.buffer, out.byteOffset + o, 292);
  if (amax === 0) {
    // ggml leaves bsums untouched here; we write zeros, which is what they sum to.
    out.fill(0, o, o + 292);
    return;
  }
  const iscale = fr(-127 / max);
  for (let j = 0; j < QK_K; j++) out[o + 4 + j] = toU8(Math.min(127, nearestInt(fr(iscale * x[xo + j]!))));
  for (let j = 0; j < 16; j++) {
    let sum = 0;
    for (let ii = 0; ii < 16; ii++) sum += toI8(out[o + 4 + 16 * j + ii]!);
    dv.setInt16(260 + 2 * j, sum, true);
  }
  dv.setFloat32(0, fr(1 / iscale), true);
}

/**
 * Quantizes one row of `cols` f32 values at src[srcOffset..] into out[outOffset..] with ggml's
 * reference quantizer for `type` (no importance matrix).
 */
export function quantizeRowKInto(type: KQuantType, src: Float32Array, srcOffset: number, cols: number, out: Uint8Array, outOffset: number): void {
  checkCols(type, cols);
  const bb = K_BLOCK_BYTES[type];
  for (let i = 0; i < cols / QK_K; i++) {
    const xo = srcOffset + i * QK_K;
    const o = outOffset + i * bb;
    switch (type) {
      case 'q2_K':
        quantizeBlockQ2K(src, xo, out, o);
        break;
      case 'q3_K':
        quantizeBlockQ3K(src, xo, out, o);
        break;
      case 'q4_K':
        quantizeBlockQ45K(src, xo, out, o, false);
        break;
      case 'q5_K':
        quantizeBlockQ45K(src, xo, out, o, true);
        break;
      case 'q6_K':
        quantizeBlockQ6K(src, xo, out, o);
        break;
      case 'q8_K':
        quantizeBlockQ8K(src, xo, out, o);
        break;
    }
  }
}

/** Quantizes a row-major [rows, cols] f32 matrix; returns rows * kBytesPerRow(type, cols) bytes. */
export function quantizeRowsK(type: KQuantType, src: Float32Array, rows: number, cols: number): Uint8Array {
  const rb = kBytesPerRow(type, cols);
  if (!Number.isSafeInteger(rows) || rows < 0 || src.length < rows * cols) {
    throw new ChatGLMError('BAD_ARGUMENT', `${type}: ${rows} rows of ${cols} need ${rows * cols} values, got ${src.length}`);
  }
  const out = new Uint8Array(rows * rb);
  for (let r = 0; r < rows; r++) quantizeRowKInto(type, src, r * cols, cols, out, r * rb);
  return out;
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

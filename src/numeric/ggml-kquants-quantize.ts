/**
 * ggml-quants.c's reference k-quant quantizers (`quantize_row_q*_K_ref`, what llama-quantize runs
 * without an importance matrix), every f32 step in the C code's order (see ggml-kquants.ts for the
 * block layouts and the arithmetic rules). Slow in JavaScript; they run once per convert.
 */
import { ChatGLMError } from '../errors.js';
import { K_BLOCK_BYTES, QK_K, checkCols, fr, kBytesPerRow, nearestInt, q3KScales, readF16, scaleMinK4, toI8, toU8, writeF16, type KQuantType } from './ggml-kquants.js';

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


/**
 * Row access to weight matrices that stay in their checkpoint encoding. The reference backend never
 * expands a whole matrix to f32 (a 6B model would need 24 GB); it decodes one row at a time into a
 * small buffer, right where the math needs it.
 */
import { asU16, bf16BitsToF32Into, f16BitsToF32Into } from '../../numeric/half.js';
import { dequantizeBlockRow } from '../../numeric/ggml-blocks.js';
import type { WeightType } from '../types.js';
import { rowBytes } from '../../numeric/dtype.js';

export { rowBytes } from '../../numeric/dtype.js';

/** Decodes row `r` of a [rows, cols] matrix stored as `type` in `data` into `out[0..cols)`. */
export function decodeRow(type: WeightType, data: Uint8Array, cols: number, r: number, out: Float32Array): void {
  const stride = rowBytes(type, cols);
  const base = r * stride;
  switch (type) {
    case 'f32': {
      if ((data.byteOffset + base) % 4 === 0) {
        out.set(new Float32Array(data.buffer, data.byteOffset + base, cols));
      } else {
        // unaligned bytes (a tensor at an odd file offset): read them one by one
        const dv = new DataView(data.buffer, data.byteOffset + base, stride);
        for (let c = 0; c < cols; c++) out[c] = dv.getFloat32(c * 4, true);
      }
      return;
    }
    case 'f16':
      f16BitsToF32Into(asU16(data.subarray(base, base + stride), 'f16 row'), out);
      return;
    case 'bf16':
      bf16BitsToF32Into(asU16(data.subarray(base, base + stride), 'bf16 row'), out);
      return;
    default:
      dequantizeBlockRow(type, data, base, cols, out);
      return;
  }
}

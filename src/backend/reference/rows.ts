/**
 * Row access to weight matrices that stay in their checkpoint encoding. The reference backend never
 * expands a whole matrix to f32 (a 6B model would need 24 GB); it decodes one row at a time into a
 * small buffer, right where the math needs it.
 */
import { f16BitsToF32 } from '../../formats/half.js';
import { bytesPerRow, dequantizeRow } from '../../formats/ggml-quants.js';
import type { WeightType } from '../types.js';

let f16Table: Float32Array | undefined;
function f16ToF32Table(): Float32Array {
  if (f16Table === undefined) {
    f16Table = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f16BitsToF32(h);
  }
  return f16Table;
}

/** The row's 16-bit values (little-endian host), copied only when the bytes are not 2-aligned. */
function u16View(data: Uint8Array, base: number, cols: number): Uint16Array {
  const start = data.byteOffset + base;
  if (start % 2 === 0) return new Uint16Array(data.buffer, start, cols);
  return new Uint16Array(data.slice(base, base + cols * 2).buffer);
}

/** Bytes one row of `cols` weights occupies in the given encoding. */
export function rowBytes(type: WeightType, cols: number): number {
  switch (type) {
    case 'f32':
      return cols * 4;
    case 'f16':
    case 'bf16':
      return cols * 2;
    case 'q8_0':
    case 'q4_0':
      // ggml blocks of 32 weights with an f16 scale (throws when cols is not a multiple of 32)
      return bytesPerRow(type, cols);
  }
}

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
    case 'f16': {
      const t = f16ToF32Table();
      const u16 = u16View(data, base, cols);
      for (let c = 0; c < cols; c++) out[c] = t[u16[c]!]!;
      return;
    }
    case 'bf16': {
      // bf16 is the top half of an f32: shift the 16 bits into place and reinterpret.
      const u16 = u16View(data, base, cols);
      const bits = new Uint32Array(out.buffer, out.byteOffset, cols);
      for (let c = 0; c < cols; c++) bits[c] = u16[c]! << 16;
      return;
    }
    case 'q8_0':
    case 'q4_0':
      dequantizeRow(type, data, base, cols, out);
      return;
  }
}

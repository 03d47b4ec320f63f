/** A checkpoint tensor decoded to f32, for the loaders and the converter. */
import { ChatGLMError } from '../errors.js';
import { bf16ToF32Array, f16ToF32Array, requireLittleEndian } from '../numeric/half.js';
import type { TensorData } from './tensor-source.js';

/**
 * Decodes an F32/F16/BF16 tensor to f32. For F32 the result is a view over `t.data` when it is
 * 4-aligned (no second copy of a large weight), so treat it as read-only unless you own `t`.
 */
export function tensorToF32(t: TensorData): Float32Array {
  const { name, dtype } = t.info;
  switch (dtype) {
    case 'F32': {
      requireLittleEndian();
      if (t.data.byteLength % 4 !== 0) {
        throw new ChatGLMError('BAD_FORMAT', `tensor ${name}: ${t.data.byteLength} bytes is not a whole number of f32 values`);
      }
      if (t.data.byteOffset % 4 === 0) return new Float32Array(t.data.buffer, t.data.byteOffset, t.data.byteLength / 4);
      return new Float32Array(t.data.slice().buffer);
    }
    case 'F16':
      return f16ToF32Array(t.data);
    case 'BF16':
      return bf16ToF32Array(t.data);
    default:
      throw new ChatGLMError(
        'UNSUPPORTED',
        `tensor ${name} has dtype ${dtype}; only F32, F16 and BF16 tensors can be decoded to f32 here`,
      );
  }
}

/**
 * Safetensors writer: one file, or Hugging Face style shards plus model.safetensors.index.json.
 * Tests use it to build tiny checkpoints; `convert` can use it to re-save a model. Tensors are
 * encoded and written one at a time, so writing never holds a second copy of the whole model.
 */
import { open, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ChatGLMError } from '../../src/errors.js';
import type { DType } from '../../src/formats/tensor-source.js';
import { f32Bytes, f32ToBf16Bytes, f32ToF16Bytes } from '../../src/numeric/half.js';
import { SAFETENSORS_DTYPE_SIZE, elementCount } from '../../src/formats/safetensors.js';

export interface TensorToWrite {
  name: string;
  dtype: DType;
  /** PyTorch order, outermost first. */
  shape: number[];
  /**
   * Raw little-endian bytes in `dtype`, or f32 values that are converted to `dtype` (F32, F16 or
   * BF16; F16/BF16 round to nearest even, exactly like torch's `.half()` / `.bfloat16()`).
   */
  data: Uint8Array | Float32Array;
}

/** Builds a TensorToWrite from f32 values, stored as F32, F16 or BF16. */
export function tensorFromF32(name: string, dtype: 'F32' | 'F16' | 'BF16', shape: number[], values: Float32Array): TensorToWrite {
  return { name, dtype, shape, data: values };
}

/** The bytes a tensor will occupy in the file, converting f32 values when needed. */
export function encodeTensor(t: TensorToWrite): Uint8Array {
  const size = SAFETENSORS_DTYPE_SIZE[t.dtype];
  if (size === undefined) {
    throw new ChatGLMError('UNSUPPORTED', `tensor ${t.name}: dtype ${t.dtype} cannot be stored in safetensors`);
  }
  for (const d of t.shape) {
    if (!Number.isSafeInteger(d) || d < 0) {
      throw new ChatGLMError('BAD_ARGUMENT', `tensor ${t.name}: bad shape [${t.shape.join(', ')}]`);
    }
  }
  let bytes: Uint8Array;
  if (t.data instanceof Float32Array) {
    if (t.dtype === 'F32') bytes = f32Bytes(t.data);
    else if (t.dtype === 'F16') bytes = f32ToF16Bytes(t.data);
    else if (t.dtype === 'BF16') bytes = f32ToBf16Bytes(t.data);
    else throw new ChatGLMError('BAD_ARGUMENT', `tensor ${t.name}: f32 values can only be written as F32, F16 or BF16, not ${t.dtype}`);
  } else {
    bytes = t.data;
  }
  const expected = elementCount(t.shape) * size;
  if (bytes.byteLength !== expected) {
    throw new ChatGLMError(
      'BAD_ARGUMENT',
      `tensor ${t.name}: shape [${t.shape.join(', ')}] as ${t.dtype} needs ${expected} bytes but ${bytes.byteLength} were given`,
    );
  }
  return bytes;
}

function byteSize(t: TensorToWrite): number {
  const size = SAFETENSORS_DTYPE_SIZE[t.dtype];
  if (size === undefined) {
    throw new ChatGLMError('UNSUPPORTED', `tensor ${t.name}: dtype ${t.dtype} cannot be stored in safetensors`);
  }
  return elementCount(t.shape) * size;
}

/** Writes one .safetensors file. `metadata` goes into the header's `__metadata__` (string values). */
export async function writeSafetensors(
  file: string,
  tensors: readonly TensorToWrite[],
  metadata?: Record<string, string>,
): Promise<void> {
  const header: Record<string, unknown> = {};
  if (metadata !== undefined && Object.keys(metadata).length > 0) header['__metadata__'] = metadata;
  const seen = new Set<string>();
  let offset = 0;
  for (const t of tensors) {
    if (seen.has(t.name) || t.name === '__metadata__') {
      throw new ChatGLMError('BAD_ARGUMENT', `${file}: tensor name ${JSON.stringify(t.name)} is used twice or reserved`);
    }
    seen.add(t.name);
    const n = byteSize(t);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + n] };
    offset += n;
  }
  let json = JSON.stringify(header);
  // Pad with spaces so tensor data starts 8-aligned, as the reference implementation does.
  const jsonLen = Buffer.byteLength(json, 'utf8');
  json += ' '.repeat((8 - ((8 + jsonLen) % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(headerBytes.byteLength));

  await mkdir(path.dirname(path.resolve(file)), { recursive: true });
  const fh = await open(file, 'w');
  try {
    await fh.write(prefix);
    await fh.write(headerBytes);
    for (const t of tensors) {
      const bytes = encodeTensor(t);
      if (bytes.byteLength > 0) await fh.write(bytes);
    }
  } finally {
    await fh.close();
  }
}

export interface ShardedWriteResult {
  /** Shard file names (relative to dir), in order. */
  shards: string[];
  /** Absolute path of model.safetensors.index.json. */
  indexFile: string;
  totalSize: number;
}

/**
 * Writes `model-0000i-of-0000n.safetensors` shards plus `model.safetensors.index.json`
 * (`{"metadata": {"total_size": N}, "weight_map": {name: shard}}`), splitting the way
 * huggingface_hub does: tensors in the given order, a new shard when the next tensor would push the
 * current one past `maxShardBytes`; a tensor larger than the limit gets a shard of its own, emitted
 * when it is met (so shard order can differ from tensor order, exactly as in HF). An index
 * is written even for a single shard (HF would write plain model.safetensors then; our reader and
 * transformers both accept either), so tests always exercise the sharded path when they ask for it.
 */
export async function writeShardedSafetensors(
  dir: string,
  tensors: readonly TensorToWrite[],
  maxShardBytes: number,
): Promise<ShardedWriteResult> {
  if (!(maxShardBytes > 0)) throw new ChatGLMError('BAD_ARGUMENT', `maxShardBytes must be positive, got ${maxShardBytes}`);
  const groups: TensorToWrite[][] = [];
  let current: TensorToWrite[] = [];
  let currentSize = 0;
  let totalSize = 0;
  for (const t of tensors) {
    const n = byteSize(t);
    totalSize += n;
    if (n > maxShardBytes) {
      // huggingface_hub emits an oversized tensor as a shard of its own right away, while the
      // shard being filled stays open for the tensors that follow.
      groups.push([t]);
      continue;
    }
    if (current.length > 0 && currentSize + n > maxShardBytes) {
      groups.push(current);
      current = [];
      currentSize = 0;
    }
    current.push(t);
    currentSize += n;
  }
  if (current.length > 0 || groups.length === 0) groups.push(current);

  await mkdir(dir, { recursive: true });
  const count = groups.length;
  const pad = (i: number): string => String(i).padStart(5, '0');
  const shards: string[] = [];
  const weightMap: Record<string, string> = {};
  for (let i = 0; i < count; i++) {
    const name = `model-${pad(i + 1)}-of-${pad(count)}.safetensors`;
    shards.push(name);
    await writeSafetensors(path.join(dir, name), groups[i]!, { format: 'pt' });
    for (const t of groups[i]!) weightMap[t.name] = name;
  }
  // transformers writes the index with indent=2, sort_keys=True and a trailing newline.
  const sortedMap: Record<string, string> = {};
  for (const k of Object.keys(weightMap).sort()) sortedMap[k] = weightMap[k]!;
  const index = { metadata: { total_size: totalSize }, weight_map: sortedMap };
  const indexFile = path.join(dir, 'model.safetensors.index.json');
  await writeFile(indexFile, JSON.stringify(index, null, 2) + '\n');
  return { shards, indexFile: path.resolve(indexFile), totalSize };
}

/**
 * Safetensors reader (https://github.com/huggingface/safetensors): 8-byte little-endian header
 * length N, N bytes of JSON header `{name: {dtype, shape, data_offsets: [begin, end]}, __metadata__}`,
 * then the tensor data (offsets are relative to its start). Only the header is read up front; each
 * tensor is read on demand through a file handle, so a 20 GB checkpoint never sits in memory whole.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { ChatGLMError, badFormat, notFound } from '../errors.js';
import type { DType, TensorData, TensorInfo } from './tensor-source.js';
import { readExactly } from './file-read.js';
import { IndexedSource, copyInfo } from './indexed-source.js';

/** Bytes per element of each dtype safetensors can hold (quantized ggml blocks are not among them). */
export const SAFETENSORS_DTYPE_SIZE: Partial<Record<DType, number>> = {
  F32: 4,
  F16: 2,
  BF16: 2,
  I32: 4,
  I64: 8,
  I8: 1,
  U8: 1,
};

/** Product of a shape's dimensions (1 for a scalar). */
export function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** A JSON header larger than this is not a checkpoint header (the real ones are well under 1 MB). */
const MAX_HEADER_BYTES = 100 * 1024 * 1024;

interface Entry {
  info: TensorInfo;
  /** Absolute byte offset in the file. */
  start: number;
  length: number;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The first key that occurs twice at the top level of a JSON object text (already known to be
 * valid JSON), or undefined. One linear pass that tracks nesting and skips string contents.
 */
export function firstDuplicateTopLevelKey(json: string): string | undefined {
  const seen = new Set<string>();
  let depth = 0;
  let i = 0;
  const n = json.length;
  while (i < n) {
    const c = json.charCodeAt(i);
    if (c === 0x22) {
      // A string: find its end (a quote not escaped by an odd run of backslashes).
      let j = i + 1;
      while (j < n) {
        const d = json.charCodeAt(j);
        if (d === 0x5c) j += 2;
        else if (d === 0x22) break;
        else j++;
      }
      if (depth === 1) {
        let k = j + 1;
        while (k < n && (json[k] === ' ' || json[k] === '\t' || json[k] === '\n' || json[k] === '\r')) k++;
        if (json[k] === ':') {
          const key = JSON.parse(json.slice(i, j + 1)) as string;
          if (seen.has(key)) return key;
          seen.add(key);
        }
      }
      i = j + 1;
      continue;
    }
    if (c === 0x7b || c === 0x5b) depth++;
    else if (c === 0x7d || c === 0x5d) depth--;
    i++;
  }
  return undefined;
}

/** Parses and validates a header; exported for tests and for tools that only need the listing. */
export function parseSafetensorsHeader(
  file: string,
  headerJson: string,
  dataStart: number,
  fileSize: number,
): { entries: Map<string, Entry>; metadata: Record<string, string> } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(headerJson);
  } catch (e) {
    throw badFormat(file, `the safetensors header is not valid JSON (${(e as Error).message}); the file is corrupt or not a safetensors file`);
  }
  if (!isRecord(parsed)) throw badFormat(file, 'the safetensors header is not a JSON object');
  // JSON.parse keeps the last of two equal keys, silently; two entries for one tensor is corruption.
  const dup = firstDuplicateTopLevelKey(headerJson);
  if (dup !== undefined) throw badFormat(file, `tensor ${dup} appears twice in the safetensors header; the file is corrupt`);
  const entries = new Map<string, Entry>();
  const metadata: Record<string, string> = {};
  const dataSize = fileSize - dataStart;
  for (const [name, raw] of Object.entries(parsed)) {
    if (name === '__metadata__') {
      if (isRecord(raw)) for (const [k, v] of Object.entries(raw)) if (typeof v === 'string') metadata[k] = v;
      continue;
    }
    if (!isRecord(raw)) throw badFormat(file, `tensor ${name}: header entry is not an object`);
    const { dtype, shape, data_offsets: offsets } = raw;
    if (typeof dtype !== 'string') throw badFormat(file, `tensor ${name}: missing dtype`);
    const size = Object.prototype.hasOwnProperty.call(SAFETENSORS_DTYPE_SIZE, dtype)
      ? SAFETENSORS_DTYPE_SIZE[dtype as DType]
      : undefined;
    if (size === undefined) {
      throw badFormat(
        file,
        `tensor ${name} has dtype ${dtype}, which is not supported (supported: ${Object.keys(SAFETENSORS_DTYPE_SIZE).join(', ')}); convert the checkpoint to F32, F16 or BF16`,
      );
    }
    if (!Array.isArray(shape) || !shape.every((d): d is number => Number.isSafeInteger(d) && (d as number) >= 0)) {
      throw badFormat(file, `tensor ${name}: shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    }
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o): o is number => Number.isSafeInteger(o) && (o as number) >= 0) ||
      offsets[0] > offsets[1]
    ) {
      throw badFormat(file, `tensor ${name}: data_offsets ${JSON.stringify(offsets)} is not a [begin, end] pair`);
    }
    const [begin, end] = offsets as [number, number];
    const expected = elementCount(shape) * size;
    if (!Number.isSafeInteger(expected)) throw badFormat(file, `tensor ${name}: shape [${shape.join(', ')}] has more elements than a file can hold`);
    if (end - begin !== expected) {
      throw badFormat(
        file,
        `tensor ${name}: shape [${shape.join(', ')}] as ${dtype} needs ${expected} bytes but its data_offsets span ${end - begin}`,
      );
    }
    if (end > dataSize) {
      throw badFormat(
        file,
        `tensor ${name} ends at data byte ${end} but the file holds only ${Math.max(0, dataSize)} bytes of data: the file is truncated or corrupt (download it again)`,
      );
    }
    entries.set(name, { info: { name, dtype: dtype as DType, shape: [...shape] }, start: dataStart + begin, length: end - begin });
  }
  // Two tensors sharing bytes means a corrupt header (the format forbids it).
  const sorted = [...entries.values()].filter((e) => e.length > 0).sort((a, b) => a.start - b.start);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1]!;
    const cur = sorted[i]!;
    if (cur.start < prev.start + prev.length) {
      throw badFormat(file, `tensors ${prev.info.name} and ${cur.info.name} overlap in the file: the header is corrupt`);
    }
  }
  return { entries, metadata };
}

export class SafetensorsSource extends IndexedSource<Entry> {
  readonly location: string;
  /** The header's `__metadata__` (string values only). */
  readonly metadata: Record<string, string>;
  protected readonly entries: Map<string, Entry>;
  private fh: FileHandle | undefined;

  private constructor(file: string, fh: FileHandle, entries: Map<string, Entry>, metadata: Record<string, string>) {
    super();
    this.location = file;
    this.fh = fh;
    this.entries = entries;
    this.metadata = metadata;
  }

  /** Opens and validates a .safetensors file (reads only its header). */
  static async open(file: string): Promise<SafetensorsSource> {
    let fh: FileHandle;
    try {
      fh = await open(file, 'r');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw notFound('safetensors file', file, 'check the path');
      throw new ChatGLMError('FILE_NOT_FOUND', `${file}: cannot open (${(e as Error).message})`, { file, cause: e });
    }
    try {
      const { size } = await fh.stat();
      if (size < 8) throw badFormat(file, `only ${size} bytes long, too short for a safetensors header: the file is truncated or not a safetensors file`);
      const lenBytes = await readExactly(fh, file, 0, 8, 'the header length');
      const n = new DataView(lenBytes.buffer).getBigUint64(0, true);
      if (n > BigInt(size - 8)) {
        throw badFormat(
          file,
          `header length ${n} is larger than the file (${size} bytes): the file is truncated or not a safetensors file`,
        );
      }
      if (n > BigInt(MAX_HEADER_BYTES)) throw badFormat(file, `header length ${n} is implausibly large: not a safetensors file`);
      const headerLen = Number(n);
      const headerBytes = await readExactly(fh, file, 8, headerLen, 'the header');
      let json: string;
      try {
        json = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
      } catch {
        throw badFormat(file, 'the safetensors header is not valid UTF-8: the file is corrupt or not a safetensors file');
      }
      const { entries, metadata } = parseSafetensorsHeader(file, json, 8 + headerLen, size);
      return new SafetensorsSource(file, fh, entries, metadata);
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  async read(name: string): Promise<TensorData> {
    const entry = this.entry(name);
    if (this.fh === undefined) throw new ChatGLMError('BAD_ARGUMENT', `${this.location}: read after close`, { file: this.location });
    const data = await readExactly(this.fh, this.location, entry.start, entry.length, `tensor ${name}`);
    return { info: copyInfo(entry.info), data };
  }

  async close(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    if (fh !== undefined) await fh.close();
  }
}

/** Opens one .safetensors file as a TensorSource. */
export function openSafetensors(file: string): Promise<SafetensorsSource> {
  return SafetensorsSource.open(file);
}

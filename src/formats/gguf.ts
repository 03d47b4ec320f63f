/**
 * GGUF reader (versions 2 and 3, little-endian): metadata of every value type (arrays included,
 * nested too), tensor infos, `general.alignment`, and tensor data read one tensor at a time, so a
 * loader never holds the file twice. Absolute file offsets are exposed for backends that mmap.
 *
 * Layout (ggml/docs/gguf.md): "GGUF" u32 version, u64 tensor_count, u64 kv_count, kv pairs
 * (string key, u32 type, value), tensor infos (string name, u32 n_dims, u64 ne[n_dims] innermost
 * first, u32 ggml type, u64 offset relative to the data section), padding to the alignment, data.
 */
import { open, stat } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { ChatGLMError, badFormat, notFound } from '../errors.js';
import { readUpTo } from './file-read.js';

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_DEFAULT_ALIGNMENT = 32;

export enum GgufValueType {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
}

/** A scalar: numbers for the 8/16/32-bit and float types, bigint for the 64-bit integers. */
export type GgufScalar = number | bigint | boolean | string;

export interface GgufArray {
  /** Type of every element (ARRAY for nested arrays). */
  itemType: GgufValueType;
  items: GgufValue[];
}

export type GgufValue = GgufScalar | GgufArray;

export interface GgufMetadataEntry {
  type: GgufValueType;
  value: GgufValue;
}

/** ggml tensor types: id, block size in elements, bytes per block. */
export interface GgmlTypeInfo {
  id: number;
  name: string;
  blockSize: number;
  typeSize: number;
}

const GGML_TYPE_LIST: GgmlTypeInfo[] = [
  { id: 0, name: 'F32', blockSize: 1, typeSize: 4 },
  { id: 1, name: 'F16', blockSize: 1, typeSize: 2 },
  { id: 2, name: 'Q4_0', blockSize: 32, typeSize: 18 },
  { id: 3, name: 'Q4_1', blockSize: 32, typeSize: 20 },
  { id: 6, name: 'Q5_0', blockSize: 32, typeSize: 22 },
  { id: 7, name: 'Q5_1', blockSize: 32, typeSize: 24 },
  { id: 8, name: 'Q8_0', blockSize: 32, typeSize: 34 },
  { id: 9, name: 'Q8_1', blockSize: 32, typeSize: 36 },
  { id: 10, name: 'Q2_K', blockSize: 256, typeSize: 84 },
  { id: 11, name: 'Q3_K', blockSize: 256, typeSize: 110 },
  { id: 12, name: 'Q4_K', blockSize: 256, typeSize: 144 },
  { id: 13, name: 'Q5_K', blockSize: 256, typeSize: 176 },
  { id: 14, name: 'Q6_K', blockSize: 256, typeSize: 210 },
  { id: 15, name: 'Q8_K', blockSize: 256, typeSize: 292 },
  { id: 16, name: 'IQ2_XXS', blockSize: 256, typeSize: 66 },
  { id: 17, name: 'IQ2_XS', blockSize: 256, typeSize: 74 },
  { id: 18, name: 'IQ3_XXS', blockSize: 256, typeSize: 98 },
  { id: 19, name: 'IQ1_S', blockSize: 256, typeSize: 50 },
  { id: 20, name: 'IQ4_NL', blockSize: 32, typeSize: 18 },
  { id: 21, name: 'IQ3_S', blockSize: 256, typeSize: 110 },
  { id: 22, name: 'IQ2_S', blockSize: 256, typeSize: 82 },
  { id: 23, name: 'IQ4_XS', blockSize: 256, typeSize: 136 },
  { id: 24, name: 'I8', blockSize: 1, typeSize: 1 },
  { id: 25, name: 'I16', blockSize: 1, typeSize: 2 },
  { id: 26, name: 'I32', blockSize: 1, typeSize: 4 },
  { id: 27, name: 'I64', blockSize: 1, typeSize: 8 },
  { id: 28, name: 'F64', blockSize: 1, typeSize: 8 },
  { id: 29, name: 'IQ1_M', blockSize: 256, typeSize: 56 },
  { id: 30, name: 'BF16', blockSize: 1, typeSize: 2 },
  { id: 34, name: 'TQ1_0', blockSize: 256, typeSize: 54 },
  { id: 35, name: 'TQ2_0', blockSize: 256, typeSize: 66 },
];

export const GGML_TYPES: ReadonlyMap<number, GgmlTypeInfo> = new Map(GGML_TYPE_LIST.map((t) => [t.id, t]));
export const GGML_TYPE_BY_NAME: ReadonlyMap<string, GgmlTypeInfo> = new Map(GGML_TYPE_LIST.map((t) => [t.name, t]));

/** The ggml type id for a name such as 'Q8_0'; throws for unknown names (a programming error). */
export function ggmlTypeId(name: string): number {
  const t = GGML_TYPE_BY_NAME.get(name);
  if (t === undefined) throw new ChatGLMError('UNSUPPORTED', `unknown ggml type ${name}`);
  return t.id;
}

export function ggmlTypeName(id: number): string {
  return GGML_TYPES.get(id)?.name ?? `type#${id}`;
}

/** Bytes a tensor of `ne` elements (innermost first) takes in ggml type `id`; undefined if unknown. */
export function ggmlTensorBytes(id: number, ne: readonly number[]): number | undefined {
  const t = GGML_TYPES.get(id);
  if (t === undefined) return undefined;
  const inner = ne.length === 0 ? 1 : ne[0]!;
  if (inner % t.blockSize !== 0) return undefined;
  let n = inner / t.blockSize;
  for (let i = 1; i < ne.length; i++) n *= ne[i]!;
  return n * t.typeSize;
}

export interface GgufTensorInfo {
  name: string;
  /** Dimensions innermost first, as GGUF stores them (a PyTorch [out, in] weight is [in, out]). */
  ne: number[];
  /** ggml type id (GGML_TYPES). */
  type: number;
  /** Offset from the start of the data section (a multiple of the alignment). */
  offset: number;
  /** Absolute offset of the first byte in the file, for readers that mmap. */
  fileOffset: number;
  /** Bytes of data, or undefined for a type this reader does not know the block size of. */
  byteSize: number | undefined;
}

export interface GgufHeader {
  path: string;
  version: number;
  metadata: Map<string, GgufMetadataEntry>;
  tensors: GgufTensorInfo[];
  alignment: number;
  /** Absolute offset of the data section. */
  dataOffset: number;
  fileSize: number;
}

/** Thrown inside the parser when the bytes read so far end before the header does. */
class NeedMore extends Error {}

const utf8 = new TextDecoder('utf-8', { fatal: false });

class Cursor {
  pos = 0;
  private readonly view: DataView;
  constructor(private readonly buf: Uint8Array) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  private need(n: number): void {
    if (this.pos + n > this.buf.byteLength) throw new NeedMore();
  }
  u8(): number {
    this.need(1);
    return this.view.getUint8(this.pos++);
  }
  i8(): number {
    this.need(1);
    return this.view.getInt8(this.pos++);
  }
  u16(): number {
    this.need(2);
    const v = this.view.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }
  i16(): number {
    this.need(2);
    const v = this.view.getInt16(this.pos, true);
    this.pos += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  i32(): number {
    this.need(4);
    const v = this.view.getInt32(this.pos, true);
    this.pos += 4;
    return v;
  }
  f32(): number {
    this.need(4);
    const v = this.view.getFloat32(this.pos, true);
    this.pos += 4;
    return v;
  }
  f64(): number {
    this.need(8);
    const v = this.view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }
  u64(): bigint {
    this.need(8);
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    return v;
  }
  i64(): bigint {
    this.need(8);
    const v = this.view.getBigInt64(this.pos, true);
    this.pos += 8;
    return v;
  }
  bytes(n: number): Uint8Array {
    this.need(n);
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }
}

interface ParseContext {
  file: string;
  fileSize: number;
}

/** A u64 count or size that must fit what the file can hold; garbage becomes a clear error. */
function smallU64(c: Cursor, ctx: ParseContext, what: string, max: number): number {
  const v = c.u64();
  if (v > BigInt(max)) {
    throw badFormat(ctx.file, `${what} is ${v}, more than the file could hold (${ctx.fileSize} bytes); the file is corrupt or not GGUF`);
  }
  return Number(v);
}

/**
 * Bounds on what a key can need, checked before anything is allocated, so one corrupt length or
 * count is a clear error instead of reading gigabytes or exhausting the heap. Keys and tensor
 * names are short (llama.cpp caps tensor names at 64 bytes); a chat template is a few KB; the
 * largest arrays are vocabularies and merge lists of a few hundred thousand entries.
 */
export const GGUF_LIMITS = {
  keyBytes: 4096,
  stringBytes: 16 << 20,
  arrayItems: 1 << 22,
  /** The whole header (metadata and tensor infos); GLM-4's, with 151,552 tokens and merges, is under 10 MB. */
  headerBytes: 64 << 20,
  tensors: 1 << 20,
} as const;

/** Smallest encoding of one array item of `type` (strings: their u64 length). */
function minItemBytes(type: number): number {
  switch (type) {
    case GgufValueType.UINT8:
    case GgufValueType.INT8:
    case GgufValueType.BOOL:
      return 1;
    case GgufValueType.UINT16:
    case GgufValueType.INT16:
      return 2;
    case GgufValueType.UINT32:
    case GgufValueType.INT32:
    case GgufValueType.FLOAT32:
      return 4;
    case GgufValueType.ARRAY:
      return 12;
    default:
      return 8;
  }
}

function readString(c: Cursor, ctx: ParseContext, what = 'a string', max: number = GGUF_LIMITS.stringBytes): string {
  const at = c.pos;
  const v = c.u64();
  if (v > BigInt(ctx.fileSize)) {
    throw badFormat(ctx.file, `a string length (${what} at byte ${at}) is ${v}, more than the file could hold (${ctx.fileSize} bytes); the file is corrupt or not GGUF`);
  }
  if (v > BigInt(max)) throw badFormat(ctx.file, `${what} at byte ${at} claims ${v} bytes, more than ${max} bytes, the most it can need; the file is corrupt`);
  // Longer than the rest of the file: reported as a truncated header.
  if (v > BigInt(ctx.fileSize - c.pos)) throw new NeedMore();
  return utf8.decode(c.bytes(Number(v)));
}

function readValue(c: Cursor, ctx: ParseContext, type: number, depth: number): GgufValue {
  switch (type) {
    case GgufValueType.UINT8:
      return c.u8();
    case GgufValueType.INT8:
      return c.i8();
    case GgufValueType.UINT16:
      return c.u16();
    case GgufValueType.INT16:
      return c.i16();
    case GgufValueType.UINT32:
      return c.u32();
    case GgufValueType.INT32:
      return c.i32();
    case GgufValueType.FLOAT32:
      return c.f32();
    case GgufValueType.BOOL: {
      const b = c.u8();
      if (b > 1) throw badFormat(ctx.file, `a bool metadata value is ${b}, not 0 or 1; the file is corrupt`);
      return b === 1;
    }
    case GgufValueType.STRING:
      return readString(c, ctx);
    case GgufValueType.UINT64:
      return c.u64();
    case GgufValueType.INT64:
      return c.i64();
    case GgufValueType.FLOAT64:
      return c.f64();
    case GgufValueType.ARRAY: {
      if (depth > 8) throw badFormat(ctx.file, 'metadata arrays are nested more than 8 deep; the file is corrupt');
      const itemType = c.u32();
      const at = c.pos;
      const v = c.u64();
      if (v > BigInt(ctx.fileSize)) {
        throw badFormat(ctx.file, `an array length (at byte ${at}) is ${v}, more than the file could hold (${ctx.fileSize} bytes); the file is corrupt or not GGUF`);
      }
      if (v > BigInt(GGUF_LIMITS.arrayItems)) {
        throw badFormat(ctx.file, `a metadata array at byte ${at} claims ${v} items, more than ${GGUF_LIMITS.arrayItems}, the most a vocabulary needs; the file is corrupt`);
      }
      const n = Number(v);
      if (n * minItemBytes(itemType) > ctx.fileSize - c.pos) throw new NeedMore();
      const items: GgufValue[] = new Array<GgufValue>(n);
      for (let i = 0; i < n; i++) items[i] = readValue(c, ctx, itemType, depth + 1);
      return { itemType, items };
    }
    default:
      throw badFormat(ctx.file, `unknown metadata value type ${type}; the file is corrupt or from a newer GGUF version`);
  }
}

function parseHeader(buf: Uint8Array, ctx: ParseContext): Omit<GgufHeader, 'path' | 'fileSize'> {
  const c = new Cursor(buf);
  const magic = c.u32();
  if (magic !== GGUF_MAGIC) {
    throw badFormat(ctx.file, 'not a GGUF file (it does not start with "GGUF"); pass a .gguf file, or a Hugging Face model directory');
  }
  const version = c.u32();
  if (version === 1) {
    throw new ChatGLMError('UNSUPPORTED', `${ctx.file}: GGUF version 1 is not supported; re-convert the model with a current converter`, { file: ctx.file });
  }
  if (version !== 2 && version !== 3) {
    const hint = (version & 0xffff) === 0 ? ' (it looks big-endian, which is not supported)' : '';
    throw new ChatGLMError('UNSUPPORTED', `${ctx.file}: GGUF version ${version} is not supported${hint}; versions 2 and 3 are`, { file: ctx.file });
  }
  // Every tensor info and kv pair takes at least 8 bytes, which bounds honest counts by the file size.
  const tensorCount = smallU64(c, ctx, 'the tensor count', Math.min(GGUF_LIMITS.tensors, Math.floor(ctx.fileSize / 8)));
  const kvCount = smallU64(c, ctx, 'the metadata count', Math.floor(ctx.fileSize / 8));
  const metadata = new Map<string, GgufMetadataEntry>();
  for (let i = 0; i < kvCount; i++) {
    const key = readString(c, ctx, 'a metadata key', GGUF_LIMITS.keyBytes);
    if (metadata.has(key)) throw badFormat(ctx.file, `metadata key ${JSON.stringify(key)} appears twice; the file is corrupt`);
    const type = c.u32();
    const value = readValue(c, ctx, type, 0);
    metadata.set(key, { type, value });
  }
  let alignment = GGUF_DEFAULT_ALIGNMENT;
  const al = metadata.get('general.alignment');
  if (al !== undefined) {
    if (typeof al.value !== 'number' && typeof al.value !== 'bigint') {
      throw badFormat(ctx.file, 'general.alignment is not an integer');
    }
    alignment = Number(al.value);
    if (!Number.isSafeInteger(alignment) || alignment <= 0 || alignment % 8 !== 0) {
      throw badFormat(ctx.file, `general.alignment is ${alignment}; it must be a positive multiple of 8`);
    }
  }
  const tensors: GgufTensorInfo[] = [];
  for (let i = 0; i < tensorCount; i++) {
    const name = readString(c, ctx, 'a tensor name', GGUF_LIMITS.keyBytes);
    const nDims = c.u32();
    if (nDims > 8) throw badFormat(ctx.file, `tensor ${name} has ${nDims} dimensions; the file is corrupt`);
    const ne: number[] = [];
    for (let d = 0; d < nDims; d++) ne.push(smallU64(c, ctx, `a dimension of tensor ${name}`, Number.MAX_SAFE_INTEGER));
    const type = c.u32();
    const offset = smallU64(c, ctx, `the data offset of tensor ${name}`, ctx.fileSize);
    if (offset % alignment !== 0) {
      throw badFormat(ctx.file, `tensor ${name} starts at data offset ${offset}, not a multiple of the alignment ${alignment}; the file is corrupt`);
    }
    tensors.push({ name, ne, type, offset, fileOffset: 0, byteSize: ggmlTensorBytes(type, ne) });
  }
  const dataOffset = Math.ceil(c.pos / alignment) * alignment;
  for (const t of tensors) t.fileOffset = dataOffset + t.offset;
  return { version, metadata, tensors, alignment, dataOffset };
}

/**
 * An open GGUF file: the parsed header plus tensor-by-tensor reads. Close it when done.
 */
export class GgufReader {
  private readonly byName: Map<string, GgufTensorInfo>;

  private constructor(
    readonly header: GgufHeader,
    private readonly fh: FileHandle,
  ) {
    this.byName = new Map(header.tensors.map((t) => [t.name, t]));
  }

  static async open(file: string): Promise<GgufReader> {
    let size: number;
    try {
      const st = await stat(file);
      if (!st.isFile()) throw notFound('GGUF file', file, 'the path is not a file; pass a .gguf file');
      size = st.size;
    } catch (err) {
      if (err instanceof ChatGLMError) throw err;
      throw notFound('GGUF file', file, 'check the path');
    }
    const fh = await open(file, 'r');
    try {
      const header = await readHeader(fh, file, size);
      return new GgufReader(header, fh);
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  get path(): string {
    return this.header.path;
  }

  tensor(name: string): GgufTensorInfo | undefined {
    return this.byName.get(name);
  }

  /** Reads one tensor's raw bytes (ggml layout). */
  async readTensor(nameOrInfo: string | GgufTensorInfo): Promise<Uint8Array> {
    const info = typeof nameOrInfo === 'string' ? this.byName.get(nameOrInfo) : nameOrInfo;
    if (info === undefined) {
      throw new ChatGLMError('MODEL_MISMATCH', `${this.path}: no tensor named ${String(nameOrInfo)}`, { file: this.path });
    }
    if (info.byteSize === undefined) {
      throw new ChatGLMError(
        'UNSUPPORTED',
        `${this.path}: tensor ${info.name} has ggml type ${ggmlTypeName(info.type)} with dimensions [${info.ne.join(', ')}], which this reader cannot size; re-quantize to q8_0, q4_0 or f16`,
        { file: this.path },
      );
    }
    const bytes = await readUpTo(this.fh, info.fileOffset, info.byteSize);
    if (bytes.byteLength !== info.byteSize) {
      throw badFormat(this.path, `truncated: tensor ${info.name} needs ${info.byteSize} bytes at offset ${info.fileOffset} but the file ends at ${this.header.fileSize}; re-download or re-convert it`);
    }
    return bytes;
  }

  /** Metadata value by key, or undefined. */
  get(key: string): GgufValue | undefined {
    return this.header.metadata.get(key)?.value;
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}

async function readHeader(fh: FileHandle, file: string, fileSize: number): Promise<GgufHeader> {
  const ctx: ParseContext = { file, fileSize };
  if (fileSize < 24) {
    const head = await readUpTo(fh, 0, Math.min(4, fileSize));
    if (head.byteLength < 4 || new DataView(head.buffer).getUint32(0, true) !== GGUF_MAGIC) {
      throw badFormat(file, 'not a GGUF file (it does not start with "GGUF"); pass a .gguf file, or a Hugging Face model directory');
    }
    throw badFormat(file, `truncated: only ${fileSize} bytes, too short for a GGUF header; re-download or re-convert it`);
  }
  // Headers are usually well under a few MiB (the vocabulary dominates); read a chunk and grow it
  // until the parser stops asking for more.
  let chunk = Math.min(fileSize, 1 << 20);
  for (;;) {
    if (chunk > GGUF_LIMITS.headerBytes) {
      throw badFormat(file, `the GGUF header is larger than ${GGUF_LIMITS.headerBytes >> 20} MiB (real ones are a few MB); the file is corrupt`);
    }
    const buf = await readUpTo(fh, 0, chunk);
    try {
      const parsed = parseHeader(buf, ctx);
      const header: GgufHeader = { path: file, fileSize, ...parsed };
      validateExtents(header);
      return header;
    } catch (err) {
      if (!(err instanceof NeedMore)) throw err;
      if (chunk >= fileSize) {
        throw badFormat(file, `truncated: the file (${fileSize} bytes) ends inside the GGUF header; re-download or re-convert it`);
      }
      chunk = Math.min(fileSize, chunk * 4, chunk < GGUF_LIMITS.headerBytes ? GGUF_LIMITS.headerBytes : Infinity);
    }
  }
}

function validateExtents(h: GgufHeader): void {
  const seen = new Set<string>();
  // Tensor data is laid out in declaration order without overlap, as every writer does and
  // llama.cpp requires; anything else means two tensors would share bytes.
  let prevEnd = 0;
  let prevName = '';
  for (const t of h.tensors) {
    if (seen.has(t.name)) throw badFormat(h.path, `tensor ${t.name} appears twice; the file is corrupt`);
    seen.add(t.name);
    if (t.offset < prevEnd) {
      throw badFormat(h.path, `tensor ${t.name} starts at data offset ${t.offset}, inside or before the previous tensor ${prevName} (which ends at ${prevEnd}); the file is corrupt`);
    }
    if (t.byteSize === undefined) continue;
    prevEnd = t.offset + t.byteSize;
    prevName = t.name;
    const end = t.fileOffset + t.byteSize;
    if (end > h.fileSize) {
      throw badFormat(
        h.path,
        `truncated: tensor ${t.name} needs bytes up to ${end} but the file has only ${h.fileSize}; re-download or re-convert it`,
      );
    }
  }
}

/** Reads only the header of a GGUF file. */
export async function readGgufHeader(file: string): Promise<GgufHeader> {
  const r = await GgufReader.open(file);
  await r.close();
  return r.header;
}

/** Metadata helpers that turn a missing or mistyped key into a clear error. */
export function metaNumber(h: GgufHeader, key: string): number | undefined {
  const e = h.metadata.get(key);
  if (e === undefined) return undefined;
  if (typeof e.value === 'number') return e.value;
  if (typeof e.value === 'bigint') return Number(e.value);
  throw badFormat(h.path, `metadata ${key} should be a number`);
}

export function metaString(h: GgufHeader, key: string): string | undefined {
  const e = h.metadata.get(key);
  if (e === undefined) return undefined;
  if (typeof e.value === 'string') return e.value;
  throw badFormat(h.path, `metadata ${key} should be a string`);
}

export function metaBool(h: GgufHeader, key: string): boolean | undefined {
  const e = h.metadata.get(key);
  if (e === undefined) return undefined;
  if (typeof e.value === 'boolean') return e.value;
  throw badFormat(h.path, `metadata ${key} should be a bool`);
}

export function metaArray(h: GgufHeader, key: string): GgufArray | undefined {
  const e = h.metadata.get(key);
  if (e === undefined) return undefined;
  if (typeof e.value === 'object') return e.value;
  throw badFormat(h.path, `metadata ${key} should be an array`);
}

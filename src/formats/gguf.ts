/**
 * GGUF reader (versions 2 and 3, little-endian): metadata of every value type (arrays included,
 * nested too), tensor infos, `general.alignment`, and tensor data read one tensor at a time, so a
 * loader never holds the file twice. Absolute file offsets are exposed for backends that mmap.
 * Metadata arrays are checked when the header is read but decoded only when used (GgufArray):
 * numeric ones as typed arrays over their file bytes, string ones on first access.
 *
 * Layout (ggml/docs/gguf.md): "GGUF" u32 version, u64 tensor_count, u64 kv_count, kv pairs
 * (string key, u32 type, value), tensor infos (string name, u32 n_dims, u64 ne[n_dims] innermost
 * first, u32 ggml type, u64 offset relative to the data section), padding to the alignment, data.
 */
import { open, stat } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { ChatGLMError, badFormat, notFound } from '../errors.js';
import { readUpTo } from './file-read.js';
import { GgufArray, GgufValueType, type GgufArrayItems, type GgufMetadataEntry, type GgufNumericArray, type GgufValue } from './gguf-values.js';
import { ggmlTensorBytes, ggmlTypeName } from './ggml-types.js';

export {
  GgufValueType,
  GgufArray,
  type GgufScalar,
  type GgufNumberArray,
  type GgufNumericArray,
  type GgufArrayItems,
  type GgufValue,
  type GgufMetadataEntry,
} from './gguf-values.js';
export { type GgmlTypeInfo, GGML_TYPES, GGML_TYPE_BY_NAME, ggmlTypeId, ggmlTypeName, ggmlTensorBytes } from './ggml-types.js';

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
export const GGUF_DEFAULT_ALIGNMENT = 32;

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
  /** A view (no copy) of bytes already passed. */
  slice(start: number, end: number): Uint8Array {
    return this.buf.subarray(start, end);
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

/** The bytes of one string (length-checked, not decoded, not copied). */
function stringBytes(c: Cursor, ctx: ParseContext, what: string, max: number): Uint8Array {
  const at = c.pos;
  const v = c.u64();
  if (v > BigInt(ctx.fileSize)) {
    throw badFormat(ctx.file, `a string length (${what} at byte ${at}) is ${v}, more than the file could hold (${ctx.fileSize} bytes); the file is corrupt or not GGUF`);
  }
  if (v > BigInt(max)) throw badFormat(ctx.file, `${what} at byte ${at} claims ${v} bytes, more than ${max} bytes, the most it can need; the file is corrupt`);
  // Longer than the rest of the file: reported as a truncated header.
  if (v > BigInt(ctx.fileSize - c.pos)) throw new NeedMore();
  return c.bytes(Number(v));
}

function readString(c: Cursor, ctx: ParseContext, what = 'a string', max: number = GGUF_LIMITS.stringBytes): string {
  return utf8.decode(stringBytes(c, ctx, what, max));
}

/** Where an array's elements lie: checked and skipped over, nothing decoded. */
interface ArraySpan {
  itemType: GgufValueType;
  length: number;
  /** The elements' bytes as in the file (a view of the buffer being parsed). */
  bytes: Uint8Array;
}

/**
 * Reads an array's element type and count and walks its elements, checking every length, count,
 * nested type and bool byte the way decoding would, without decoding anything.
 */
function scanArray(c: Cursor, ctx: ParseContext, depth: number): ArraySpan {
  if (depth > 8) throw badFormat(ctx.file, 'metadata arrays are nested more than 8 deep; the file is corrupt');
  const itemType = c.u32();
  if (itemType > GgufValueType.FLOAT64) {
    throw badFormat(ctx.file, `unknown metadata value type ${itemType}; the file is corrupt or from a newer GGUF version`);
  }
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
  const start = c.pos;
  switch (itemType) {
    case GgufValueType.STRING:
      for (let i = 0; i < n; i++) stringBytes(c, ctx, 'a string', GGUF_LIMITS.stringBytes);
      break;
    case GgufValueType.ARRAY:
      for (let i = 0; i < n; i++) scanArray(c, ctx, depth + 1);
      break;
    case GgufValueType.BOOL: {
      const b = c.bytes(n);
      for (let i = 0; i < n; i++) {
        if (b[i]! > 1) throw badFormat(ctx.file, `a bool metadata value is ${b[i]}, not 0 or 1; the file is corrupt`);
      }
      break;
    }
    default:
      c.bytes(n * minItemBytes(itemType));
  }
  return { itemType, length: n, bytes: c.slice(start, c.pos) };
}

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** A typed array over `bytes` (GGUF is little-endian); copied only when unaligned or on a big-endian host. */
function numericItems(itemType: GgufValueType, n: number, bytes: Uint8Array): GgufNumericArray {
  const size = minItemBytes(itemType);
  let b = bytes;
  if (!LITTLE_ENDIAN_HOST) {
    b = new Uint8Array(bytes.length);
    for (let i = 0; i < bytes.length; i += size) for (let k = 0; k < size; k++) b[i + k] = bytes[i + size - 1 - k]!;
  } else if (b.byteOffset % size !== 0) {
    b = new Uint8Array(bytes); // a copy in a fresh, aligned buffer
  }
  const { buffer, byteOffset } = b;
  switch (itemType) {
    case GgufValueType.UINT8:
    case GgufValueType.BOOL:
      return new Uint8Array(buffer, byteOffset, n);
    case GgufValueType.INT8:
      return new Int8Array(buffer, byteOffset, n);
    case GgufValueType.UINT16:
      return new Uint16Array(buffer, byteOffset, n);
    case GgufValueType.INT16:
      return new Int16Array(buffer, byteOffset, n);
    case GgufValueType.UINT32:
      return new Uint32Array(buffer, byteOffset, n);
    case GgufValueType.INT32:
      return new Int32Array(buffer, byteOffset, n);
    case GgufValueType.FLOAT32:
      return new Float32Array(buffer, byteOffset, n);
    case GgufValueType.UINT64:
      return new BigUint64Array(buffer, byteOffset, n);
    case GgufValueType.INT64:
      return new BigInt64Array(buffer, byteOffset, n);
    default:
      return new Float64Array(buffer, byteOffset, n);
  }
}

/** Decodes the elements of a scanned array (its bytes were checked by scanArray). */
function decodeItems(ctx: ParseContext, span: ArraySpan, depth: number): GgufArrayItems {
  const { itemType, length: n, bytes } = span;
  if (itemType === GgufValueType.STRING) {
    const c = new Cursor(bytes);
    const out = new Array<string>(n);
    for (let i = 0; i < n; i++) out[i] = readString(c, ctx);
    return out;
  }
  if (itemType === GgufValueType.ARRAY) {
    const c = new Cursor(bytes);
    const out = new Array<GgufArray>(n);
    for (let i = 0; i < n; i++) out[i] = lazyArray(ctx, scanArray(c, ctx, depth + 1), depth + 1);
    return out;
  }
  return numericItems(itemType, n, bytes);
}

function lazyArray(ctx: ParseContext, span: ArraySpan, depth: number): GgufArray {
  return GgufArray.lazy(span.itemType, span.length, () => decodeItems(ctx, span, depth));
}

function readValue(c: Cursor, ctx: ParseContext, type: number): GgufValue {
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
      const span = scanArray(c, ctx, 0);
      // One copy of the elements' bytes, so the (possibly much larger) read buffer is not kept alive.
      return lazyArray(ctx, { ...span, bytes: new Uint8Array(span.bytes) }, 0);
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
    const value = readValue(c, ctx, type);
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

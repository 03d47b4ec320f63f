/**
 * Streaming GGUF (v3) writer. The header (metadata + tensor infos) is written first, from the list
 * of tensors the caller declares up front; then tensor data is written one tensor at a time in that
 * order, each padded to the alignment, so converting never holds the whole model in memory.
 *
 * The file is written under a temporary name and renamed into place by `finish()`, so an
 * interrupted conversion never leaves a truncated .gguf that looks complete.
 */
import { randomBytes } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import nodePath from 'node:path';
import type { FileHandle } from 'node:fs/promises';
import { ChatGLMError } from '../errors.js';
import {
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_MAGIC,
  GgufArray,
  GgufValueType,
  ggmlTensorBytes,
  ggmlTypeName,
} from '../formats/gguf.js';
import type { GgufArrayItems, GgufMetadataEntry, GgufValue } from '../formats/gguf.js';

export interface GgufTensorSpec {
  name: string;
  /** Dimensions innermost first (a PyTorch [out, in] weight is written as [in, out]). */
  ne: number[];
  /** ggml type id. */
  type: number;
}

/** Typed metadata constructors, so callers say which GGUF type each value is stored as. */
export const gv = {
  str: (value: string): GgufMetadataEntry => ({ type: GgufValueType.STRING, value }),
  u32: (value: number): GgufMetadataEntry => ({ type: GgufValueType.UINT32, value }),
  i32: (value: number): GgufMetadataEntry => ({ type: GgufValueType.INT32, value }),
  f32: (value: number): GgufMetadataEntry => ({ type: GgufValueType.FLOAT32, value }),
  u64: (value: bigint): GgufMetadataEntry => ({ type: GgufValueType.UINT64, value }),
  bool: (value: boolean): GgufMetadataEntry => ({ type: GgufValueType.BOOL, value }),
  /** An array; `items` is held as GgufArray.of requires (a typed array for numeric element types). */
  arr: (itemType: GgufValueType, items: GgufArrayItems): GgufMetadataEntry => ({
    type: GgufValueType.ARRAY,
    value: GgufArray.of(itemType, items),
  }),
  strs: (items: readonly string[]): GgufMetadataEntry => gv.arr(GgufValueType.STRING, [...items]),
  f32s: (items: ArrayLike<number>): GgufMetadataEntry => gv.arr(GgufValueType.FLOAT32, Float32Array.from(items)),
  i32s: (items: ArrayLike<number>): GgufMetadataEntry => {
    // Int32Array.from would wrap out-of-range values silently.
    for (let i = 0; i < items.length; i++) asInt(`array item ${i}`, items[i]!, -0x80000000, 0x7fffffff);
    return gv.arr(GgufValueType.INT32, Int32Array.from(items));
  },
};

const utf8 = new TextEncoder();

/** Growable little-endian byte buffer for the header. */
class ByteSink {
  private buf = new Uint8Array(1 << 16);
  private view = new DataView(this.buf.buffer);
  len = 0;
  private reserve(n: number): void {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  u8(v: number): void {
    this.reserve(1);
    this.view.setUint8(this.len, v);
    this.len += 1;
  }
  i8(v: number): void {
    this.reserve(1);
    this.view.setInt8(this.len, v);
    this.len += 1;
  }
  u16(v: number): void {
    this.reserve(2);
    this.view.setUint16(this.len, v, true);
    this.len += 2;
  }
  i16(v: number): void {
    this.reserve(2);
    this.view.setInt16(this.len, v, true);
    this.len += 2;
  }
  u32(v: number): void {
    this.reserve(4);
    this.view.setUint32(this.len, v, true);
    this.len += 4;
  }
  i32(v: number): void {
    this.reserve(4);
    this.view.setInt32(this.len, v, true);
    this.len += 4;
  }
  f32(v: number): void {
    this.reserve(4);
    this.view.setFloat32(this.len, v, true);
    this.len += 4;
  }
  f64(v: number): void {
    this.reserve(8);
    this.view.setFloat64(this.len, v, true);
    this.len += 8;
  }
  u64(v: bigint): void {
    this.reserve(8);
    this.view.setBigUint64(this.len, v, true);
    this.len += 8;
  }
  i64(v: bigint): void {
    this.reserve(8);
    this.view.setBigInt64(this.len, v, true);
    this.len += 8;
  }
  bytes(b: Uint8Array): void {
    this.reserve(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
  }
  str(s: string): void {
    const b = utf8.encode(s);
    this.u64(BigInt(b.length));
    this.bytes(b);
  }
  pad(alignment: number): void {
    const n = (alignment - (this.len % alignment)) % alignment;
    this.reserve(n);
    this.buf.fill(0, this.len, this.len + n);
    this.len += n;
  }
  result(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }
}

function bad(key: string, want: string, value: unknown): ChatGLMError {
  return new ChatGLMError('BAD_ARGUMENT', `GGUF metadata ${key}: expected ${want}, got ${typeof value} ${String(value)}`);
}

function asInt(key: string, v: GgufValue, lo: number, hi: number): number {
  const n = typeof v === 'bigint' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < lo || n > hi) throw bad(key, `an integer in [${lo}, ${hi}]`, v);
  return n;
}

function asBig(key: string, v: GgufValue): bigint {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number' && Number.isSafeInteger(v)) return BigInt(v);
  throw bad(key, 'a 64-bit integer', v);
}

function writeValue(s: ByteSink, key: string, type: GgufValueType, v: GgufValue): void {
  switch (type) {
    case GgufValueType.UINT8:
      return s.u8(asInt(key, v, 0, 0xff));
    case GgufValueType.INT8:
      return s.i8(asInt(key, v, -0x80, 0x7f));
    case GgufValueType.UINT16:
      return s.u16(asInt(key, v, 0, 0xffff));
    case GgufValueType.INT16:
      return s.i16(asInt(key, v, -0x8000, 0x7fff));
    case GgufValueType.UINT32:
      return s.u32(asInt(key, v, 0, 0xffffffff));
    case GgufValueType.INT32:
      return s.i32(asInt(key, v, -0x80000000, 0x7fffffff));
    case GgufValueType.FLOAT32:
    case GgufValueType.FLOAT64:
      if (typeof v !== 'number') throw bad(key, 'a number', v);
      return type === GgufValueType.FLOAT32 ? s.f32(v) : s.f64(v);
    case GgufValueType.BOOL:
      if (typeof v !== 'boolean') throw bad(key, 'a boolean', v);
      return s.u8(v ? 1 : 0);
    case GgufValueType.STRING:
      if (typeof v !== 'string') throw bad(key, 'a string', v);
      return s.str(v);
    case GgufValueType.UINT64:
      return s.u64(BigInt.asUintN(64, asBig(key, v)));
    case GgufValueType.INT64:
      return s.i64(BigInt.asIntN(64, asBig(key, v)));
    case GgufValueType.ARRAY: {
      if (!(v instanceof GgufArray)) throw bad(key, 'an array', v);
      s.u32(v.itemType);
      const items = v.items;
      s.u64(BigInt(items.length));
      // GgufArray.of checked the element kinds; BOOL elements are held as 0/1 bytes.
      const bool = v.itemType === GgufValueType.BOOL;
      for (const item of items) writeValue(s, key, v.itemType, bool ? item === 1 : item);
      return;
    }
    default:
      throw new ChatGLMError('BAD_ARGUMENT', `GGUF metadata ${key}: unknown value type ${String(type)}`);
  }
}

export interface GgufWriterOptions {
  /** Metadata in file order. `general.alignment` is added when `alignment` is not the default. */
  metadata: Iterable<[string, GgufMetadataEntry]>;
  tensors: readonly GgufTensorSpec[];
  alignment?: number;
}

export class GgufWriter {
  private next = 0;
  private written = 0;
  private closed = false;

  private constructor(
    readonly path: string,
    private readonly tmpPath: string,
    private readonly fh: FileHandle,
    private readonly specs: readonly GgufTensorSpec[],
    private readonly sizes: number[],
    private readonly alignment: number,
  ) {}

  /** Creates the file and writes its header. Then call writeTensor for each tensor, in order. */
  static async create(path: string, options: GgufWriterOptions): Promise<GgufWriter> {
    const alignment = options.alignment ?? GGUF_DEFAULT_ALIGNMENT;
    if (!Number.isSafeInteger(alignment) || alignment <= 0 || alignment % 8 !== 0) {
      throw new ChatGLMError('BAD_ARGUMENT', `GGUF alignment ${alignment} must be a positive multiple of 8`);
    }
    const meta = new Map<string, GgufMetadataEntry>();
    for (const [k, v] of options.metadata) {
      if (meta.has(k)) throw new ChatGLMError('BAD_ARGUMENT', `GGUF metadata key ${k} is given twice`);
      meta.set(k, v);
    }
    if (alignment !== GGUF_DEFAULT_ALIGNMENT || meta.has('general.alignment')) meta.set('general.alignment', gv.u32(alignment));

    const sizes: number[] = [];
    const names = new Set<string>();
    for (const t of options.tensors) {
      if (names.has(t.name)) throw new ChatGLMError('BAD_ARGUMENT', `GGUF tensor ${t.name} is declared twice`);
      names.add(t.name);
      const size = ggmlTensorBytes(t.type, t.ne);
      if (size === undefined) {
        throw new ChatGLMError(
          'BAD_ARGUMENT',
          `GGUF tensor ${t.name}: dimensions [${t.ne.join(', ')}] do not fit type ${ggmlTypeName(t.type)} (the innermost must be a multiple of its block size)`,
        );
      }
      sizes.push(size);
    }

    const s = new ByteSink();
    s.u32(GGUF_MAGIC);
    s.u32(3);
    s.u64(BigInt(options.tensors.length));
    s.u64(BigInt(meta.size));
    for (const [k, e] of meta) {
      s.str(k);
      s.u32(e.type);
      writeValue(s, k, e.type, e.value);
    }
    let offset = 0;
    options.tensors.forEach((t, i) => {
      s.str(t.name);
      s.u32(t.ne.length);
      for (const d of t.ne) s.u64(BigInt(d));
      s.u32(t.type);
      s.u64(BigInt(offset));
      offset += Math.ceil(sizes[i]! / alignment) * alignment;
    });
    s.pad(alignment);

    // A fresh random name in the target's folder, created exclusively: 'wx' (O_CREAT|O_EXCL) never
    // opens an existing file and never follows a symlink planted at that name, so a predictable
    // temporary name cannot be used to overwrite another file.
    let tmpPath = '';
    let fh: FileHandle | undefined;
    for (let attempt = 0; fh === undefined; attempt++) {
      tmpPath = nodePath.join(nodePath.dirname(path), `.${nodePath.basename(path)}.partial-${randomBytes(8).toString('hex')}`);
      try {
        fh = await open(tmpPath, 'wx', 0o644);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST' && attempt < 5) continue;
        throw new ChatGLMError('FILE_NOT_FOUND', `cannot create ${path}: ${(err as Error).message} (check that the folder exists and is writable)`, {
          file: path,
          cause: err,
        });
      }
    }
    const w = new GgufWriter(path, tmpPath, fh, options.tensors, sizes, alignment);
    await w.write(s.result());
    return w;
  }

  /** The temporary file being written (renamed to `path` by finish, removed by abort). */
  get temporaryPath(): string {
    return this.tmpPath;
  }

  /** The tensor writeTensor expects next, or undefined when all are written. */
  get pending(): GgufTensorSpec | undefined {
    return this.specs[this.next];
  }

  /** Writes the data of the next declared tensor (its name is checked), padded to the alignment. */
  async writeTensor(name: string, data: Uint8Array): Promise<void> {
    const spec = this.specs[this.next];
    if (spec === undefined || spec.name !== name) {
      throw new ChatGLMError('BAD_ARGUMENT', `GGUF writer: expected tensor ${spec?.name ?? '(none left)'} next, got ${name}`);
    }
    const size = this.sizes[this.next]!;
    if (data.byteLength !== size) {
      throw new ChatGLMError(
        'BAD_ARGUMENT',
        `GGUF tensor ${name}: [${spec.ne.join(', ')}] as ${ggmlTypeName(spec.type)} takes ${size} bytes, got ${data.byteLength}`,
      );
    }
    await this.write(data);
    const padding = (this.alignment - (size % this.alignment)) % this.alignment;
    // Padding after the last tensor too, like gguf-py: ggml sums padded sizes for the data section.
    if (padding > 0) await this.write(new Uint8Array(padding));
    this.next++;
  }

  private async write(b: Uint8Array): Promise<void> {
    let done = 0;
    while (done < b.length) {
      const { bytesWritten } = await this.fh.write(b, done, b.length - done, this.written + done);
      done += bytesWritten;
    }
    this.written += b.length;
  }

  /** Checks every tensor was written, closes the file and moves it into place. */
  async finish(): Promise<void> {
    if (this.closed) return;
    if (this.next !== this.specs.length) {
      await this.abort();
      throw new ChatGLMError('BAD_ARGUMENT', `GGUF writer: ${this.specs.length - this.next} tensors were declared but not written`);
    }
    this.closed = true;
    await this.fh.close();
    await rename(this.tmpPath, this.path);
  }

  /** Closes and deletes the partial file. */
  async abort(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fh.close().catch(() => undefined);
    await rm(this.tmpPath, { force: true });
  }
}

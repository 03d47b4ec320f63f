/**
 * Minimal read-only ZIP reader for torch.save archives: central directory (with ZIP64), stored
 * (uncompressed) entries only, random-access reads of byte ranges through one file handle. torch
 * writes every entry uncompressed so that storages can be read (or mmapped) in place; a compressed
 * entry means the file was re-zipped by something else.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { ChatGLMError, badFormat, notFound } from '../errors.js';
import { readExactly } from './file-read.js';

export interface ZipEntry {
  name: string;
  /** 0 = stored; anything else is compressed and cannot be read here. */
  method: number;
  compressedSize: number;
  size: number;
  /** Offset of the entry's local file header. */
  localHeaderOffset: number;
}

const EOCD_SIG = 0x06054b50;
const ZIP64_LOCATOR_SIG = 0x07064b50;
const ZIP64_EOCD_SIG = 0x06064b50;
const CDIR_SIG = 0x02014b50;
const LOCAL_SIG = 0x04034b50;
const MAX_CENTRAL_DIRECTORY = 64 << 20;

function u64(view: DataView, off: number, file: string): number {
  const v = view.getBigUint64(off, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw badFormat(file, 'zip field larger than 2^53: corrupt archive');
  return Number(v);
}

export class ZipReader {
  readonly file: string;
  readonly size: number;
  private fh: FileHandle | undefined;
  private readonly byName: Map<string, ZipEntry>;
  private readonly dataOffsets = new Map<string, number>();

  private constructor(file: string, fh: FileHandle, size: number, entries: Map<string, ZipEntry>) {
    this.file = file;
    this.fh = fh;
    this.size = size;
    this.byName = entries;
  }

  /** True when the file ends with a ZIP end-of-central-directory record (cheap format sniffing). */
  static async isZip(file: string): Promise<boolean> {
    const fh = await open(file, 'r');
    try {
      const { size } = await fh.stat();
      return (await findEocd(fh, size)) !== undefined;
    } finally {
      await fh.close();
    }
  }

  static async open(file: string): Promise<ZipReader> {
    let fh: FileHandle;
    try {
      fh = await open(file, 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw notFound('file', file, 'check the path');
      throw new ChatGLMError('FILE_NOT_FOUND', `${file}: cannot open (${(e as Error).message})`, { file, cause: e });
    }
    try {
      const { size } = await fh.stat();
      const entries = await readCentralDirectory(fh, file, size);
      return new ZipReader(file, fh, size, entries);
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  entries(): ZipEntry[] {
    return [...this.byName.values()];
  }

  get(name: string): ZipEntry | undefined {
    return this.byName.get(name);
  }

  /** Reads `length` bytes starting `offset` bytes into a stored entry. */
  async read(entry: ZipEntry, offset = 0, length = entry.size - offset): Promise<Uint8Array> {
    if (entry.method !== 0) {
      throw new ChatGLMError(
        'UNSUPPORTED',
        `${this.file}: zip entry ${entry.name} is compressed (method ${entry.method}); torch.save stores entries uncompressed, so re-save the checkpoint with torch.save instead of re-zipping it`,
        { file: this.file },
      );
    }
    if (offset < 0 || length < 0 || offset + length > entry.size) {
      throw badFormat(this.file, `read of bytes ${offset}..${offset + length} is outside zip entry ${entry.name} (${entry.size} bytes)`);
    }
    const start = (await this.dataOffset(entry)) + offset;
    if (start + length > this.size) {
      throw badFormat(this.file, `zip entry ${entry.name} runs past the end of the file: the file is truncated (download it again)`);
    }
    return readExactly(this.handle(), this.file, start, length, `zip entry ${entry.name}`);
  }

  async close(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    if (fh !== undefined) await fh.close();
  }

  private handle(): FileHandle {
    if (this.fh === undefined) throw new ChatGLMError('BAD_ARGUMENT', `${this.file}: read after close`, { file: this.file });
    return this.fh;
  }

  /** The local header's name/extra lengths can differ from the central directory's (torch pads there). */
  private async dataOffset(entry: ZipEntry): Promise<number> {
    const cached = this.dataOffsets.get(entry.name);
    if (cached !== undefined) return cached;
    const h = await readExactly(this.handle(), this.file, entry.localHeaderOffset, 30, `local header of ${entry.name}`);
    const v = new DataView(h.buffer, h.byteOffset, h.byteLength);
    if (v.getUint32(0, true) !== LOCAL_SIG) throw badFormat(this.file, `bad local header for zip entry ${entry.name}: corrupt archive`);
    const off = entry.localHeaderOffset + 30 + v.getUint16(26, true) + v.getUint16(28, true);
    this.dataOffsets.set(entry.name, off);
    return off;
  }
}

/** Position of the end-of-central-directory record, searched backwards over a possible comment. */
async function findEocd(fh: FileHandle, size: number): Promise<number | undefined> {
  if (size < 22) return undefined;
  const tail = Math.min(size, 22 + 0xffff);
  const buf = new Uint8Array(tail);
  const { bytesRead } = await fh.read(buf, 0, tail, size - tail);
  if (bytesRead !== tail) return undefined;
  const v = new DataView(buf.buffer);
  for (let i = tail - 22; i >= 0; i--) {
    if (v.getUint32(i, true) === EOCD_SIG && i + 22 + v.getUint16(i + 20, true) === tail) return size - tail + i;
  }
  return undefined;
}

async function readCentralDirectory(fh: FileHandle, file: string, size: number): Promise<Map<string, ZipEntry>> {
  const eocdPos = await findEocd(fh, size);
  if (eocdPos === undefined) throw badFormat(file, 'not a zip archive (no end-of-central-directory record): truncated or not a torch checkpoint');
  const eocd = await readExactly(fh, file, eocdPos, 22, 'end of central directory');
  const ev = new DataView(eocd.buffer);
  let count = ev.getUint16(10, true);
  let cdSize = ev.getUint32(12, true);
  let cdOffset = ev.getUint32(16, true);
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    if (eocdPos < 20) throw badFormat(file, 'ZIP64 archive without a ZIP64 locator: corrupt archive');
    const loc = await readExactly(fh, file, eocdPos - 20, 20, 'ZIP64 locator');
    const lv = new DataView(loc.buffer);
    if (lv.getUint32(0, true) !== ZIP64_LOCATOR_SIG) throw badFormat(file, 'ZIP64 archive without a ZIP64 locator: corrupt archive');
    const recPos = u64(lv, 8, file);
    const rec = await readExactly(fh, file, recPos, 56, 'ZIP64 end of central directory');
    const rv = new DataView(rec.buffer);
    if (rv.getUint32(0, true) !== ZIP64_EOCD_SIG) throw badFormat(file, 'bad ZIP64 end-of-central-directory record: corrupt archive');
    count = u64(rv, 32, file);
    cdSize = u64(rv, 40, file);
    cdOffset = u64(rv, 48, file);
  }
  if (cdOffset + cdSize > size) throw badFormat(file, 'zip central directory lies outside the file: the file is truncated or corrupt');
  // torch archives list a few thousand entries; a larger directory (or more entries than it can
  // hold) is corruption, caught before reading it.
  if (cdSize > MAX_CENTRAL_DIRECTORY || count * 46 > cdSize) {
    throw badFormat(file, `zip central directory of ${cdSize} bytes for ${count} entries: corrupt archive`);
  }
  const cd = await readExactly(fh, file, cdOffset, cdSize, 'zip central directory');
  const v = new DataView(cd.buffer);
  const entries = new Map<string, ZipEntry>();
  const utf8 = new TextDecoder();
  let p = 0;
  for (let i = 0; i < count; i++) {
    if (p + 46 > cdSize || v.getUint32(p, true) !== CDIR_SIG) throw badFormat(file, 'corrupt zip central directory');
    const method = v.getUint16(p + 10, true);
    let compressedSize = v.getUint32(p + 20, true);
    let uncompressedSize = v.getUint32(p + 24, true);
    const nameLen = v.getUint16(p + 28, true);
    const extraLen = v.getUint16(p + 30, true);
    const commentLen = v.getUint16(p + 32, true);
    let localHeaderOffset = v.getUint32(p + 42, true);
    if (p + 46 + nameLen + extraLen + commentLen > cdSize) throw badFormat(file, 'corrupt zip central directory');
    const name = utf8.decode(cd.subarray(p + 46, p + 46 + nameLen));
    // ZIP64 extra field: 64-bit values for exactly those fields saturated at 0xFFFFFFFF, in order.
    let e = p + 46 + nameLen;
    const extraEnd = e + extraLen;
    while (e + 4 <= extraEnd) {
      const id = v.getUint16(e, true);
      const len = v.getUint16(e + 2, true);
      if (e + 4 + len > extraEnd) throw badFormat(file, `zip entry ${name}: an extra field runs past its entry: corrupt archive`);
      if (id === 0x0001) {
        let q = e + 4;
        const fieldEnd = e + 4 + len;
        const next64 = (): number => {
          if (q + 8 > fieldEnd) throw badFormat(file, `zip entry ${name}: the ZIP64 extra field is cut short: corrupt archive`);
          const x = u64(v, q, file);
          q += 8;
          return x;
        };
        if (uncompressedSize === 0xffffffff) uncompressedSize = next64();
        if (compressedSize === 0xffffffff) compressedSize = next64();
        if (localHeaderOffset === 0xffffffff) localHeaderOffset = next64();
      }
      e += 4 + len;
    }
    if (entries.has(name)) throw badFormat(file, `zip entry ${name} appears twice: corrupt archive`);
    if (localHeaderOffset + 30 > size) throw badFormat(file, `zip entry ${name} starts past the end of the file: the file is truncated or corrupt`);
    entries.set(name, { name, method, compressedSize, size: uncompressedSize, localHeaderOffset });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return entries;
}

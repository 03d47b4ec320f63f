/**
 * Writes torch.save-compatible `.bin` checkpoints (zip format, pickle protocol 2, stored entries,
 * 64-byte aligned storages) so tests can build PyTorch-style model directories without Python.
 * `torch.load` reads the output; options exist to exercise the reader's less common paths
 * (storage offsets, parameters, ZIP64).
 */
import { open, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { ChatGLMError } from '../../src/errors.js';
import type { DType } from '../../src/formats/tensor-source.js';
import { encodeTensor, type TensorToWrite } from './safetensors-writer.js';
import { SAFETENSORS_DTYPE_SIZE, elementCount } from '../../src/formats/safetensors.js';

export interface TorchTensorToWrite extends TensorToWrite {
  /**
   * Elements of (zero) storage placed before the tensor's data, so the tensor is a view with a
   * non-zero storage offset, as `base[2:]` would be.
   */
  storageOffset?: number;
  /** Pickle it as an nn.Parameter (torch._utils._rebuild_parameter) instead of a plain tensor. */
  parameter?: boolean;
}

export interface TorchWriteOptions {
  /** Top-level folder in the zip; torch uses the file name without extension. */
  prefix?: string;
  /** Write ZIP64 records even though the file is small (to test the reader). */
  zip64?: boolean;
}

const STORAGE_NAME: Partial<Record<DType, string>> = {
  F32: 'FloatStorage',
  F16: 'HalfStorage',
  BF16: 'BFloat16Storage',
  I32: 'IntStorage',
  I64: 'LongStorage',
  I8: 'CharStorage',
  U8: 'ByteStorage',
};

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(data: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = CRC_TABLE[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** Emits pickle protocol 2 opcodes. */
class PickleWriter {
  private readonly parts: number[] = [];
  op(...bytes: number[]): this {
    this.parts.push(...bytes);
    return this;
  }
  global(module: string, name: string): this {
    return this.op(0x63, ...Buffer.from(`${module}\n${name}\n`, 'latin1'));
  }
  str(s: string): this {
    const b = Buffer.from(s, 'utf8');
    const len = Buffer.alloc(4);
    len.writeUInt32LE(b.length);
    return this.op(0x58, ...len, ...b);
  }
  int(n: number): this {
    if (n >= 0 && n < 256) return this.op(0x4b, n);
    if (n >= 0 && n < 65536) return this.op(0x4d, n & 0xff, n >>> 8);
    if (n >= -(2 ** 31) && n < 2 ** 31) {
      const b = Buffer.alloc(4);
      b.writeInt32LE(n);
      return this.op(0x4a, ...b);
    }
    // LONG1: minimal two's-complement little-endian.
    let v = BigInt(n);
    const out: number[] = [];
    while (true) {
      out.push(Number(v & 0xffn));
      v >>= 8n;
      const sign = (out[out.length - 1]! & 0x80) !== 0;
      if ((v === 0n && !sign) || (v === -1n && sign)) break;
    }
    return this.op(0x8a, out.length, ...out);
  }
  tuple(items: number[]): this {
    this.op(0x28);
    for (const i of items) this.int(i);
    return this.op(0x74);
  }
  bytes(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

/** Writes `tensors` as a state dict (an OrderedDict of tensors) with torch.save's layout. */
export async function writeTorchBin(file: string, tensors: readonly TorchTensorToWrite[], options: TorchWriteOptions = {}): Promise<void> {
  const prefix = options.prefix ?? (path.basename(file).replace(/\.[^.]*$/, '') || 'archive');
  const p = new PickleWriter();
  p.op(0x80, 2).global('collections', 'OrderedDict').op(0x29, 0x52, 0x28); // OrderedDict(), MARK
  const storages: Uint8Array[] = [];
  for (const t of tensors) {
    const storageName = STORAGE_NAME[t.dtype];
    const size = SAFETENSORS_DTYPE_SIZE[t.dtype];
    if (storageName === undefined || size === undefined) throw new ChatGLMError('UNSUPPORTED', `tensor ${t.name}: dtype ${t.dtype} cannot be written to a torch .bin`);
    const data = encodeTensor(t);
    const offset = t.storageOffset ?? 0;
    const storage = new Uint8Array(offset * size + data.byteLength);
    storage.set(data, offset * size);
    const key = String(storages.length);
    storages.push(storage);
    const stride: number[] = [];
    let s = 1;
    for (let i = t.shape.length - 1; i >= 0; i--) {
      stride.unshift(s);
      s *= t.shape[i]!;
    }
    p.str(t.name);
    if (t.parameter === true) p.global('torch._utils', '_rebuild_parameter').op(0x28);
    p.global('torch._utils', '_rebuild_tensor_v2').op(0x28);
    p.op(0x28).str('storage').global('torch', storageName).str(key).str('cpu').int(offset + elementCount(t.shape)).op(0x74, 0x51);
    p.int(offset).tuple(t.shape).tuple(stride).op(0x89);
    p.global('collections', 'OrderedDict').op(0x29, 0x52); // backward hooks
    p.op(0x74, 0x52); // TUPLE, REDUCE
    if (t.parameter === true) p.op(0x89).global('collections', 'OrderedDict').op(0x29, 0x52, 0x74, 0x52);
  }
  p.op(0x75, 0x2e); // SETITEMS, STOP

  const entries: [string, Uint8Array][] = [
    [`${prefix}/data.pkl`, p.bytes()],
    [`${prefix}/byteorder`, Buffer.from('little')],
    ...storages.map((s, i): [string, Uint8Array] => [`${prefix}/data/${i}`, s]),
    [`${prefix}/version`, Buffer.from('3\n')],
  ];
  await mkdir(path.dirname(path.resolve(file)), { recursive: true });
  await writeStoredZip(file, entries, options.zip64 === true);
}

async function writeStoredZip(file: string, entries: [string, Uint8Array][], zip64: boolean): Promise<void> {
  const fh = await open(file, 'w');
  try {
    let pos = 0;
    const central: Buffer[] = [];
    for (const [name, data] of entries) {
      const nameBytes = Buffer.from(name, 'utf8');
      const crc = crc32(data);
      const z64Local = zip64 ? 20 : 0;
      // torch pads the local extra field so every entry's data starts 64-byte aligned.
      const base = pos + 30 + nameBytes.length + z64Local + 4;
      const pad = (64 - (base % 64)) % 64;
      const local = Buffer.alloc(30 + nameBytes.length + z64Local + 4 + pad);
      local.writeUInt32LE(0x04034b50, 0);
      local.writeUInt16LE(zip64 ? 45 : 20, 4);
      local.writeUInt16LE(0x21, 12); // date 1980-01-01
      local.writeUInt32LE(crc, 14);
      local.writeUInt32LE(zip64 ? 0xffffffff : data.length, 18);
      local.writeUInt32LE(zip64 ? 0xffffffff : data.length, 22);
      local.writeUInt16LE(nameBytes.length, 26);
      local.writeUInt16LE(z64Local + 4 + pad, 28);
      nameBytes.copy(local, 30);
      let e = 30 + nameBytes.length;
      if (zip64) {
        local.writeUInt16LE(0x0001, e);
        local.writeUInt16LE(16, e + 2);
        local.writeBigUInt64LE(BigInt(data.length), e + 4);
        local.writeBigUInt64LE(BigInt(data.length), e + 12);
        e += 20;
      }
      local.writeUInt16LE(0x4246, e); // "FB" padding field, as torch writes
      local.writeUInt16LE(pad, e + 2);
      const headerOffset = pos;
      await fh.write(local);
      if (data.length > 0) await fh.write(data);
      pos += local.length + data.length;

      const z64Central = zip64 ? 28 : 0;
      const c = Buffer.alloc(46 + nameBytes.length + z64Central);
      c.writeUInt32LE(0x02014b50, 0);
      c.writeUInt16LE(zip64 ? 45 : 20, 4);
      c.writeUInt16LE(zip64 ? 45 : 20, 6);
      c.writeUInt16LE(0x21, 14);
      c.writeUInt32LE(crc, 16);
      c.writeUInt32LE(zip64 ? 0xffffffff : data.length, 20);
      c.writeUInt32LE(zip64 ? 0xffffffff : data.length, 24);
      c.writeUInt16LE(nameBytes.length, 28);
      c.writeUInt16LE(z64Central, 30);
      c.writeUInt32LE(zip64 ? 0xffffffff : headerOffset, 42);
      nameBytes.copy(c, 46);
      if (zip64) {
        const q = 46 + nameBytes.length;
        c.writeUInt16LE(0x0001, q);
        c.writeUInt16LE(24, q + 2);
        c.writeBigUInt64LE(BigInt(data.length), q + 4);
        c.writeBigUInt64LE(BigInt(data.length), q + 12);
        c.writeBigUInt64LE(BigInt(headerOffset), q + 20);
      }
      central.push(c);
    }
    const cd = Buffer.concat(central);
    const cdOffset = pos;
    await fh.write(cd);
    pos += cd.length;
    if (zip64) {
      const rec = Buffer.alloc(56 + 20);
      rec.writeUInt32LE(0x06064b50, 0);
      rec.writeBigUInt64LE(44n, 4);
      rec.writeUInt16LE(45, 12);
      rec.writeUInt16LE(45, 14);
      rec.writeBigUInt64LE(BigInt(entries.length), 24);
      rec.writeBigUInt64LE(BigInt(entries.length), 32);
      rec.writeBigUInt64LE(BigInt(cd.length), 40);
      rec.writeBigUInt64LE(BigInt(cdOffset), 48);
      rec.writeUInt32LE(0x07064b50, 56);
      rec.writeBigUInt64LE(BigInt(pos), 64);
      rec.writeUInt32LE(1, 72);
      await fh.write(rec);
    }
    const eocd = Buffer.alloc(22);
    eocd.writeUInt32LE(0x06054b50, 0);
    eocd.writeUInt16LE(zip64 ? 0xffff : entries.length, 8);
    eocd.writeUInt16LE(zip64 ? 0xffff : entries.length, 10);
    eocd.writeUInt32LE(zip64 ? 0xffffffff : cd.length, 12);
    eocd.writeUInt32LE(zip64 ? 0xffffffff : cdOffset, 16);
    await fh.write(eocd);
  } finally {
    await fh.close();
  }
}

/**
 * Hand assembly of the small files the hardening tests and the fuzz suite craft: stored ZIP
 * archives (with control over every central-directory field), torch state-dict pickles and byte
 * buffers. Written from the format specifications, independent of the project's writers.
 */

/** A little-endian byte buffer builder. */
export class Bytes {
  private parts: number[] = [];
  u8(v: number): this {
    this.parts.push(v & 0xff);
    return this;
  }
  u16(v: number): this {
    return this.u8(v).u8(v >>> 8);
  }
  u32(v: number): this {
    for (let i = 0; i < 4; i++) this.parts.push((v >>> (8 * i)) & 0xff);
    return this;
  }
  u64(v: bigint | number): this {
    let b = BigInt(v);
    for (let i = 0; i < 8; i++) {
      this.parts.push(Number(b & 0xffn));
      b >>= 8n;
    }
    return this;
  }
  raw(b: ArrayLike<number>): this {
    for (let i = 0; i < b.length; i++) this.parts.push(b[i]! & 0xff);
    return this;
  }
  text(s: string): this {
    return this.raw(Buffer.from(s, 'utf8'));
  }
  /** GGUF string: u64 length + UTF-8. */
  str(s: string): this {
    const b = Buffer.from(s, 'utf8');
    return this.u64(b.length).raw(b);
  }
  pad(to: number): this {
    while (this.parts.length % to !== 0) this.parts.push(0);
    return this;
  }
  get length(): number {
    return this.parts.length;
  }
  bytes(): Uint8Array {
    return Uint8Array.from(this.parts);
  }
}

export interface ZipFile {
  name: string;
  data: Uint8Array;
  /** Central-directory overrides, for crafting corrupt archives. */
  cdSize?: number;
  cdExtra?: Uint8Array;
}

/** A stored (uncompressed) ZIP archive; CRCs are left 0 (readers of torch archives ignore them). */
export function storedZip(files: readonly ZipFile[]): Uint8Array {
  const out = new Bytes();
  const offsets: number[] = [];
  for (const f of files) {
    offsets.push(out.length);
    const name = Buffer.from(f.name, 'utf8');
    out.u32(0x04034b50).u16(20).u16(0).u16(0).u16(0).u16(0).u32(0).u32(f.data.length).u32(f.data.length).u16(name.length).u16(0).raw(name).raw(f.data);
  }
  const cdStart = out.length;
  files.forEach((f, i) => {
    const name = Buffer.from(f.name, 'utf8');
    const extra = f.cdExtra ?? new Uint8Array(0);
    const size = f.cdSize ?? f.data.length;
    out.u32(0x02014b50).u16(20).u16(20).u16(0).u16(0).u16(0).u16(0).u32(0).u32(size).u32(size);
    out.u16(name.length).u16(extra.length).u16(0).u16(0).u16(0).u32(0).u32(offsets[i]!).raw(name).raw(extra);
  });
  const cdSize = out.length - cdStart;
  out.u32(0x06054b50).u16(0).u16(0).u16(files.length).u16(files.length).u32(cdSize).u32(cdStart).u16(0);
  return out.bytes();
}

/** Pickle opcodes for a torch state dict {name: FloatStorage tensor of `shape` / `stride`}. */
export function stateDictPickle(tensors: ReadonlyArray<{ name: string; shape: number[]; stride: number[]; key: string; numel: number }>): Uint8Array {
  const b = new Bytes();
  const uni = (s: string): void => {
    const t = Buffer.from(s, 'utf8');
    b.u8(0x8c).u8(t.length).raw(t);
  };
  const int = (v: number): void => {
    if (v >= 0 && v < 256) b.u8(0x4b).u8(v);
    else {
      // LONG1 with 8 bytes, two's complement little-endian.
      b.u8(0x8a).u8(8).u64(BigInt.asUintN(64, BigInt(v)));
    }
  };
  b.u8(0x80).u8(2); // PROTO 2
  b.u8(0x7d); // EMPTY_DICT
  b.u8(0x28); // MARK
  for (const t of tensors) {
    uni(t.name);
    b.u8(0x63).text('torch._utils\n_rebuild_tensor_v2\n'); // GLOBAL
    b.u8(0x28); // MARK (args)
    b.u8(0x28); // MARK (persistent id tuple)
    uni('storage');
    b.u8(0x63).text('torch\nFloatStorage\n');
    uni(t.key);
    uni('cpu');
    int(t.numel);
    b.u8(0x74); // TUPLE
    b.u8(0x51); // BINPERSID
    int(0); // storage offset
    b.u8(0x28);
    for (const d of t.shape) int(d);
    b.u8(0x74);
    b.u8(0x28);
    for (const d of t.stride) int(d);
    b.u8(0x74);
    b.u8(0x89); // requires_grad False
    b.u8(0x63).text('collections\nOrderedDict\n');
    b.u8(0x29); // EMPTY_TUPLE
    b.u8(0x52); // REDUCE
    b.u8(0x74); // TUPLE (args)
    b.u8(0x52); // REDUCE
  }
  b.u8(0x75); // SETITEMS
  b.u8(0x2e); // STOP
  return b.bytes();
}

/** A torch.save zip with the given pickle and storages (key -> little-endian f32 values). */
export function torchZip(pickle: Uint8Array, storages: Record<string, Float32Array>): Uint8Array {
  const files: ZipFile[] = [
    { name: 'archive/data.pkl', data: pickle },
    { name: 'archive/byteorder', data: Buffer.from('little') },
  ];
  for (const [k, v] of Object.entries(storages)) files.push({ name: `archive/data/${k}`, data: new Uint8Array(v.buffer, v.byteOffset, v.byteLength) });
  return storedZip(files);
}

/**
 * Minimal protobuf wire-format reader and writer: just what SentencePiece's ModelProto needs
 * (varints, 32-bit floats, length-delimited fields). Hand-written so the tokenizer has no
 * runtime dependency and so malformed files fail with a clear message instead of a crash.
 */

export const WIRE_VARINT = 0;
export const WIRE_I64 = 1;
export const WIRE_LEN = 2;
export const WIRE_I32 = 5;

/** Thrown by ProtoReader; callers turn it into a ChatGLMError naming the file. */
export class ProtoError extends Error {}

export class ProtoReader {
  pos: number;
  private readonly view: DataView;

  constructor(
    readonly buf: Uint8Array,
    start = 0,
    readonly end = buf.length,
  ) {
    this.pos = start;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  /** Unsigned varint up to 2^53; protobuf int32 negatives come back as large values, see int32(). */
  varint(): number {
    let result = 0;
    let mul = 1;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new ProtoError(`truncated varint at byte ${this.pos}`);
      const b = this.buf[this.pos++]!;
      result += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) return result;
      mul *= 128;
    }
    throw new ProtoError(`varint longer than 10 bytes at byte ${this.pos}`);
  }

  /** int32 fields store negatives as 10-byte two's-complement varints: keep the low 32 bits. */
  int32(): number {
    let lo = 0;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new ProtoError(`truncated varint at byte ${this.pos}`);
      const b = this.buf[this.pos++]!;
      if (i < 5) lo |= (b & 0x7f) << (7 * i);
      if ((b & 0x80) === 0) return lo | 0;
    }
    throw new ProtoError(`varint longer than 10 bytes at byte ${this.pos}`);
  }

  /** Field tag; returns [fieldNumber, wireType]. */
  tag(): [number, number] {
    const t = this.varint();
    const field = Math.floor(t / 8);
    if (field === 0) throw new ProtoError(`field number 0 at byte ${this.pos}`);
    return [field, t & 7];
  }

  float32(): number {
    if (this.pos + 4 > this.end) throw new ProtoError(`truncated float at byte ${this.pos}`);
    const v = this.view.getFloat32(this.pos, true);
    this.pos += 4;
    return v;
  }

  /** Returns [start, end) of a length-delimited payload and moves past it. */
  lenDelimited(): [number, number] {
    const len = this.varint();
    const start = this.pos;
    if (start + len > this.end) {
      throw new ProtoError(`length-delimited field of ${len} bytes at byte ${start} runs past the end (${this.end})`);
    }
    this.pos = start + len;
    return [start, start + len];
  }

  bytes(): Uint8Array {
    const [s, e] = this.lenDelimited();
    return this.buf.subarray(s, e);
  }

  string(): string {
    return utf8Decoder.decode(this.bytes());
  }

  skip(wire: number): void {
    switch (wire) {
      case WIRE_VARINT:
        this.varint();
        return;
      case WIRE_I64:
        this.advance(8);
        return;
      case WIRE_LEN:
        this.lenDelimited();
        return;
      case WIRE_I32:
        this.advance(4);
        return;
      default:
        throw new ProtoError(`unsupported wire type ${wire} at byte ${this.pos}`);
    }
  }

  private advance(n: number): void {
    if (this.pos + n > this.end) throw new ProtoError(`truncated field at byte ${this.pos}`);
    this.pos += n;
  }
}

const utf8Decoder = new TextDecoder('utf-8', { ignoreBOM: true });
const utf8Encoder = new TextEncoder();

/** Append-only protobuf writer. Nested messages are written as separate writers and embedded. */
export class ProtoWriter {
  private chunks: Uint8Array[] = [];
  private cur = new Uint8Array(256);
  private len = 0;

  private ensure(n: number): void {
    if (this.len + n <= this.cur.length) return;
    this.chunks.push(this.cur.subarray(0, this.len));
    this.cur = new Uint8Array(Math.max(n, 64 * 1024));
    this.len = 0;
  }

  private rawVarint(v: number): void {
    this.ensure(10);
    if (v < 0) {
      // Negative int32/int64: 10-byte two's complement, as protobuf does.
      let big = BigInt.asUintN(64, BigInt(v));
      for (let i = 0; i < 9; i++) {
        this.cur[this.len++] = Number(big & 0x7fn) | 0x80;
        big >>= 7n;
      }
      this.cur[this.len++] = Number(big);
      return;
    }
    while (v >= 128) {
      this.cur[this.len++] = (v % 128) | 0x80;
      v = Math.floor(v / 128);
    }
    this.cur[this.len++] = v;
  }

  private rawTag(field: number, wire: number): void {
    this.rawVarint(field * 8 + wire);
  }

  varint(field: number, v: number): this {
    this.rawTag(field, WIRE_VARINT);
    this.rawVarint(v);
    return this;
  }

  bool(field: number, v: boolean): this {
    return this.varint(field, v ? 1 : 0);
  }

  float32(field: number, v: number): this {
    this.rawTag(field, WIRE_I32);
    this.ensure(4);
    new DataView(this.cur.buffer, this.cur.byteOffset).setFloat32(this.len, v, true);
    this.len += 4;
    return this;
  }

  bytes(field: number, data: Uint8Array): this {
    this.rawTag(field, WIRE_LEN);
    this.rawVarint(data.length);
    this.ensure(data.length);
    this.cur.set(data, this.len);
    this.len += data.length;
    return this;
  }

  string(field: number, s: string): this {
    return this.bytes(field, utf8Encoder.encode(s));
  }

  message(field: number, inner: ProtoWriter): this {
    return this.bytes(field, inner.finish());
  }

  finish(): Uint8Array {
    const parts = [...this.chunks, this.cur.subarray(0, this.len)];
    const total = parts.reduce((n, p) => n + p.length, 0);
    const out = new Uint8Array(total);
    let off = 0;
    for (const p of parts) {
      out.set(p, off);
      off += p.length;
    }
    return out;
  }
}

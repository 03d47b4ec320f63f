/**
 * Deterministic mutations. Byte-level: bit flips, interesting integers written over 1/2/4/8 bytes,
 * deletions, insertions, duplications, truncation. Structure-aware: GGUF length/count/type/offset
 * fields found by walking the header; safetensors header JSON and its length prefix; the pickle
 * inside a torch zip (the archive rebuilt around it) and the zip's own directory fields;
 * SentencePiece protobuf fields; tiktoken lines; JSON trees (messages, config); tool-call text
 * with the tokens that matter to the parsers.
 */
import { parseModelProto, writeModelProto, type ModelProtoFields } from '../../src/tokenizer/sentencepiece-model.js';
import type { Seed } from './seeds.js';
import { storedZip, type ZipFile } from './craft.js';

/** mulberry32: small, fast, deterministic. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

const INTERESTING_64: readonly bigint[] = [
  0n, 1n, 2n, 7n, 8n, 31n, 32n, 255n, 256n, 0x7fffn, 0xffffn, 0x10000n, 0x7fffffffn, 0x80000000n, 0xffffffffn, 0x100000000n,
  300_000_000n, 3_000_000_000n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 62n, 2n ** 63n - 1n, 2n ** 64n - 1n, 100_000_000n, 1_000_000n,
];

function writeLE(b: Uint8Array, at: number, width: number, v: bigint): void {
  for (let i = 0; i < width && at + i < b.length; i++) b[at + i] = Number((v >> BigInt(8 * i)) & 0xffn);
}

/** One to four byte-level mutations. */
export function mutateBytes(input: Uint8Array, r: Rng): Uint8Array {
  let b: Uint8Array = input.slice();
  const n = 1 + r.int(4);
  for (let k = 0; k < n; k++) {
    if (b.length === 0) {
      b = Uint8Array.of(r.int(256));
      continue;
    }
    const at = r.int(b.length);
    switch (r.int(8)) {
      case 0:
        b[at] = b[at]! ^ (1 << r.int(8));
        break;
      case 1:
        b[at] = r.int(256);
        break;
      case 2:
        writeLE(b, at, r.pick([1, 2, 4, 8]), r.pick(INTERESTING_64));
        break;
      case 3: {
        const len = 1 + r.int(Math.min(64, b.length - at));
        b = concat(b.subarray(0, at), b.subarray(at + len));
        break;
      }
      case 4: {
        const ins = new Uint8Array(1 + r.int(16)).map(() => r.int(256));
        b = concat(b.subarray(0, at), ins, b.subarray(at));
        break;
      }
      case 5: {
        const len = 1 + r.int(Math.min(256, b.length - at));
        const dst = r.int(b.length);
        b = concat(b.subarray(0, dst), b.subarray(at, at + len), b.subarray(dst));
        break;
      }
      case 6:
        b = b.slice(0, at);
        break;
      default:
        // Overwrite a run with one repeated byte (long "lengths", long strings of one char).
        b.fill(r.pick([0, 0xff, 0x7f, 0x80, 0x41]), at, Math.min(b.length, at + 1 + r.int(16)));
    }
  }
  return b;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Positions of the GGUF header's numeric fields: [offset, width] of every length, count, type, dim and offset. */
export function ggufFields(b: Uint8Array): Array<[number, number]> {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out: Array<[number, number]> = [];
  let p = 8;
  const u64 = (): number => {
    out.push([p, 8]);
    const x = Number(v.getBigUint64(p, true));
    p += 8;
    return x;
  };
  const u32 = (): number => {
    out.push([p, 4]);
    const x = v.getUint32(p, true);
    p += 4;
    return x;
  };
  const str = (): void => {
    p += u64();
  };
  const SIZES: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
  const value = (type: number): void => {
    if (type === 8) str();
    else if (type === 9) {
      const it = u32();
      const n = u64();
      for (let i = 0; i < n; i++) {
        if (it === 8 || it === 9) value(it);
        else p += SIZES[it] ?? 0;
      }
    } else {
      out.push([p, SIZES[type] ?? 1]);
      p += SIZES[type] ?? 0;
    }
  };
  try {
    const nt = u64();
    const nkv = u64();
    for (let i = 0; i < nkv; i++) {
      str();
      value(u32());
    }
    for (let i = 0; i < nt; i++) {
      str();
      const nd = u32();
      for (let d = 0; d < nd; d++) u64();
      u32();
      u64();
    }
  } catch {
    // The walk only runs on the valid seed; stop where it ends.
  }
  return out;
}

function mutateGguf(b: Uint8Array, r: Rng): Uint8Array {
  const fields = ggufFields(b);
  const out = b.slice();
  const n = 1 + r.int(3);
  for (let k = 0; k < n; k++) {
    const [at, width] = r.pick(fields);
    let cur = 0n;
    for (let i = width - 1; i >= 0; i--) cur = (cur << 8n) | BigInt(out[at + i] ?? 0);
    const choice = r.int(4);
    const val = choice === 0 ? cur + 1n : choice === 1 ? (cur > 0n ? cur - 1n : 0n) : choice === 2 ? cur * 2n + BigInt(r.int(64)) : r.pick(INTERESTING_64);
    writeLE(out, at, width, BigInt.asUintN(64, val));
  }
  return r.chance(0.3) ? mutateBytes(out, r) : out;
}

const WEIRD_JSON: readonly unknown[] = [
  null, -1, 0, 1e308, -1e308, 2 ** 53, 2 ** 64, 0.5, '', 'x'.repeat(100_000), '\u0000', '<|assistant|>', true, [], {}, [null], { __proto__: 1 },
  'constructor', Array.from({ length: 1000 }, () => 1),
];

function deepNest(depth: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = i % 2 === 0 ? [v] : { a: v };
  return v;
}

/** Replaces, deletes or duplicates a random node of a JSON tree. */
function mutateJsonTree(root: unknown, r: Rng): unknown {
  const nodes: Array<{ parent: Record<string, unknown> | unknown[]; key: string | number }> = [];
  const walk = (v: unknown): void => {
    if (v === null || typeof v !== 'object') return;
    if (Array.isArray(v)) v.forEach((x, i) => (nodes.push({ parent: v, key: i }), walk(x)));
    else for (const [k, x] of Object.entries(v)) nodes.push({ parent: v as Record<string, unknown>, key: k }), walk(x);
  };
  walk(root);
  if (nodes.length === 0) return r.pick(WEIRD_JSON);
  const { parent, key } = r.pick(nodes);
  const p = parent as Record<string | number, unknown>;
  switch (r.int(6)) {
    case 0:
      if (Array.isArray(parent)) parent.splice(key as number, 1);
      else delete p[key];
      break;
    case 1:
      p[key] = deepNest(r.pick([10, 100, 3000, 10_000]));
      break;
    case 2:
      if (Array.isArray(parent)) for (let i = 0; i < r.pick([2, 100, 2000]); i++) parent.push(structuredClone(parent[0]));
      else p[key] = [p[key], p[key]];
      break;
    case 3:
      if (!Array.isArray(parent)) Object.defineProperty(parent, '__proto__', { value: { polluted: true }, enumerable: true, configurable: true, writable: true });
      else p[key] = r.pick(WEIRD_JSON);
      break;
    default:
      p[key] = r.pick(WEIRD_JSON);
  }
  return root;
}

function mutateJsonText(text: string, r: Rng): string {
  let out: string;
  try {
    out = JSON.stringify(mutateJsonTree(JSON.parse(text), r));
  } catch {
    out = text;
  }
  // Sometimes a duplicate key or broken text on top.
  if (r.chance(0.15)) out = out.replace(/^\{"([^"]+)":/, '{"$1":1,"$1":');
  return out;
}

function mutateSafetensors(b: Uint8Array, r: Rng): Uint8Array {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const n = Number(v.getBigUint64(0, true));
  const header = Buffer.from(b.subarray(8, 8 + n)).toString('utf8');
  const data = b.subarray(8 + n);
  let json = header;
  if (r.chance(0.8)) {
    const tree = JSON.parse(header) as Record<string, { shape?: number[]; data_offsets?: number[]; dtype?: string }>;
    const names = Object.keys(tree).filter((k) => k !== '__metadata__');
    const t = tree[r.pick(names)]!;
    switch (r.int(5)) {
      case 0:
        t.shape = [r.pick([0, 1, 2 ** 31, 2 ** 53 - 1, -1]), ...(t.shape ?? [])];
        break;
      case 1:
        t.data_offsets = [r.int(4096), r.pick([0, 4, 2 ** 53, 300_000_000])];
        break;
      case 2:
        t.dtype = r.pick(['F64', 'I8', 'Q8_0', 'BOOL', '', 'F32']);
        break;
      case 3: {
        const other = tree[r.pick(names)]!;
        t.data_offsets = other.data_offsets!;
        break;
      }
      default:
        json = mutateJsonText(header, r);
    }
    if (json === header) json = JSON.stringify(tree);
  }
  const hj = Buffer.from(json, 'utf8');
  const out = new Uint8Array(8 + hj.length + data.length);
  new DataView(out.buffer).setBigUint64(0, r.chance(0.1) ? r.pick(INTERESTING_64) : BigInt(hj.length), true);
  out.set(hj, 8);
  out.set(data, 8 + hj.length);
  return out;
}

/** The stored entries of a zip we wrote (local headers walked from the start). */
function zipEntries(b: Uint8Array): ZipFile[] {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out: ZipFile[] = [];
  let p = 0;
  while (p + 30 <= b.length && v.getUint32(p, true) === 0x04034b50) {
    const size = v.getUint32(p + 18, true);
    const nameLen = v.getUint16(p + 26, true);
    const extraLen = v.getUint16(p + 28, true);
    const name = Buffer.from(b.subarray(p + 30, p + 30 + nameLen)).toString('utf8');
    const start = p + 30 + nameLen + extraLen;
    out.push({ name, data: b.slice(start, start + size) });
    p = start + size;
  }
  return out;
}

const PICKLE_OPS: readonly number[] = [0x28, 0x29, 0x4e, 0x5d, 0x7d, 0x65, 0x75, 0x61, 0x73, 0x74, 0x52, 0x62, 0x51, 0x30, 0x31, 0x32, 0x68, 0x71, 0x94, 0x93, 0x63, 0x2e];

function mutateTorch(b: Uint8Array, r: Rng): Uint8Array {
  const files = zipEntries(b);
  if (files.length === 0) return mutateBytes(b, r);
  const choice = r.int(4);
  if (choice === 0) return mutateBytes(b, r);
  const pkl = files.find((f) => f.name.endsWith('data.pkl'));
  if (choice === 1 && pkl !== undefined) {
    // Opcodes inserted into the pickle, or its bytes mutated; the archive stays well formed.
    let d = pkl.data;
    if (r.chance(0.5)) {
      const at = r.int(d.length);
      const ins = Uint8Array.from({ length: 1 + r.int(8) }, () => r.pick(PICKLE_OPS));
      d = concat(d.subarray(0, at), ins, d.subarray(at));
    } else d = mutateBytes(d, r);
    pkl.data = d;
    return storedZip(files);
  }
  if (choice === 2) {
    // Central-directory fields: a saturated size with a ZIP64 extra field, possibly cut short.
    const f = r.pick(files);
    f.cdSize = r.pick([0xffffffff, f.data.length + 1, 0, 2 ** 31]);
    if (r.chance(0.7)) {
      const len = r.pick([0, 4, 8, 16]);
      const extra = new Uint8Array(4 + len);
      const dv = new DataView(extra.buffer);
      dv.setUint16(0, 1, true);
      dv.setUint16(2, r.chance(0.2) ? 400 : len, true);
      for (let i = 4; i < extra.length; i++) extra[i] = r.int(256);
      f.cdExtra = extra;
    }
    return storedZip(files);
  }
  // Storages resized or dropped.
  const storage = files.filter((f) => f.name.includes('/data/'));
  if (storage.length > 0) {
    const s = r.pick(storage);
    if (r.chance(0.5)) s.data = s.data.subarray(0, r.int(s.data.length));
    else files.splice(files.indexOf(s), 1);
  }
  return storedZip(files);
}

function mutateSentencePiece(b: Uint8Array, r: Rng): Uint8Array {
  if (r.chance(0.4)) return mutateBytes(b, r);
  const m: ModelProtoFields = parseModelProto(b, 'seed');
  const i = r.int(m.pieces.length);
  switch (r.int(7)) {
    case 0:
      m.pieces[i]!.type = r.pick([0, 1, 2, 3, 4, 5, 6, 7, 99]);
      break;
    case 1:
      m.pieces[i]!.piece = r.pick(['', m.pieces[0]!.piece, 'x'.repeat(r.pick([100, 5000])), '\u0000', '<0xZZ>', '▁▁▁']);
      break;
    case 2:
      m.pieces[i]!.score = r.pick([NaN, Infinity, -Infinity, 1e30, -1e30, 0]);
      break;
    case 3:
      m.trainerSpec.modelType = r.pick([0, 1, 2, 3, 4, 9]);
      break;
    case 4:
      m.trainerSpec.byteFallback = !m.trainerSpec.byteFallback;
      m.trainerSpec.treatWhitespaceAsSuffix = r.chance(0.5);
      break;
    case 5: {
      // A character map: a random trie and replacements, some very long.
      const trie = Uint8Array.from({ length: 4 * (1 + r.int(8)) }, () => r.int(256));
      const repl = new Uint8Array(r.pick([4, 300, 60_000])).fill(0x61);
      const blob = new Uint8Array(4 + trie.length + repl.length + 1);
      new DataView(blob.buffer).setUint32(0, r.chance(0.8) ? trie.length : r.pick([0xffffffff, blob.length]), true);
      blob.set(trie, 4);
      blob.set(repl, 4 + trie.length);
      m.normalizerSpec.precompiledCharsmap = blob;
      m.normalizerSpec.removeExtraWhitespaces = r.chance(0.5);
      break;
    }
    default:
      // A chain of UNUSED pieces.
      for (let k = 2; k < r.pick([10, 200, 1200]); k++) m.pieces.push({ piece: 'q'.repeat(k), score: -1 - 1 / k, type: 5 });
      m.pieces.push({ piece: 'q', score: -1, type: 1 });
  }
  return writeModelProto(m);
}

function mutateTiktoken(b: Uint8Array, r: Rng): Uint8Array {
  if (r.chance(0.3)) return mutateBytes(b, r);
  const lines = Buffer.from(b).toString('utf8').split('\n');
  const i = r.int(lines.length - 1);
  const [tok, rank] = (lines[i] ?? '').split(' ');
  switch (r.int(5)) {
    case 0:
      lines[i] = `${tok} ${r.pick(['4294967295', '4294967296', '4294967290', '99999999999999999999', '-1', '0', String(lines.length + 5)])}`;
      break;
    case 1:
      lines.push(lines[i]!);
      break;
    case 2:
      lines[i] = `${Buffer.from('x'.repeat(r.pick([2, 1000]))).toString('base64')} ${rank}`;
      break;
    case 3:
      lines.splice(i, 1);
      break;
    default:
      lines[i] = `${r.pick(['!!!', '', '====', 'QQ=='])} ${rank}`;
  }
  return new Uint8Array(Buffer.from(lines.join('\n'), 'utf8'));
}

const TOOL_TOKENS: readonly string[] = [
  '<|assistant|>', '```', '```python\n', 'tool_call(', ')', '(', '[', ']', '{', '}', "'", '"', '\\', ',', '=', ':', '\n', '__proto__=',
  "'__proto__': ", '"__proto__": ', 'constructor=', '1e999', '-0', 'None', 'True', '0x10', '[[训练时间]]', '\u{1F600}', '\ud800', 'r"\\n"', "'''",
];

function mutateToolCall(text: string, r: Rng): string {
  let s = text;
  const n = 1 + r.int(4);
  for (let k = 0; k < n; k++) {
    const at = r.int(s.length + 1);
    switch (r.int(5)) {
      case 0:
        s = s.slice(0, at) + r.pick(TOOL_TOKENS) + s.slice(at);
        break;
      case 1:
        s = s.slice(0, at) + s.slice(at + 1 + r.int(8));
        break;
      case 2: {
        // Deep nesting or long runs.
        const t = r.pick(['[', '(', '{"a":', '`', "'", '\\']);
        s = s.slice(0, at) + t.repeat(r.pick([50, 500, 5000, 40_000])) + s.slice(at);
        break;
      }
      case 3:
        s = s.slice(0, at) + s.slice(0, at) + s.slice(at);
        break;
      default:
        s = s.slice(0, at);
    }
  }
  return s;
}

/** A mutated copy of `seed`'s data, mostly structure-aware, sometimes byte-level. */
export function mutate(seed: Seed, r: Rng): Uint8Array {
  const text = (): string => Buffer.from(seed.data).toString('utf8');
  const utf8 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'utf8'));
  const structured = r.chance(0.7);
  switch (seed.format) {
    case 'gguf':
      return structured ? mutateGguf(seed.data, r) : mutateBytes(seed.data, r);
    case 'safetensors':
      return structured ? mutateSafetensors(seed.data, r) : mutateBytes(seed.data, r);
    case 'torch':
      return mutateTorch(seed.data, r);
    case 'sentencepiece':
      return mutateSentencePiece(seed.data, r);
    case 'tiktoken':
      return mutateTiktoken(seed.data, r);
    case 'messages':
    case 'config':
      return structured ? utf8(mutateJsonText(text(), r)) : mutateBytes(seed.data, r);
    case 'toolcall':
      return structured ? utf8(mutateToolCall(text(), r)) : mutateBytes(seed.data, r);
  }
}

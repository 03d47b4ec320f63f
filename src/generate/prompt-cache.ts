/**
 * A prompt cache file: the keys/values of a prompt prefix written to disk, so that a long prefix
 * (a tools system prompt) is prefilled once per machine instead of once per conversation.
 *
 * The file is keyed by the model's identity (a content hash of the checkpoint files plus whatever
 * else changes the numbers, such as a load-time quantization) and holds the exact prefix ids. A file
 * for another model, another cache layout, or one that is truncated or corrupt is never used: the
 * load reports a one-line notice and leaves the sequence empty, so the caller just prefills as usual.
 *
 * Layout (little endian): magic "CGLMKVC1", u32 header length, header JSON, the ids as i32, then per
 * layer the keys and the values of the saved positions (the cache's own element type), then the
 * SHA-256 of everything before it.
 */
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { ChatGLMError } from '../errors.js';
import { GrowingKVCache } from '../backend/kv-storage.js';
import type { CachedSequence } from './sequence.js';

const MAGIC = 'CGLMKVC1';
const VERSION = 1;
const HASH_BYTES = 32;
/** Bytes hashed at each end of a checkpoint file: the header and tensor table, and the last weights. */
const SAMPLE_BYTES = 1 << 20;
/** A header larger than this is not one we wrote. */
const MAX_HEADER = 1 << 16;

type KVStorage = GrowingKVCache<Float32Array | Uint16Array | Uint8Array>;
type DType = 'f32' | 'f16' | 'f32-q8_0' | 'q8_0';
const ELEMENT_BYTES: Record<DType, number> = { f32: 4, f16: 2, 'f32-q8_0': 4, q8_0: 1 };

interface Header {
  version: number;
  model: string;
  /** Storage and rounding: f32 / f16 values, f32 rounded as q8_0 (reference), q8_0 blocks (native). */
  dtype: DType;
  layers: number;
  groups: number;
  headDim: number;
  /** Positions the fresh cache held before any id (a P-Tuning prefix); not stored in the file. */
  base: number;
  /** Number of ids (= stored positions). */
  n: number;
}

/** What a load did: `restored` ids are now in the sequence; `notice` says why a file was not used. */
export interface PromptCacheLoad {
  restored: number;
  notice?: string;
}

/**
 * The identity of a model file or directory: SHA-256 over each file's name, size, first and last
 * MiB (the header, tensor table and a sample of the weights), plus `extra` (the load options that
 * change the numbers, e.g. "backend=native quantize=q4_0"). The path and mtime are left out so a
 * copied model keeps its cache.
 */
export async function modelIdentity(modelPath: string, extra = ''): Promise<string> {
  const st = await fs.stat(modelPath);
  const files = st.isDirectory()
    ? (await fs.readdir(modelPath, { withFileTypes: true })).filter((e) => e.isFile()).map((e) => e.name).sort()
    : [path.basename(modelPath)];
  const dir = st.isDirectory() ? modelPath : path.dirname(modelPath);
  const h = createHash('sha256');
  h.update(`extra:${extra}\n`);
  for (const name of files) {
    const fh = await fs.open(path.join(dir, name), 'r');
    try {
      const size = (await fh.stat()).size;
      h.update(`file:${name}:${size}\n`);
      const head = Buffer.alloc(Math.min(size, SAMPLE_BYTES));
      await fh.read(head, 0, head.length, 0);
      h.update(head);
      if (size > SAMPLE_BYTES) {
        const tail = Buffer.alloc(Math.min(size - SAMPLE_BYTES, SAMPLE_BYTES));
        await fh.read(tail, 0, tail.length, size - tail.length);
        h.update(tail);
      }
    } finally {
      await fh.close();
    }
  }
  return h.digest('hex');
}

function storageOf(seq: CachedSequence): KVStorage {
  const cache = seq.cache;
  if (!(cache instanceof GrowingKVCache)) {
    throw new ChatGLMError('BAD_ARGUMENT', 'prompt cache: this KV cache type cannot be saved to a file');
  }
  return cache as KVStorage;
}

/**
 * The bytes of positions [start, start + n) of `cache`: per layer its keys, then its values (views
 * into the storage, so valid until the next reserve()). The file layout and the slot-to-slot copy
 * both walk the cache in this order.
 */
function kvSpans(cache: KVStorage, start: number, n: number): Uint8Array[] {
  const row = cache.rowSize;
  const spans: Uint8Array[] = [];
  for (let l = 0; l < cache.layers; l++) {
    for (const a of [cache.keysOf(l), cache.valuesOf(l)]) {
      const part = a.subarray(start * row, (start + n) * row);
      spans.push(new Uint8Array(part.buffer, part.byteOffset, part.byteLength));
    }
  }
  return spans;
}

function dtypeOf(cache: KVStorage): DType {
  const q8 = (cache as { kvType?: string }).kvType === 'q8_0';
  const a = cache.keysOf(0);
  if (a instanceof Float32Array) return q8 ? 'f32-q8_0' : 'f32';
  return a instanceof Uint8Array ? 'q8_0' : 'f16';
}

/**
 * Writes the first `n` ids of `seq` (default: all it holds) and their keys/values to `file`
 * (through a temporary file and a rename, so a reader never sees half a file).
 */
export async function savePromptCache(file: string, seq: CachedSequence, model: string, n: number = seq.ids.length): Promise<void> {
  const cache = storageOf(seq);
  if (!Number.isSafeInteger(n) || n < 0 || n > seq.ids.length) {
    throw new ChatGLMError('BAD_ARGUMENT', `prompt cache: cannot save ${n} ids, the sequence holds ${seq.ids.length}`);
  }
  const base = cache.length - seq.ids.length;
  const header: Header = {
    version: VERSION,
    model,
    dtype: dtypeOf(cache),
    layers: cache.layers,
    groups: cache.groups,
    headDim: cache.headDim,
    base,
    n,
  };
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  const lead = Buffer.alloc(MAGIC.length + 4);
  lead.write(MAGIC, 0, 'latin1');
  lead.writeUInt32LE(json.length, MAGIC.length);
  const parts: Uint8Array[] = [lead, json, new Uint8Array(Int32Array.from(seq.ids.slice(0, n)).buffer), ...kvSpans(cache, base, n)];
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  parts.push(h.digest());
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    await fs.writeFile(tmp, parts);
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw new ChatGLMError('BAD_ARGUMENT', `prompt cache: cannot write ${file}: ${(err as Error).message}`);
  }
}

function parseHeader(bytes: Buffer): { header: Header; offset: number } | string {
  if (bytes.length < MAGIC.length || bytes.toString('latin1', 0, MAGIC.length) !== MAGIC) return 'not a prompt cache file';
  if (bytes.length < MAGIC.length + 4 + HASH_BYTES) return 'the file is truncated or corrupt';
  const len = bytes.readUInt32LE(MAGIC.length);
  const start = MAGIC.length + 4;
  if (len > MAX_HEADER || start + len + HASH_BYTES > bytes.length) return 'the file is truncated or corrupt';
  let h: unknown;
  try {
    h = JSON.parse(bytes.toString('utf8', start, start + len));
  } catch {
    return 'the file is corrupt (bad header)';
  }
  const o = h as Partial<Header>;
  const ints = [o.layers, o.groups, o.headDim, o.base, o.n];
  if (
    typeof h !== 'object' || h === null || o.version !== VERSION || typeof o.model !== 'string' ||
    !Object.hasOwn(ELEMENT_BYTES, o.dtype ?? '') || !ints.every((v) => Number.isSafeInteger(v) && (v as number) >= 0)
  ) {
    return 'the file is corrupt or from another version (bad header)';
  }
  return { header: o as Header, offset: start + len };
}

/**
 * Restores the ids and keys/values saved in `file` into `seq` (which is emptied first, whatever the outcome), when the file
 * was written for the same model and cache layout and is intact. A missing file restores nothing
 * and says nothing; any other file that cannot be used restores nothing and gives a notice.
 */
export async function loadPromptCache(file: string, seq: CachedSequence, model: string): Promise<PromptCacheLoad> {
  const cache = storageOf(seq);
  seq.reset();
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { restored: 0 };
    return { restored: 0, notice: `prompt cache ${file} not used: ${(err as Error).message}` };
  }
  const notice = (why: string): PromptCacheLoad => ({ restored: 0, notice: `prompt cache ${file} not used: ${why}` });
  const parsed = parseHeader(bytes);
  if (typeof parsed === 'string') return notice(parsed);
  const { header: h, offset } = parsed;
  const elem = ELEMENT_BYTES[h.dtype];
  // Elements per position: values, or for q8_0 the bytes of 34-byte blocks of 32 values.
  const row = h.dtype === 'q8_0' ? h.groups * Math.ceil(h.headDim / 32) * 34 : h.groups * h.headDim;
  const expected = offset + h.n * 4 + h.layers * 2 * h.n * row * elem + HASH_BYTES;
  if (bytes.length !== expected) return notice(`the file is truncated or corrupt (${bytes.length} bytes, expected ${expected})`);
  const digest = createHash('sha256').update(bytes.subarray(0, bytes.length - HASH_BYTES)).digest();
  if (!digest.equals(bytes.subarray(bytes.length - HASH_BYTES))) return notice('the file is corrupt (checksum mismatch)');
  if (h.model !== model) return notice('it was written for another model or other load options');
  const base = cache.length;
  if (h.dtype !== dtypeOf(cache) || h.layers !== cache.layers || h.groups !== cache.groups || h.headDim !== cache.headDim || h.base !== base) {
    return notice('it was written for another KV cache layout (backend or model shape)');
  }
  if (base + h.n > cache.capacity) return notice(`its ${h.n} tokens do not fit the context (${seq.capacity} tokens)`);
  // Copy out of the file buffer: its offsets need not be aligned for the typed arrays.
  const body = new Uint8Array(bytes.subarray(offset, bytes.length - HASH_BYTES));
  const ids = Array.from(new Int32Array(body.buffer, 0, h.n));
  cache.reserve(base + h.n);
  let at = h.n * 4;
  for (const dst of kvSpans(cache, base, h.n)) {
    dst.set(body.subarray(at, at + dst.length));
    at += dst.length;
  }
  cache.length = base + h.n;
  seq.adopt(ids);
  return { restored: h.n };
}

/**
 * Copies the first `n` ids of `from` and their keys/values into `to` (emptied first), so `to`
 * continues from that prefix exactly as if it had prefilled it: a new conversation sharing a long
 * system prompt with another slot's conversation prefills only what follows it. Returns the ids
 * copied: 0 (and `to` left as it was) when either cache cannot be copied or their layouts differ
 * (another backend, element type or P-Tuning prefix). `n` is capped by what `from` holds.
 */
export function copySequencePrefix(from: CachedSequence, to: CachedSequence, n: number): number {
  const src = from.cache;
  const dst = to.cache;
  if (!(src instanceof GrowingKVCache) || !(dst instanceof GrowingKVCache) || src === dst) return 0;
  const a = src as KVStorage;
  const b = dst as KVStorage;
  // The positions before the first id (a P-Tuning prefix): capacity counts ids, the cache positions.
  const srcBase = a.capacity - from.capacity;
  const dstBase = b.capacity - to.capacity;
  if (dtypeOf(a) !== dtypeOf(b) || a.layers !== b.layers || a.groups !== b.groups || a.headDim !== b.headDim || srcBase !== dstBase) return 0;
  const count = Math.max(0, Math.min(n, from.ids.length, a.length - srcBase, to.capacity));
  if (count === 0) return 0;
  to.reset();
  b.reserve(dstBase + count);
  const out = kvSpans(b, dstBase, count);
  kvSpans(a, srcBase, count).forEach((span, i) => out[i]!.set(span));
  b.length = dstBase + count;
  to.adopt(from.ids.slice(0, count));
  return count;
}

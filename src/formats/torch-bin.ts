/**
 * PyTorch `.bin` checkpoints (torch.save zip format, torch >= 1.6): a zip holding `<prefix>/data.pkl`
 * (the state dict, pickled) and one `<prefix>/data/<key>` entry per storage. The pickle is read with
 * the restricted unpickler, its tensor nodes are interpreted here, and each tensor's bytes are read
 * from its storage entry on demand.
 */
import { open } from 'node:fs/promises';
import { ChatGLMError, badFormat } from '../errors.js';
import type { DType, TensorData, TensorInfo } from './tensor-source.js';
import { IndexedSource, copyInfo } from './indexed-source.js';
import { ZipReader, type ZipEntry } from './zip.js';
import { unpickle, type PickleValue, type PickleReduce, type PickleTuple } from './pickle.js';
import { elementCount } from './safetensors.js';

const STORAGE_DTYPE: Record<string, { dtype: DType; size: number } | undefined> = {
  FloatStorage: { dtype: 'F32', size: 4 },
  HalfStorage: { dtype: 'F16', size: 2 },
  BFloat16Storage: { dtype: 'BF16', size: 2 },
  IntStorage: { dtype: 'I32', size: 4 },
  LongStorage: { dtype: 'I64', size: 8 },
  CharStorage: { dtype: 'I8', size: 1 },
  ByteStorage: { dtype: 'U8', size: 1 },
};

interface Entry {
  info: TensorInfo;
  zipEntry: ZipEntry;
  byteOffset: number;
  byteLength: number;
}

function isObj<T extends string>(v: PickleValue, type: T): v is Extract<PickleValue, { type: T }> {
  return typeof v === 'object' && v !== null && !(v instanceof Uint8Array) && v.type === type;
}

function isReduceOf(v: PickleValue, module: string, name: string): v is PickleReduce {
  return isObj(v, 'reduce') && v.callable.module === module && v.callable.name === name;
}

function intList(v: PickleValue, what: string, file: string, tensor: string): number[] {
  if (!isObj(v, 'tuple') && !isObj(v, 'list')) throw badFormat(file, `tensor ${tensor}: ${what} is not a tuple`);
  return v.items.map((x) => {
    if (typeof x !== 'number' || !Number.isSafeInteger(x)) throw badFormat(file, `tensor ${tensor}: ${what} holds a non-integer`);
    return x;
  });
}

/** The first bytes of a legacy (torch < 1.6) checkpoint: a pickled magic number. */
function looksLegacy(head: Uint8Array): boolean {
  return head.length >= 2 && head[0] === 0x80 && head[1]! <= 5;
}

export class TorchBinSource extends IndexedSource<Entry> {
  readonly location: string;
  private readonly zip: ZipReader;
  protected readonly entries: Map<string, Entry>;

  private constructor(file: string, zip: ZipReader, entries: Map<string, Entry>) {
    super();
    this.location = file;
    this.zip = zip;
    this.entries = entries;
  }

  static async open(file: string): Promise<TorchBinSource> {
    let zip: ZipReader;
    try {
      zip = await ZipReader.open(file);
    } catch (e) {
      if (e instanceof ChatGLMError && e.code === 'BAD_FORMAT') {
        const fh = await open(file, 'r');
        const head = new Uint8Array(2);
        try {
          await fh.read(head, 0, 2, 0);
        } finally {
          await fh.close();
        }
        if (looksLegacy(head)) {
          throw new ChatGLMError(
            'UNSUPPORTED',
            `${file}: legacy (pre-1.6, non-zip) torch.save format is not supported; re-save it with a current torch (torch.save(torch.load(f), f)) or convert it to safetensors`,
            { file },
          );
        }
      }
      throw e;
    }
    try {
      return new TorchBinSource(file, zip, await readIndex(file, zip));
    } catch (e) {
      await zip.close();
      throw e;
    }
  }

  async read(name: string): Promise<TensorData> {
    const e = this.entry(name);
    const data = await this.zip.read(e.zipEntry, e.byteOffset, e.byteLength);
    return { info: copyInfo(e.info), data };
  }

  close(): Promise<void> {
    return this.zip.close();
  }
}

/** Opens a torch .bin (zip) checkpoint as a TensorSource. */
export function openTorchBin(file: string): Promise<TorchBinSource> {
  return TorchBinSource.open(file);
}

async function readIndex(file: string, zip: ZipReader): Promise<Map<string, Entry>> {
  const pkl = zip.entries().find((e) => e.name === 'data.pkl' || e.name.endsWith('/data.pkl'));
  if (pkl === undefined) throw badFormat(file, 'zip archive without data.pkl: not a torch.save checkpoint');
  const prefix = pkl.name.slice(0, pkl.name.length - 'data.pkl'.length);
  const byteorder = zip.get(`${prefix}byteorder`);
  if (byteorder !== undefined) {
    const order = new TextDecoder().decode(await zip.read(byteorder)).trim();
    if (order !== 'little') throw new ChatGLMError('UNSUPPORTED', `${file}: stored with ${order}-endian byte order; only little-endian checkpoints are supported`, { file });
  }
  const root = unpickle(await zip.read(pkl), file);
  if (!isObj(root, 'dict')) throw badFormat(file, 'the pickle is not a state dict (a dict of tensors)');
  const entries = new Map<string, Entry>();
  for (const [k, v] of root.entries) {
    if (typeof k !== 'string') throw badFormat(file, 'state dict key is not a string');
    entries.set(k, tensorEntry(file, zip, prefix, k, v));
  }
  return entries;
}

function tensorEntry(file: string, zip: ZipReader, prefix: string, name: string, value: PickleValue): Entry {
  let v = value;
  if (isReduceOf(v, 'torch._utils', '_rebuild_parameter')) v = v.args.items[0] ?? null;
  if (!isReduceOf(v, 'torch._utils', '_rebuild_tensor_v2')) {
    throw badFormat(file, `state dict entry ${name} is not a tensor; only plain state dicts of tensors are supported`);
  }
  const [storage, offsetV, sizeV, strideV] = (v.args as PickleTuple).items;
  if (storage === undefined || !isObj(storage, 'persid') || !isObj(storage.pid, 'tuple')) {
    throw badFormat(file, `tensor ${name}: storage reference is missing`);
  }
  const [tag, storageType, key, , numelV] = storage.pid.items;
  if (tag !== 'storage' || storageType === undefined || !isObj(storageType, 'global') || typeof key !== 'string') {
    throw badFormat(file, `tensor ${name}: malformed storage reference`);
  }
  const dt = STORAGE_DTYPE[storageType.name];
  if (dt === undefined) {
    throw new ChatGLMError('UNSUPPORTED', `${file}: tensor ${name} is stored as ${storageType.module}.${storageType.name}; only float32/float16/bfloat16 (and int) tensors are supported`, { file });
  }
  if (typeof offsetV !== 'number' || !Number.isSafeInteger(offsetV) || offsetV < 0) throw badFormat(file, `tensor ${name}: bad storage offset`);
  const shape = intList(sizeV ?? null, 'size', file, name);
  const stride = intList(strideV ?? null, 'stride', file, name);
  if (stride.length !== shape.length || shape.some((d) => d < 0)) throw badFormat(file, `tensor ${name}: size and stride do not match`);
  const numel = elementCount(shape);
  // Enough huge dimensions overflow to Infinity, and Infinity times a zero dimension is NaN.
  if (!Number.isSafeInteger(numel)) throw badFormat(file, `tensor ${name}: size [${shape.join(', ')}] has more elements than a file can hold`);
  // Row-major contiguity; a dimension of size 1 may carry any stride (torch leaves them arbitrary).
  let expected = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i]! !== 1 && numel > 0 && stride[i] !== expected) {
      throw new ChatGLMError(
        'UNSUPPORTED',
        `${file}: tensor ${name} is not contiguous (size [${shape.join(', ')}], stride [${stride.join(', ')}]); save it after .contiguous() or convert the checkpoint to safetensors`,
        { file },
      );
    }
    expected *= shape[i]!;
  }
  const zipEntry = zip.get(`${prefix}data/${key}`);
  if (zipEntry === undefined) throw badFormat(file, `tensor ${name}: storage ${key} is missing from the archive (${prefix}data/${key}): truncated or corrupt file`);
  const byteOffset = offsetV * dt.size;
  const byteLength = numel * dt.size;
  const storageNumel = typeof numelV === 'number' ? numelV : undefined;
  if (byteOffset + byteLength > zipEntry.size || (storageNumel !== undefined && offsetV + numel > storageNumel)) {
    throw badFormat(file, `tensor ${name}: elements ${offsetV}..${offsetV + numel} lie outside its storage (${zipEntry.size / dt.size} elements): corrupt file`);
  }
  return { info: { name, dtype: dt.dtype, shape }, zipEntry, byteOffset, byteLength };
}

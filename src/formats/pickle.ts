/**
 * A restricted unpickler for the pickles torch.save writes. It NEVER evaluates anything: it builds a
 * plain data tree in which a call (`REDUCE`) stays a `{type: 'reduce'}` node for the caller to
 * interpret, and it refuses any global outside a short allowlist the moment the pickle names it.
 * Only the opcodes torch uses (protocol 2, plus the few protocol 3/4 ones a newer torch may emit)
 * are accepted; anything else is an error rather than a guess.
 */
import { ChatGLMError, badFormat } from '../errors.js';

export interface PickleGlobal { type: 'global'; module: string; name: string }
export interface PickleTuple { type: 'tuple'; items: PickleValue[] }
export interface PickleList { type: 'list'; items: PickleValue[] }
export interface PickleDict {
  type: 'dict';
  /** Insertion order, as in Python. */
  entries: [PickleValue, PickleValue][];
  /** True for collections.OrderedDict. */
  ordered: boolean;
  /** Whatever BUILD set (torch stores `_metadata` on state dicts); unused. */
  state?: PickleValue;
}
/** A call `callable(*args)` that was recorded, not made. */
export interface PickleReduce { type: 'reduce'; callable: PickleGlobal; args: PickleTuple; state?: PickleValue }
/** A persistent id (torch: a storage reference `('storage', StorageType, key, location, numel)`). */
export interface PicklePersId { type: 'persid'; pid: PickleValue }

export type PickleValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PickleGlobal
  | PickleTuple
  | PickleList
  | PickleDict
  | PickleReduce
  | PicklePersId;

/** Globals torch.save needs to store a state dict; nothing here can run code in our unpickler. */
const STORAGE_TYPES = [
  'FloatStorage', 'HalfStorage', 'BFloat16Storage', 'DoubleStorage', 'IntStorage', 'LongStorage',
  'ShortStorage', 'CharStorage', 'ByteStorage', 'BoolStorage',
];
const TORCH_DTYPES = ['float32', 'float16', 'bfloat16', 'float64', 'int64', 'int32', 'int16', 'int8', 'uint8', 'bool'];
export const ALLOWED_GLOBALS: ReadonlySet<string> = new Set([
  'collections.OrderedDict',
  'torch._utils._rebuild_tensor_v2',
  'torch._utils._rebuild_parameter',
  ...STORAGE_TYPES.map((s) => `torch.${s}`),
  ...TORCH_DTYPES.map((d) => `torch.${d}`),
]);

const MARK = Symbol('mark');
type StackItem = PickleValue | typeof MARK;

function isMark(x: StackItem): x is typeof MARK {
  return x === MARK;
}

// long-function: one interpreter loop over the pickle opcodes, a switch with a short case per
// opcode sharing the stack and memo; split up, the cases would only pass that state around.
/**
 * Unpickles `bytes` (from `file`, named in errors). Throws ChatGLMError UNSAFE_PICKLE for a global
 * outside ALLOWED_GLOBALS and BAD_FORMAT for anything malformed or unsupported.
 */
export function unpickle(bytes: Uint8Array, file: string): PickleValue {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  const latin1 = new TextDecoder('latin1');
  const stack: StackItem[] = [];
  const memo = new Map<number, PickleValue>();
  let pos = 0;

  const fail = (msg: string): ChatGLMError => badFormat(file, `corrupt pickle at byte ${pos}: ${msg}`);
  const need = (n: number): void => {
    if (pos + n > bytes.length) throw badFormat(file, 'pickle ends early: the file is truncated or corrupt');
  };
  const u8 = (): number => { need(1); return bytes[pos++]!; };
  const u16 = (): number => { need(2); const v = view.getUint16(pos, true); pos += 2; return v; };
  const u32 = (): number => { need(4); const v = view.getUint32(pos, true); pos += 4; return v; };
  const i32 = (): number => { need(4); const v = view.getInt32(pos, true); pos += 4; return v; };
  const u64 = (): number => {
    need(8);
    const v = view.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(bytes.length)) throw fail('length larger than the pickle');
    return Number(v);
  };
  const take = (n: number): Uint8Array => { need(n); const b = bytes.subarray(pos, pos + n); pos += n; return b; };
  const str = (n: number): string => {
    const b = take(n);
    try {
      return utf8.decode(b);
    } catch {
      throw fail('string is not valid UTF-8');
    }
  };
  const line = (): string => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) throw badFormat(file, 'pickle ends early: the file is truncated or corrupt');
    const s = latin1.decode(bytes.subarray(pos, end));
    pos = end + 1;
    return s;
  };
  const pop = (): PickleValue => {
    const v = stack.pop();
    if (v === undefined || isMark(v)) throw fail('stack underflow');
    return v;
  };
  const top = (): PickleValue => {
    const v = stack[stack.length - 1];
    if (v === undefined || isMark(v)) throw fail('stack underflow');
    return v;
  };
  const popMark = (): PickleValue[] => {
    let i = stack.length - 1;
    while (i >= 0 && !isMark(stack[i]!)) i--;
    if (i < 0) throw fail('MARK missing');
    const items = stack.splice(i + 1) as PickleValue[];
    stack.pop();
    return items;
  };
  const global = (module: string, name: string): PickleGlobal => {
    const full = `${module}.${name}`;
    if (!ALLOWED_GLOBALS.has(full)) {
      throw new ChatGLMError(
        'UNSAFE_PICKLE',
        `${file}: pickle refers to ${full}, which a checkpoint never needs; refusing to load (only tensors, storages and OrderedDict are allowed; convert trusted files to safetensors)`,
        { file },
      );
    }
    return { type: 'global', module, name };
  };
  const long = (b: Uint8Array): number | bigint => {
    // Two's-complement little-endian.
    let v = 0n;
    for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
    if (b.length > 0 && (b[b.length - 1]! & 0x80) !== 0) v -= 1n << BigInt(8 * b.length);
    return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
  };
  const setItems = (target: PickleValue, kv: PickleValue[]): void => {
    if (typeof target !== 'object' || target === null || !('type' in target) || target.type !== 'dict') throw fail('SETITEM on a non-dict');
    if (kv.length % 2 !== 0) throw fail('odd number of SETITEMS values');
    for (let i = 0; i < kv.length; i += 2) target.entries.push([kv[i]!, kv[i + 1]!]);
  };
  const append = (target: PickleValue, items: PickleValue[]): void => {
    if (typeof target !== 'object' || target === null || !('type' in target) || target.type !== 'list') throw fail('APPEND on a non-list');
    // One at a time: spreading 300K items as arguments overflows the call stack.
    for (const x of items) target.items.push(x);
  };

  for (;;) {
    const opPos = pos;
    const op = u8();
    switch (op) {
      case 0x80: { // PROTO
        const proto = u8();
        if (proto > 5) throw fail(`pickle protocol ${proto} is not supported`);
        break;
      }
      case 0x95: // FRAME: an 8-byte length hint we don't need
        take(8);
        break;
      case 0x2e: { // STOP
        const result = pop();
        return result;
      }
      case 0x28: stack.push(MARK); break; // MARK
      case 0x7d: stack.push({ type: 'dict', entries: [], ordered: false }); break; // EMPTY_DICT
      case 0x5d: stack.push({ type: 'list', items: [] }); break; // EMPTY_LIST
      case 0x29: stack.push({ type: 'tuple', items: [] }); break; // EMPTY_TUPLE
      case 0x74: stack.push({ type: 'tuple', items: popMark() }); break; // TUPLE
      case 0x85: { const a = pop(); stack.push({ type: 'tuple', items: [a] }); break; } // TUPLE1
      case 0x86: { const b = pop(); const a = pop(); stack.push({ type: 'tuple', items: [a, b] }); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); const a = pop(); stack.push({ type: 'tuple', items: [a, b, c] }); break; } // TUPLE3
      case 0x6c: stack.push({ type: 'list', items: popMark() }); break; // LIST
      case 0x64: { // DICT
        const kv = popMark();
        const d: PickleDict = { type: 'dict', entries: [], ordered: false };
        setItems(d, kv);
        stack.push(d);
        break;
      }
      case 0x58: stack.push(str(u32())); break; // BINUNICODE
      case 0x8c: stack.push(str(u8())); break; // SHORT_BINUNICODE
      case 0x8d: stack.push(str(u64())); break; // BINUNICODE8
      case 0x54: stack.push(latin1.decode(take(u32()))); break; // BINSTRING (py2 str)
      case 0x55: stack.push(latin1.decode(take(u8()))); break; // SHORT_BINSTRING
      case 0x42: stack.push(take(u32()).slice()); break; // BINBYTES
      case 0x43: stack.push(take(u8()).slice()); break; // SHORT_BINBYTES
      case 0x4a: stack.push(i32()); break; // BININT
      case 0x4b: stack.push(u8()); break; // BININT1
      case 0x4d: stack.push(u16()); break; // BININT2
      case 0x8a: stack.push(long(take(u8()))); break; // LONG1
      case 0x8b: { // LONG4
        const n = u32();
        if (n > 64) throw fail('LONG4 integer too large');
        stack.push(long(take(n)));
        break;
      }
      case 0x47: { need(8); stack.push(view.getFloat64(pos, false)); pos += 8; break; } // BINFLOAT (big-endian)
      case 0x88: stack.push(true); break; // NEWTRUE
      case 0x89: stack.push(false); break; // NEWFALSE
      case 0x4e: stack.push(null); break; // NONE
      case 0x71: memo.set(u8(), top()); break; // BINPUT
      case 0x72: memo.set(u32(), top()); break; // LONG_BINPUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x68: // BINGET
      case 0x6a: { // LONG_BINGET
        const k = op === 0x68 ? u8() : u32();
        const v = memo.get(k);
        if (v === undefined) throw fail(`memo key ${k} was never stored`);
        stack.push(v);
        break;
      }
      case 0x63: { // GLOBAL "module\nname\n"
        const module = line();
        const name = line();
        stack.push(global(module, name));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') throw fail('STACK_GLOBAL needs two strings');
        stack.push(global(module, name));
        break;
      }
      case 0x51: stack.push({ type: 'persid', pid: pop() }); break; // BINPERSID
      case 0x52: { // REDUCE
        const args = pop();
        const callable = pop();
        if (typeof callable !== 'object' || callable === null || !('type' in callable) || callable.type !== 'global') throw fail('REDUCE of something that is not a global');
        if (typeof args !== 'object' || args === null || !('type' in args) || args.type !== 'tuple') throw fail('REDUCE arguments are not a tuple');
        if (callable.module === 'collections' && callable.name === 'OrderedDict') {
          // The only call whose result must be a real container: SETITEMS fill it afterwards.
          if (args.items.length !== 0) throw fail('OrderedDict with constructor arguments');
          stack.push({ type: 'dict', entries: [], ordered: true });
        } else {
          stack.push({ type: 'reduce', callable, args });
        }
        break;
      }
      case 0x62: { // BUILD
        const state = pop();
        const obj = top();
        if (typeof obj === 'object' && obj !== null && 'type' in obj && (obj.type === 'dict' || obj.type === 'reduce')) obj.state = state;
        else throw fail('BUILD on an unsupported object');
        break;
      }
      case 0x73: { const v = pop(); const k = pop(); setItems(top(), [k, v]); break; } // SETITEM
      case 0x75: { const kv = popMark(); setItems(top(), kv); break; } // SETITEMS
      case 0x61: { const v = pop(); append(top(), [v]); break; } // APPEND
      case 0x65: { const items = popMark(); append(top(), items); break; } // APPENDS
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: stack.push(top()); break; // DUP
      default:
        pos = opPos;
        throw fail(`pickle opcode 0x${op.toString(16).padStart(2, '0')} is not one torch.save uses; refusing to interpret it`);
    }
  }
}

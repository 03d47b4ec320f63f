/**
 * GGUF metadata arrays are held compactly and decoded only when read: a numeric array is the
 * typed array of its element type over one copy of the file bytes, and string arrays become JS
 * strings on first access. The files are assembled by hand from the spec (ggml/docs/gguf.md),
 * not with our writer.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { GGUF_LIMITS, GgufArray, GgufValueType, metaArray, readGgufHeader } from '../src/formats/gguf.js';
import { readGgufTokenizer } from '../src/formats/gguf-checkpoint.js';
import { gv } from '../src/convert/gguf-writer.js';
import { ChatGLMError } from '../src/errors.js';
import { tempDir } from './support/formats-tmp.js';
import { Bytes } from './support/harden-bytes.js';

const head = (kvs: number): Bytes => new Bytes().u32(0x46554747).u32(3).u64(0).u64(kvs);

/** A full garbage collection, exposing gc() to this test process if node was not started with --expose-gc. */
function collector(): () => void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g !== undefined) return g;
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

/** JS heap plus ArrayBuffer backing stores (where typed arrays keep their bytes). */
function heldBytes(gc: () => void): number {
  gc();
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

test('a 4M-entry f32 array costs about its 16 MB of bytes, as a Float32Array over them', async (t) => {
  const { dir, cleanup } = await tempDir('gguf-lazy-');
  t.after(cleanup);
  const n = GGUF_LIMITS.arrayItems;
  const header = head(2).str('general.name').u32(8).str('big').str('x.scores').u32(9).u32(6).u64(n).bytes();
  const data = Buffer.alloc(4 * n);
  for (let i = 0; i < n; i++) data.writeFloatLE(i * 0.5 - 7, 4 * i);
  const file = path.join(dir, 'big.gguf');
  await writeFile(file, Buffer.concat([header, data, Buffer.alloc(64)]));

  const gc = collector();
  const before = heldBytes(gc);
  const h = await readGgufHeader(file);
  const parsed = heldBytes(gc) - before;
  // The typed array's 16 MiB plus small change. A JS array of 4M numbers (what the reader held
  // before) costs 8 bytes per element even as unboxed doubles: 32 MiB.
  assert.ok(parsed < 1.5 * 4 * n, `header with a ${4 * n}-byte array holds ${parsed} bytes`);
  assert.ok(parsed > 0.9 * 4 * n, `the array's bytes are held (${parsed})`);
  t.diagnostic(`held after parsing: ${(parsed / 2 ** 20).toFixed(1)} MiB`);

  const a = metaArray(h, 'x.scores')!;
  assert.equal(a.length, n);
  const items = a.items;
  assert.ok(items instanceof Float32Array);
  assert.equal(items.length, n);
  for (const i of [0, 1, 2, 12345, n - 1]) assert.equal(items[i], i * 0.5 - 7, `item ${i}`);
  // Decoding is a view over the bytes already held, not a second copy.
  const decoded = heldBytes(gc) - before;
  assert.ok(decoded - parsed < (1 << 20), `decoding added ${decoded - parsed} bytes`);
  assert.equal(a.items, items, 'decoded once, then cached');
});

test('string arrays are decoded only when read: tokens on loading the tokenizer, merges on first access', async (t) => {
  const { dir, cleanup } = await tempDir('gguf-lazy-');
  t.after(cleanup);
  const nTokens = 1000;
  const nMerges = 50_000;
  const b = head(5).str('tokenizer.ggml.model').u32(8).str('gpt2');
  b.str('tokenizer.ggml.tokens').u32(9).u32(8).u64(nTokens);
  for (let i = 0; i < nTokens; i++) b.str(`t${i}`);
  b.str('tokenizer.ggml.merges').u32(9).u32(8).u64(nMerges);
  for (let i = 0; i < nMerges; i++) b.str(`m${i} x`);
  b.str('tokenizer.ggml.token_type').u32(9).u32(4).u64(nTokens);
  for (let i = 0; i < nTokens; i++) b.u32(i % 7);
  // Unread by anything: an array of arrays.
  b.str('x.nested').u32(9).u32(9).u64(2);
  b.u32(8).u64(2).str('p').str('q');
  b.u32(4).u64(1).u32(77);
  const file = path.join(dir, 'vocab.gguf');
  await writeFile(file, b.bytes());

  // Every string the reader makes goes through TextDecoder.decode: count the calls.
  const proto = TextDecoder.prototype;
  const realDecode = proto.decode;
  let calls = 0;
  proto.decode = function (this: typeof proto, ...args: Parameters<typeof realDecode>): string {
    calls++;
    return realDecode.apply(this, args);
  };
  t.after(() => {
    proto.decode = realDecode;
  });

  const h = await readGgufHeader(file);
  assert.ok(calls < 20, `reading the header decoded ${calls} strings (keys and scalar values only)`);
  for (const k of ['tokenizer.ggml.tokens', 'tokenizer.ggml.merges', 'tokenizer.ggml.token_type', 'x.nested']) {
    assert.equal(metaArray(h, k)!.decoded, false, `${k} not decoded by reading the header`);
  }
  assert.equal(metaArray(h, 'tokenizer.ggml.merges')!.length, nMerges, 'the length is known without decoding');

  calls = 0;
  const tok = readGgufTokenizer(h)!;
  assert.equal(calls, nTokens, 'loading the tokenizer decodes the tokens and nothing else');
  assert.equal(metaArray(h, 'tokenizer.ggml.merges')!.decoded, false);
  assert.equal(metaArray(h, 'x.nested')!.decoded, false);
  assert.equal(tok.tokens[999], 't999');
  assert.ok(tok.tokenTypes instanceof Uint32Array);
  assert.deepEqual(Array.from(tok.tokenTypes.subarray(5, 9)), [5, 6, 0, 1]);

  calls = 0;
  const merges = tok.merges!;
  assert.equal(calls, nMerges, 'merges decoded on first access');
  assert.deepEqual([merges[0], merges[nMerges - 1]], ['m0 x', `m${nMerges - 1} x`]);
  calls = 0;
  assert.equal(tok.merges, merges, 'and cached');
  assert.equal(calls, 0);

  // Nested arrays: children are lazy too, and an unaligned u32 inside decodes right.
  const nested = metaArray(h, 'x.nested')!.arrays()!;
  assert.deepEqual(nested.map((x) => [x.itemType, x.length, x.decoded]), [[8, 2, false], [4, 1, false]]);
  assert.deepEqual(nested[0]!.strings(), ['p', 'q']);
  const u32s = nested[1]!.items;
  assert.ok(u32s instanceof Uint32Array);
  assert.deepEqual(Array.from(u32s), [77]);
});

test('every numeric element type reads as its typed array; bad bools and unknown element types are refused', async (t) => {
  const { dir, cleanup } = await tempDir('gguf-lazy-');
  t.after(cleanup);
  const b = head(10);
  // An odd-length string first, so the arrays below start at unaligned offsets in the file.
  b.str('a').u32(8).str('xyz');
  b.str('u8').u32(9).u32(0).u64(2).u8(0).u8(255);
  b.str('i8').u32(9).u32(1).u64(2).u8(0x80).u8(5);
  b.str('u16').u32(9).u32(2).u64(2).u16(65535).u16(2);
  b.str('i16').u32(9).u32(3).u64(1).u16(0x8000);
  b.str('i32').u32(9).u32(5).u64(2).u32(0xffffffff).u32(3);
  b.str('bool').u32(9).u32(7).u64(3).u8(1).u8(0).u8(1);
  b.str('u64').u32(9).u32(10).u64(1).u64(0xffffffffffffffffn);
  b.str('i64').u32(9).u32(11).u64(1).u64(0xfffffffffffffffen);
  b.str('f64').u32(9).u32(12).u64(1).raw(Buffer.from(new Float64Array([Math.PI]).buffer));
  const file = path.join(dir, 'types.gguf');
  await writeFile(file, b.bytes());
  const h = await readGgufHeader(file);
  const got = (k: string): unknown => metaArray(h, k)!.items;
  assert.deepEqual(got('u8'), Uint8Array.of(0, 255));
  assert.deepEqual(got('i8'), Int8Array.of(-128, 5));
  assert.deepEqual(got('u16'), Uint16Array.of(65535, 2));
  assert.deepEqual(got('i16'), Int16Array.of(-32768));
  assert.deepEqual(got('i32'), Int32Array.of(-1, 3));
  assert.deepEqual(got('bool'), Uint8Array.of(1, 0, 1));
  assert.deepEqual(got('u64'), BigUint64Array.of(18446744073709551615n));
  assert.deepEqual(got('i64'), BigInt64Array.of(-2n));
  assert.deepEqual(got('f64'), Float64Array.of(Math.PI));
  assert.equal(metaArray(h, 'bool')!.numbers(), undefined, 'a bool array is not a number array');

  const refused = async (bytes: Uint8Array, re: RegExp): Promise<void> => {
    await writeFile(file, bytes);
    await assert.rejects(readGgufHeader(file), (e: unknown) => e instanceof ChatGLMError && e.code === 'BAD_FORMAT' && re.test(e.message));
  };
  await refused(head(1).str('b').u32(9).u32(7).u64(3).u8(1).u8(2).u8(0).bytes(), /bool metadata value is 2/);
  await refused(head(1).str('b').u32(9).u32(13).u64(0).bytes(), /unknown metadata value type 13/);
  await refused(head(1).str('b').u32(9).u32(8).u64(2).str('ok').u64(1n << 40n).bytes(), /string length .* more than the file could hold/);
});

test('writer arrays must be held as their element type needs', () => {
  assert.throws(() => GgufArray.of(GgufValueType.FLOAT32, new Int32Array(2)), /FLOAT32 must be given as a Float32Array/);
  assert.throws(() => GgufArray.of(GgufValueType.BOOL, Uint8Array.of(0, 2)), /Uint8Array of 0s and 1s/);
  assert.throws(() => GgufArray.of(GgufValueType.STRING, [GgufArray.of(GgufValueType.STRING, [])]), /an array of strings/);
  assert.throws(() => gv.i32s([1, 2 ** 31]), /integer in \[-2147483648, 2147483647\]/);
  assert.equal(GgufArray.of(GgufValueType.INT64, BigInt64Array.of(1n)).decoded, true);
});

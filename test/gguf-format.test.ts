import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile, stat, readdir } from 'node:fs/promises';
import path from 'node:path';
import { GgufArray, GgufReader, GgufValueType, ggmlTypeId, readGgufHeader } from '../src/formats/gguf.js';
import type { GgufMetadataEntry, GgufValue } from '../src/formats/gguf.js';
import { GgufWriter, gv } from '../src/convert/gguf-writer.js';
import { ChatGLMError } from '../src/errors.js';
import { tempDir } from './support/formats-tmp.js';

// Little-endian field builders, written straight from the GGUF spec (ggml/docs/gguf.md).
const u32 = (v: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(v);
  return b;
};
const u64 = (v: number): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64LE(BigInt(v));
  return b;
};
const str = (s: string): Buffer => Buffer.concat([u64(Buffer.byteLength(s)), Buffer.from(s, 'utf8')]);
const f32 = (...v: number[]): Buffer => {
  const b = Buffer.alloc(4 * v.length);
  v.forEach((x, i) => b.writeFloatLE(x, 4 * i));
  return b;
};
const padTo = (b: Buffer, a: number): Buffer => Buffer.concat([b, Buffer.alloc((a - (b.length % a)) % a)]);

function handBuiltFile(version = 3): Buffer {
  const header = Buffer.concat([
    Buffer.from('GGUF', 'ascii'),
    u32(version),
    u64(1), // tensors
    u64(1), // kv pairs
    str('general.architecture'),
    u32(8),
    str('chatglm'),
    str('t'),
    u32(1),
    u64(2),
    u32(0), // F32
    u64(0),
  ]);
  return Buffer.concat([padTo(header, 32), padTo(f32(1.5, -2), 32)]);
}

test('writer output is byte-identical to a GGUF file assembled by hand from the spec', async (t) => {
  const { dir, cleanup } = await tempDir('gguf-');
  t.after(cleanup);
  const file = path.join(dir, 'a.gguf');
  const w = await GgufWriter.create(file, {
    metadata: [['general.architecture', gv.str('chatglm')]],
    tensors: [{ name: 't', ne: [2], type: ggmlTypeId('F32') }],
  });
  await w.writeTensor('t', new Uint8Array(f32(1.5, -2)));
  await w.finish();
  assert.equal((await readFile(file)).toString('hex'), handBuiltFile().toString('hex'));
  // No temporary file is left behind.
  assert.deepEqual(await readdir(dir), ['a.gguf']);
});

test('reader parses the hand-built file, v3 and v2', async (t) => {
  const { dir, cleanup } = await tempDir('gguf-');
  t.after(cleanup);
  for (const version of [2, 3]) {
    const file = path.join(dir, `v${version}.gguf`);
    await writeFile(file, handBuiltFile(version));
    const r = await GgufReader.open(file);
    assert.equal(r.header.version, version);
    assert.equal(r.get('general.architecture'), 'chatglm');
    assert.equal(r.header.dataOffset, 128); // 104 header bytes padded to 32
    assert.deepEqual(r.header.tensors.map((x) => [x.name, x.ne, x.type, x.offset, x.fileOffset, x.byteSize]), [['t', [2], 0, 0, 128, 8]]);
    const data = await r.readTensor('t');
    assert.deepEqual(Array.from(new Float32Array(data.buffer, data.byteOffset, 2)), [1.5, -2]);
    await r.close();
  }
});

test('round trip: every metadata value type, nested arrays, alignment, tensors of several types', async (t) => {
  const { dir, cleanup } = await tempDir('gguf-');
  t.after(cleanup);
  const file = path.join(dir, 'rt.gguf');
  const meta: [string, ReturnType<typeof gv.str>][] = [
    ['general.architecture', gv.str('chatglm')],
    ['k.u8', { type: GgufValueType.UINT8, value: 255 }],
    ['k.i8', { type: GgufValueType.INT8, value: -128 }],
    ['k.u16', { type: GgufValueType.UINT16, value: 65535 }],
    ['k.i16', { type: GgufValueType.INT16, value: -32768 }],
    ['k.u32', gv.u32(4294967295)],
    ['k.i32', gv.i32(-2147483648)],
    ['k.f32', gv.f32(Math.fround(1.5625e-7))],
    ['k.bool', gv.bool(true)],
    ['k.str', gv.str('你好 ▁<0x0A> "quoted"')],
    ['k.u64', gv.u64(18446744073709551615n)],
    ['k.i64', { type: GgufValueType.INT64, value: -9223372036854775808n }],
    ['k.f64', { type: GgufValueType.FLOAT64, value: Math.PI }],
    ['k.strs', gv.strs(['a', '', '▁b', '<|user|>'])],
    ['k.f32s', gv.f32s([0.5, -1.25, 3])],
    ['k.i32s', gv.i32s([1, 2, 3, 6])],
    ['k.empty', gv.arr(GgufValueType.UINT8, new Uint8Array(0))],
    ['k.u8s', gv.arr(GgufValueType.UINT8, Uint8Array.of(0, 7, 255))],
    ['k.i8s', gv.arr(GgufValueType.INT8, Int8Array.of(-128, 5, 127))],
    ['k.u16s', gv.arr(GgufValueType.UINT16, Uint16Array.of(65535, 1, 2))],
    ['k.i16s', gv.arr(GgufValueType.INT16, Int16Array.of(-32768, 3))],
    ['k.u32s', gv.arr(GgufValueType.UINT32, Uint32Array.of(4294967295, 9))],
    ['k.bools', gv.arr(GgufValueType.BOOL, Uint8Array.of(1, 0, 1))],
    ['k.u64s', gv.arr(GgufValueType.UINT64, BigUint64Array.of(18446744073709551615n, 0n))],
    ['k.i64s', gv.arr(GgufValueType.INT64, BigInt64Array.of(-9223372036854775808n, 42n))],
    ['k.f64s', gv.arr(GgufValueType.FLOAT64, Float64Array.of(Math.E, -0.1))],
    [
      'k.nested',
      gv.arr(GgufValueType.ARRAY, [
        GgufArray.of(GgufValueType.INT32, Int32Array.of(1, 2)),
        GgufArray.of(GgufValueType.STRING, ['x']),
        GgufArray.of(GgufValueType.ARRAY, [GgufArray.of(GgufValueType.FLOAT64, Float64Array.of(0.25))]),
      ]),
    ],
  ];
  const f16 = new Uint8Array([0x00, 0x3c, 0x00, 0xc0, 0x00, 0x00]); // 1, -2, 0 as f16, ne = [3]
  const q8 = new Uint8Array(34 * 2).map((_, i) => (i * 7) & 0xff); // 2 rows of one q8_0 block
  const f32data = new Uint8Array(f32(...Array.from({ length: 12 }, (_, i) => i - 5.5)));
  const tensors = [
    { name: 'blk.0.attn_norm.weight', ne: [3], type: ggmlTypeId('F16') },
    { name: 'token_embd.weight', ne: [32, 2], type: ggmlTypeId('Q8_0') },
    { name: 'blk.0.ffn_up.weight', ne: [4, 3], type: ggmlTypeId('F32') },
  ];
  const w = await GgufWriter.create(file, { metadata: meta, tensors, alignment: 64 });
  await w.writeTensor('blk.0.attn_norm.weight', f16);
  await w.writeTensor('token_embd.weight', q8);
  await w.writeTensor('blk.0.ffn_up.weight', f32data);
  await w.finish();

  const r = await GgufReader.open(file);
  t.after(() => r.close());
  const h = r.header;
  assert.equal(h.alignment, 64);
  assert.equal(h.dataOffset % 64, 0);
  // Arrays compared by element type and decoded elements (a read array also carries its raw bytes).
  const plain = (v: GgufValue): unknown =>
    v instanceof GgufArray ? { itemType: v.itemType, length: v.length, items: v.arrays()?.map(plain) ?? v.items } : v;
  const plainEntry = (e: GgufMetadataEntry | undefined): unknown => e && { type: e.type, value: plain(e.value) };
  for (const [k, e] of meta) assert.deepEqual(plainEntry(h.metadata.get(k)), plainEntry(e), k);
  assert.deepEqual(h.metadata.get('general.alignment'), gv.u32(64));
  assert.deepEqual(
    h.tensors.map((x) => [x.name, x.ne, x.type, x.offset]),
    [
      ['blk.0.attn_norm.weight', [3], 1, 0],
      ['token_embd.weight', [32, 2], 8, 64],
      ['blk.0.ffn_up.weight', [4, 3], 0, 192],
    ],
  );
  assert.deepEqual(await r.readTensor('blk.0.attn_norm.weight'), f16);
  assert.deepEqual(await r.readTensor('token_embd.weight'), q8);
  assert.deepEqual(await r.readTensor('blk.0.ffn_up.weight'), f32data);
  // The file is padded after the last tensor too, as gguf-py writes it.
  assert.equal((await stat(file)).size, h.dataOffset + 192 + 64);
  // Numeric arrays come back as the typed array of their element type.
  assert.ok((h.metadata.get('k.f32s')!.value as GgufArray).items instanceof Float32Array);
  assert.ok((h.metadata.get('k.u64s')!.value as GgufArray).items instanceof BigUint64Array);
  assert.ok((h.metadata.get('k.bools')!.value as GgufArray).items instanceof Uint8Array);
  const nested = h.metadata.get('k.nested')!.value as GgufArray;
  assert.equal(nested.items.length, 3);
});

test('clear errors: not GGUF, empty, truncated header, truncated data, version 1, writer misuse', async (t) => {
  const { dir, cleanup } = await tempDir('gguf-');
  t.after(cleanup);
  const good = handBuiltFile();
  const cases: [string, Buffer, RegExp][] = [
    ['notgguf.gguf', Buffer.from('{"__metadata__":{}} this is safetensors-ish text, long enough'), /not a GGUF file/],
    ['empty.gguf', Buffer.alloc(0), /not a GGUF file/],
    ['short.gguf', good.subarray(0, 20), /truncated/],
    ['header.gguf', good.subarray(0, 50), /truncated: the file \(50 bytes\) ends inside the GGUF header/],
    ['data.gguf', good.subarray(0, 132), /truncated: tensor t needs bytes up to 136 but the file has only 132/],
    ['v1.gguf', Buffer.concat([Buffer.from('GGUF'), u32(1), good.subarray(8)]), /version 1 is not supported/],
    ['bigendian.gguf', Buffer.concat([Buffer.from('GGUF'), Buffer.from([0, 0, 0, 3]), good.subarray(8)]), /big-endian/],
  ];
  for (const [name, bytes, re] of cases) {
    const file = path.join(dir, name);
    await writeFile(file, bytes);
    await assert.rejects(readGgufHeader(file), (e: unknown) => {
      assert.ok(e instanceof ChatGLMError, name);
      assert.match(e.message, re, name);
      assert.ok(e.message.includes(file), `${name}: message names the file`);
      return true;
    });
  }
  await assert.rejects(readGgufHeader(path.join(dir, 'missing.gguf')), (e: unknown) => e instanceof ChatGLMError && e.code === 'FILE_NOT_FOUND');

  // A garbage string length is reported as corruption, not as an attempt to allocate it.
  const huge = Buffer.from(good);
  huge.writeBigUInt64LE(1n << 60n, 24);
  await writeFile(path.join(dir, 'huge.gguf'), huge);
  await assert.rejects(readGgufHeader(path.join(dir, 'huge.gguf')), /string length .* more than the file could hold/);

  const w = await GgufWriter.create(path.join(dir, 'w.gguf'), { metadata: [], tensors: [{ name: 'a', ne: [32], type: ggmlTypeId('Q4_0') }] });
  await assert.rejects(w.writeTensor('b', new Uint8Array(18)), /expected tensor a next/);
  await assert.rejects(w.writeTensor('a', new Uint8Array(17)), /takes 18 bytes, got 17/);
  await assert.rejects(w.finish(), /1 tensors were declared but not written/);
  assert.ok(!(await readdir(dir)).some((f) => f.startsWith('w.gguf')), 'an unfinished file is removed');
  await assert.rejects(
    GgufWriter.create(path.join(dir, 'x.gguf'), { metadata: [], tensors: [{ name: 'a', ne: [30], type: ggmlTypeId('Q8_0') }] }),
    /do not fit type Q8_0/,
  );
});

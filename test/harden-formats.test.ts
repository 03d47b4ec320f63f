/**
 * Crafted checkpoint files that used to escape as raw JS errors or be accepted: a ZIP64 extra field
 * cut short, 300K items in one APPENDS, a shard index naming "" or ".", duplicate safetensors keys,
 * a torch tensor whose element count overflows to NaN. Each is a ChatGLMError naming the file.
 * The files are assembled by hand (test/support/harden-bytes.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ChatGLMError } from '../src/errors.js';
import { ZipReader } from '../src/formats/zip.js';
import { unpickle } from '../src/formats/pickle.js';
import { openTorchBin } from '../src/formats/torch-bin.js';
import { openHFCheckpoint } from '../src/formats/hf-checkpoint.js';
import { parseSafetensorsHeader, firstDuplicateTopLevelKey } from '../src/formats/safetensors.js';
import { rawSafetensors, tempDir } from './support/formats-tmp.js';
import { Bytes, stateDictPickle, storedZip, torchZip } from './support/harden-bytes.js';

const chatErr = (code: string, re: RegExp) => (e: unknown): boolean => {
  assert.ok(e instanceof ChatGLMError, `not a ChatGLMError: ${String(e)}`);
  assert.equal(e.code, code, e.message);
  assert.match(e.message, re);
  return true;
};

test('a ZIP64 extra field cut short is BAD_FORMAT, not a DataView RangeError', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const f = path.join(dir, 'zip64.bin');
    // Size saturated at 0xFFFFFFFF, so the reader looks for a 64-bit size in a 4-byte ZIP64 field.
    const extra = new Bytes().u16(0x0001).u16(4).u32(7).bytes();
    await writeFile(f, storedZip([{ name: 'archive/data.pkl', data: Uint8Array.of(0x80, 2, 0x2e), cdSize: 0xffffffff, cdExtra: extra }]));
    await assert.rejects(ZipReader.open(f), chatErr('BAD_FORMAT', /ZIP64 extra field is cut short/));
    // An extra field whose length runs past the entry.
    const over = new Bytes().u16(0x0001).u16(400).u64(7).bytes();
    await writeFile(f, storedZip([{ name: 'a', data: Uint8Array.of(1), cdExtra: over }]));
    await assert.rejects(ZipReader.open(f), chatErr('BAD_FORMAT', /runs past its entry/));
    // The same archive without the crafted fields opens.
    await writeFile(f, storedZip([{ name: 'a', data: Uint8Array.of(1, 2, 3) }]));
    const z = await ZipReader.open(f);
    assert.deepEqual([...(await z.read(z.get('a')!))], [1, 2, 3]);
    await z.close();
  } finally {
    await cleanup();
  }
});

test('pickle: APPENDS with 300,000 items builds the list (no call-stack overflow)', () => {
  const n = 300_000;
  const b = new Bytes().u8(0x80).u8(2).u8(0x5d).u8(0x28);
  for (let i = 0; i < n; i++) b.u8(0x4e); // NONE
  b.u8(0x65).u8(0x2e); // APPENDS, STOP
  const v = unpickle(b.bytes(), 'big.pkl');
  assert.ok(typeof v === 'object' && v !== null && 'type' in v && v.type === 'list');
  assert.equal(v.type === 'list' && v.items.length, n);
});

test('torch: a tensor whose element count overflows (NaN) is BAD_FORMAT; a sane one loads', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const f = path.join(dir, 'nan.bin');
    const big = Number.MAX_SAFE_INTEGER;
    // 2^53 to the 20th power overflows to Infinity, and Infinity * 0 is NaN.
    const shape = [...new Array<number>(20).fill(big), 0];
    await writeFile(f, torchZip(stateDictPickle([{ name: 'w', shape, stride: shape.map(() => 1), key: '0', numel: 4 }]), { '0': new Float32Array(4) }));
    await assert.rejects(openTorchBin(f), chatErr('BAD_FORMAT', /tensor w: size .* has more elements than a file can hold/));
    await writeFile(f, torchZip(stateDictPickle([{ name: 'w', shape: [2, 2], stride: [2, 1], key: '0', numel: 4 }]), { '0': Float32Array.of(1, 2, 3, 4) }));
    const src = await openTorchBin(f);
    assert.deepEqual([...new Float32Array((await src.read('w')).data.slice().buffer)], [1, 2, 3, 4]);
    await src.close();
  } finally {
    await cleanup();
  }
});

test('a shard index naming "" or "." is BAD_FORMAT, not EISDIR', async () => {
  for (const shard of ['', '.']) {
    const { dir, cleanup } = await tempDir();
    try {
      await mkdir(dir, { recursive: true });
      await writeFile(path.join(dir, 'config.json'), '{}');
      await writeFile(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { 'a.weight': shard } }));
      await assert.rejects(openHFCheckpoint(dir), chatErr('BAD_FORMAT', /weight_map entry for a\.weight is not a file name/));
    } finally {
      await cleanup();
    }
  }
});

test('safetensors: a tensor listed twice in the header is BAD_FORMAT', () => {
  const entry = '{"dtype":"F32","shape":[1],"data_offsets":[0,4]}';
  const json = `{"__metadata__":{"k":"v"},"w":${entry}, "w" : ${entry}}`;
  assert.throws(() => parseSafetensorsHeader('dup.safetensors', json, 8 + json.length, 8 + json.length + 4), chatErr('BAD_FORMAT', /tensor w appears twice/));
  // Keys inside values and escaped quotes do not count; distinct keys pass.
  assert.equal(firstDuplicateTopLevelKey('{"a":{"a":1,"b":"\\"a\\":"},"b":[{"a":2}],"c\\"":1}'), undefined);
  assert.equal(firstDuplicateTopLevelKey('{"\\u0061":1,"a":2}'), 'a');
  const ok = rawSafetensors({ w: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, new Uint8Array(4));
  assert.ok(ok.length > 0);
});

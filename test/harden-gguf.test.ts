/**
 * Crafted GGUF files: lengths and counts are bounded by what a key can need and by what is left in
 * the file before anything is allocated; tensors may not overlap or go backwards; a huge
 * block_count fails on the config instead of sizing a tensor list. The GGUF bytes are assembled
 * by hand here (not with our writer). Large files are sparse: they cost no disk and, if a bound
 * were missing, the reader would have to read gigabytes to fail.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { open, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { GgufReader } from '../src/formats/gguf.js';
import { openModel } from '../src/model/open.js';
import { ChatGLMError } from '../src/errors.js';
import { tempDir } from './support/formats-tmp.js';
import { Bytes } from './support/harden-bytes.js';
import { FAMILIES } from '../src/families/registry.js';

const kvString = (b: Bytes, k: string, v: string): Bytes => b.str(k).u32(8).str(v);
const kvU32 = (b: Bytes, k: string, v: number): Bytes => b.str(k).u32(4).u32(v);

const head = (tensors: number, kvs: number): Bytes => new Bytes().u32(0x46554747).u32(3).u64(tensors).u64(kvs);

/** Writes `bytes` at the start of a file of `size` bytes (sparse past the bytes). */
async function sparseFile(file: string, bytes: Uint8Array, size: number): Promise<void> {
  const fh = await open(file, 'w');
  try {
    await fh.write(bytes, 0, bytes.length, 0);
    await fh.truncate(size);
  } finally {
    await fh.close();
  }
}

const badFormat = (re: RegExp) => (e: unknown): boolean => e instanceof ChatGLMError && e.code === 'BAD_FORMAT' && re.test(e.message);

test('a string length of 2.9 GB in a 3 GB file is refused without reading it', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const f = path.join(dir, 'long-string.gguf');
    await sparseFile(f, head(0, 1).str('general.name').u32(8).u64(2_900_000_000).bytes(), 3_000_000_000);
    const t0 = performance.now();
    await assert.rejects(GgufReader.open(f), badFormat(/claims 2900000000 bytes, more than 16777216 bytes/));
    assert.ok(performance.now() - t0 < 2000, 'rejected before reading the string');
    // A key is short.
    await sparseFile(f, head(0, 1).u64(100_000).bytes(), 3_000_000_000);
    await assert.rejects(GgufReader.open(f), badFormat(/a metadata key at byte 24 claims 100000 bytes, more than 4096/));
  } finally {
    await cleanup();
  }
});

test('a metadata array claiming 3e8 items is refused (in a 3 GB sparse file and in a tiny one)', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const f = path.join(dir, 'big-array.gguf');
    const bytes = head(0, 1).str('tokenizer.ggml.scores').u32(9).u32(0).u64(300_000_000).bytes();
    await sparseFile(f, bytes, 3_000_000_000);
    await assert.rejects(GgufReader.open(f), badFormat(/claims 300000000 items, more than 4194304/));
    await writeFile(f, bytes);
    await assert.rejects(GgufReader.open(f), badFormat(/array length .* is 300000000, more than the file could hold/));
  } finally {
    await cleanup();
  }
});

test('duplicate metadata keys, overlapping and out-of-order tensors are refused', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const f = path.join(dir, 't.gguf');
    await writeFile(f, kvU32(kvU32(head(0, 2), 'a.b', 1), 'a.b', 2).bytes());
    await assert.rejects(GgufReader.open(f), badFormat(/"a\.b" appears twice/));

    // Two 8-float F32 tensors (32 bytes each).
    const twoTensors = (offA: number, offB: number): Uint8Array => {
      const b = head(2, 0);
      b.str('a').u32(1).u64(8).u32(0).u64(offA);
      b.str('b').u32(1).u64(8).u32(0).u64(offB);
      b.pad(32);
      const out = new Uint8Array(b.length + 128);
      out.set(b.bytes());
      return out;
    };
    await writeFile(f, twoTensors(0, 32));
    const ok = await GgufReader.open(f);
    assert.deepEqual(ok.header.tensors.map((t) => t.offset), [0, 32]);
    await ok.close();
    await writeFile(f, twoTensors(0, 0));
    await assert.rejects(GgufReader.open(f), badFormat(/tensor b starts at data offset 0, inside or before the previous tensor a/));
    await writeFile(f, twoTensors(64, 0));
    await assert.rejects(GgufReader.open(f), badFormat(/tensor b starts at data offset 0/));
  } finally {
    await cleanup();
  }
});

test('a block_count of 1e8 fails on the config at once', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const f = path.join(dir, 'layers.gguf');
    const b = kvString(head(1, 6), 'general.architecture', 'chatglm');
    kvU32(b, 'chatglm.block_count', 100_000_000);
    kvU32(b, 'chatglm.embedding_length', 32);
    kvU32(b, 'chatglm.feed_forward_length', 64);
    kvU32(b, 'chatglm.attention.head_count', 4);
    kvU32(b, 'chatglm.context_length', 64);
    b.str('token_embd.weight').u32(2).u64(32).u64(16).u32(0).u64(0).pad(32);
    const out = new Uint8Array(b.length + 32 * 16 * 4);
    out.set(b.bytes());
    await writeFile(f, out);
    const t0 = performance.now();
    await assert.rejects(openModel(f, { families: FAMILIES }), badFormat(/num_layers" is 100000000, more than 1024/));
    assert.ok(performance.now() - t0 < 5000);
  } finally {
    await cleanup();
  }
});

/**
 * Prompt cache files: a prefix's keys/values written to disk and read back give bit-identical
 * logits on both backends; files for another model, another cache layout, and truncated, corrupt
 * or foreign bytes are refused with a notice and leave the sequence empty and usable.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createReferenceBackend } from '../src/backend/reference/index.js';
import { parseGLMConfig } from '../src/model/config.js';
import { GLMModel } from '../src/model/glm.js';
import { loadWeights } from '../src/model/load.js';
import { CachedSequence } from '../src/generate/sequence.js';
import { loadPromptCache, modelIdentity, savePromptCache } from '../src/generate/prompt-cache.js';
import type { Backend } from '../src/backend/types.js';
import { configJson, MemorySource, randomWeights, rng, type TinyConfig } from './support/model-fixtures.js';
import { nativeBackend, nativeSkipReason } from './support/backend-native-fixtures.js';

const TINY: TinyConfig = { hidden: 64, layers: 2, heads: 4, headDim: 64, groups: 2, ffn: 40, vocab: 37, seqLength: 256 };

async function model(backend: Backend, t: TinyConfig = TINY, seed = 5): Promise<GLMModel> {
  const config = parseGLMConfig(configJson(t), 'config.json');
  return new GLMModel(config, await loadWeights(MemorySource.fromF32('tiny', randomWeights(t, seed)), config, backend), backend);
}

function ids(n: number, vocab: number, seed: number): number[] {
  const r = rng(seed);
  return Array.from({ length: n }, () => Math.floor(r() * vocab));
}

/** Runs `chunk` through the model on `seq` (as generate() does) and returns the last logits. */
function run(m: GLMModel, seq: CachedSequence, chunk: number[]): Float32Array {
  const out = m.forward([{ cache: seq.cache, ids: chunk }])[0]!;
  seq.appended(chunk);
  return out;
}

async function tmpDir(): Promise<string> {
  return fs.mkdtemp(path.join(os.tmpdir(), 'chatglm-prompt-cache-'));
}

const backends: { name: string; make: () => Backend; skip: string | undefined }[] = [
  { name: 'reference', make: () => createReferenceBackend(), skip: undefined },
  { name: 'native', make: () => nativeBackend(), skip: nativeSkipReason() },
];

for (const b of backends) {
  test(`prompt cache round trip: bit-identical next-token logits (${b.name})`, async (t) => {
    if (b.skip !== undefined) return t.skip(b.skip);
    const m = await model(b.make());
    const dir = await tmpDir();
    try {
      const file = path.join(dir, 'prefix.kvc');
      const prompt = ids(50, TINY.vocab, 7);
      const prefix = prompt.slice(0, 37);
      // The first conversation: the prefix, then more ids, saved with the prefix only.
      const first = new CachedSequence(m.newCache(128));
      run(m, first, prefix);
      const want = run(m, first, prompt.slice(37));
      await savePromptCache(file, first, 'model-a', prefix.length);

      const second = new CachedSequence(m.newCache(128));
      const r = await loadPromptCache(file, second, 'model-a');
      assert.deepEqual(r, { restored: prefix.length });
      assert.deepEqual(second.ids, prefix);
      assert.equal(second.cache.length, prefix.length);
      // reuse() sees the restored prefix like any cached one.
      assert.equal(second.reuse(prompt), prefix.length);
      const got = run(m, second, prompt.slice(37));
      assert.deepEqual(Array.from(got), Array.from(want));
      // And the logits are not trivially equal to those of a cache without the prefix.
      const cold = run(m, new CachedSequence(m.newCache(128)), prompt.slice(37));
      assert.notDeepEqual(Array.from(cold), Array.from(want));
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
}

test('prompt cache: another model, another layout, truncated and corrupt files are refused with a notice', async () => {
  const be = createReferenceBackend();
  const m = await model(be);
  const dir = await tmpDir();
  try {
    const file = path.join(dir, 'p.kvc');
    const prefix = ids(20, TINY.vocab, 9);
    const seq = new CachedSequence(m.newCache(64));
    const want = run(m, seq, prefix);
    await savePromptCache(file, seq, 'model-a');
    const good = await fs.readFile(file);

    const fresh = (): CachedSequence => new CachedSequence(m.newCache(64));
    // A missing file is the first run: nothing restored, nothing to say.
    assert.deepEqual(await loadPromptCache(path.join(dir, 'none.kvc'), fresh(), 'model-a'), { restored: 0 });

    const check = async (bytes: Uint8Array | string, model: string, pattern: RegExp, into = fresh()): Promise<void> => {
      await fs.writeFile(file, bytes);
      const r = await loadPromptCache(file, into, model);
      assert.equal(r.restored, 0);
      assert.match(r.notice ?? '', pattern);
      assert.ok(!(r.notice ?? '').includes('\n'), 'the notice is one line');
      assert.equal(into.ids.length, 0);
      assert.equal(into.cache.length, 0);
    };
    await check(good, 'model-b', /another model/);
    await check(good.subarray(0, good.length - 100), 'model-a', /truncated/);
    await check(good.subarray(0, 30), 'model-a', /truncated|corrupt/);
    await check(new Uint8Array(0), 'model-a', /not a prompt cache/);
    await check('{"hello": 1}\n', 'model-a', /not a prompt cache/);
    const flipped = Buffer.from(good);
    flipped[Math.floor(flipped.length / 2)]! ^= 0x40;
    await check(flipped, 'model-a', /checksum/);
    const badHeader = Buffer.from(good);
    badHeader[12] = 0x7b ^ 0xff; // inside the JSON header
    await check(badHeader, 'model-a', /corrupt/);
    // Same identity string, different shape (3 layers): the layout check catches it.
    const other = await model(be, { ...TINY, layers: 3 }, 6);
    await check(good, 'model-a', /layout/, new CachedSequence(other.newCache(64)));
    // A sequence that held something before a refused load is left empty, and still works.
    const used = fresh();
    run(m, used, prefix.slice(0, 5));
    await check(good, 'model-b', /another model/, used);
    assert.deepEqual(Array.from(run(m, used, prefix)), Array.from(want));

    // The intact file still loads after all that.
    await fs.writeFile(file, good);
    assert.deepEqual(await loadPromptCache(file, fresh(), 'model-a'), { restored: prefix.length });
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('modelIdentity: follows the content and the load options, not the path', async () => {
  const dir = await tmpDir();
  try {
    const bytes = new Uint8Array(3 << 20).map((_, i) => (i * 2654435761) >>> 24);
    const a = path.join(dir, 'a.gguf');
    const copy = path.join(dir, 'copy.gguf');
    await fs.writeFile(a, bytes);
    await fs.mkdir(path.join(dir, 'sub'));
    await fs.writeFile(path.join(dir, 'sub', 'a.gguf'), bytes);
    const idA = await modelIdentity(a);
    assert.match(idA, /^[0-9a-f]{64}$/);
    assert.equal(await modelIdentity(path.join(dir, 'sub', 'a.gguf')), idA);
    assert.notEqual(await modelIdentity(a, 'quantize=q4_0'), idA);
    // A change in the last MiB (the last weights) changes it; so does the size.
    const tail = Buffer.from(bytes);
    tail[tail.length - 10]! ^= 1;
    await fs.writeFile(copy, tail);
    await fs.rename(copy, path.join(dir, 'sub', 'a.gguf'));
    assert.notEqual(await modelIdentity(path.join(dir, 'sub', 'a.gguf')), idA);
    await fs.writeFile(path.join(dir, 'sub', 'a.gguf'), bytes.subarray(1));
    assert.notEqual(await modelIdentity(path.join(dir, 'sub', 'a.gguf')), idA);
    // A directory: every file counts.
    const d1 = await modelIdentity(path.join(dir, 'sub'));
    await fs.writeFile(path.join(dir, 'sub', 'config.json'), '{}');
    assert.notEqual(await modelIdentity(path.join(dir, 'sub')), d1);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

/**
 * copySequencePrefix: a prefix's keys/values copied from one cached sequence into another give
 * bit-identical logits to prefilling it there, on both backends; the source keeps its contents;
 * caches of different layouts are not copied.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createReferenceBackend } from '../src/backend/reference/index.js';
import { parseGLMConfig } from '../src/model/config.js';
import { GLMModel } from '../src/model/glm.js';
import { loadWeights } from '../src/model/load.js';
import { CachedSequence } from '../src/generate/sequence.js';
import { copySequencePrefix } from '../src/generate/prompt-cache.js';
import type { Backend } from '../src/backend/types.js';
import { configJson, MemorySource, randomWeights, rng, type TinyConfig } from './support/model-fixtures.js';
import { nativeBackend, nativeSkipReason } from './support/backend-native-fixtures.js';

const TINY: TinyConfig = { hidden: 64, layers: 2, heads: 4, headDim: 64, groups: 2, ffn: 40, vocab: 37, seqLength: 256 };

async function model(backend: Backend): Promise<GLMModel> {
  const config = parseGLMConfig(configJson(TINY), 'config.json');
  return new GLMModel(config, await loadWeights(MemorySource.fromF32('tiny', randomWeights(TINY, 5)), config, backend), backend);
}

function ids(n: number, seed: number): number[] {
  const r = rng(seed);
  return Array.from({ length: n }, () => Math.floor(r() * TINY.vocab));
}

function run(m: GLMModel, seq: CachedSequence, chunk: number[]): number[] {
  const out = m.forward([{ cache: seq.cache, ids: chunk }])[0]!;
  seq.appended(chunk);
  return Array.from(out);
}

const backends: { name: string; make: () => Backend; skip: string | undefined }[] = [
  { name: 'reference', make: () => createReferenceBackend(), skip: undefined },
  { name: 'native', make: () => nativeBackend(), skip: nativeSkipReason() },
];

for (const b of backends) {
  test(`copySequencePrefix: the copied prefix gives bit-identical logits to prefilling it (${b.name})`, async (t) => {
    if (b.skip !== undefined) return t.skip(b.skip);
    const m = await model(b.make());
    const prompt = ids(50, 3);
    const source = new CachedSequence(m.newCache(128));
    run(m, source, [...prompt.slice(0, 37), ...ids(20, 4)]);
    const sourceIds = [...source.ids];

    // The target held another conversation: it is replaced by the prefix.
    const target = new CachedSequence(m.newCache(128));
    run(m, target, ids(70, 9));
    assert.equal(copySequencePrefix(source, target, 37), 37);
    assert.deepEqual(target.ids, prompt.slice(0, 37));
    assert.equal(target.cache.length, 37);
    assert.equal(target.reuse(prompt), 37);
    const got = run(m, target, prompt.slice(37));

    const alone = new CachedSequence(m.newCache(128));
    run(m, alone, prompt.slice(0, 37));
    assert.deepEqual(got, run(m, alone, prompt.slice(37)));
    assert.notDeepEqual(got, run(m, new CachedSequence(m.newCache(128)), prompt.slice(37)));

    // The source is untouched, and a count past what it holds is capped.
    assert.deepEqual(source.ids, sourceIds);
    assert.equal(source.cache.length, sourceIds.length);
    const fresh = new CachedSequence(m.newCache(128));
    assert.equal(copySequencePrefix(source, fresh, 500), sourceIds.length);
    assert.deepEqual(fresh.ids, sourceIds);
  });
}

test('copySequencePrefix: caches of another layout (the other backend) are left alone', async (t) => {
  const skip = nativeSkipReason();
  if (skip !== undefined) return t.skip(skip);
  const ref = await model(createReferenceBackend());
  const nat = await model(nativeBackend());
  const source = new CachedSequence(ref.newCache(64));
  run(ref, source, ids(40, 1));
  const target = new CachedSequence(nat.newCache(64));
  run(nat, target, ids(5, 2));
  assert.equal(copySequencePrefix(source, target, 40), 0);
  assert.deepEqual(target.ids, ids(5, 2));
  assert.equal(target.cache.length, 5);
});

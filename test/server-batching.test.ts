/**
 * Continuous batching must not change results. The batched forward computes every row as the
 * single-sequence path does, so: (1) logits of a sequence are bit-identical whether it runs alone,
 * in prompt chunks, or beside other sequences, on both backends and all weight types; (2) greedy
 * generations through the BatchScheduler, eight at once, give exactly the token ids of each one
 * generated alone with the plain generate() loop.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bundledModelPath } from '../src/api.js';
import { openModel } from '../src/model/open.js';
import { nativeAvailable } from '../src/backend/native/index.js';
import { BatchScheduler } from '../src/generate/batch-scheduler.js';
import { generateAll } from '../src/generate/generator.js';
import { CachedSequence } from '../src/generate/sequence.js';
import type { BackendName } from '../src/backend/select.js';
import { FAMILIES } from '../src/families/registry.js';

const backends: BackendName[] = nativeAvailable() ? ['reference', 'native'] : ['reference'];

function ids(n: number, seed: number): number[] {
  return Array.from({ length: n }, (_, i) => (i * 37 + seed * 101 + 5) % 4000);
}

function sameBits(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return false;
  return true;
}

for (const backend of backends) {
  for (const quantize of [undefined, 'q4_0', 'q8_0'] as const) {
    test(`${backend} ${quantize ?? 'f16'}: a sequence's logits are bit-identical alone, in chunks, and batched with others`, async () => {
      const { model, backend: be } = await openModel(bundledModelPath(), { families: FAMILIES, backend, ...(quantize !== undefined ? { quantize } : {}) });
      try {
        const prompt = ids(45, 1);
        const other = ids(20, 2);
        const steps = [7, 99, 300, 12, 1];
        // Alone: one prefill, then one token per step (the fused single-sequence layer on native).
        const alone: Float32Array[] = [];
        const c1 = model.newCache(128);
        alone.push(model.forward([{ cache: c1, ids: prompt }])[0]!);
        for (const id of steps) alone.push(model.forward([{ cache: c1, ids: [id] }])[0]!);
        // Batched: the prompt in uneven chunks beside other sequences (decoding and prefilling), then decode beside them.
        const batched: Float32Array[] = [];
        const c2 = model.newCache(128);
        const co = model.newCache(128);
        model.forward([{ cache: co, ids: other.slice(0, 10) }]);
        let last: Float32Array | undefined;
        for (const [a, b] of [
          [0, 1],
          [1, 9],
          [9, 45],
        ] as const) {
          last = model.forward([{ cache: co, ids: [5] }, { cache: c2, ids: prompt.slice(a, b) }, { cache: model.newCache(50), ids: other }])[1];
        }
        batched.push(last!);
        // Decode beside 1 to 6 other rows: 2, 3, 5, 6 and 7 rows in all (the matmul pads 2-3 and 6-7 rows to its four-row kernel).
        for (const [k, id] of steps.entries()) {
          const extra = [0, 1, 3, 4, 5][k]!;
          const inputs = [{ cache: co, ids: [id] }, { cache: c2, ids: [id] }];
          if (extra > 0) inputs.push({ cache: model.newCache(8), ids: other.slice(0, extra) });
          batched.push(model.forward(inputs)[1]!);
        }
        alone.forEach((l, i) => assert.ok(sameBits(l, batched[i]!), `step ${i}: batched logits differ from alone`));
      } finally {
        be.dispose?.();
      }
    });
  }
}

for (const backend of backends) {
  test(`${backend}: eight greedy generations through the batch scheduler equal each one generated alone`, async () => {
    const { model, backend: be } = await openModel(bundledModelPath(), { families: FAMILIES, backend });
    try {
      // Mixed prompt and output lengths; a small prefill budget so prompts span several ticks.
      const prompts = Array.from({ length: 8 }, (_, i) => ids(5 + i * 9, i + 3));
      const maxNew = (i: number): number => 6 + ((i * 7) % 19);
      const alone = [];
      for (const [i, p] of prompts.entries()) alone.push((await generateAll(model, p, { greedy: true, maxNewTokens: maxNew(i), contextLength: 256 })).ids);
      const scheduler = new BatchScheduler(model, { prefillBudget: 16 });
      const runs = prompts.map(async (p, i) => {
        const lane = scheduler.lane();
        lane.begin();
        try {
          return (await generateAll(lane, p, { greedy: true, maxNewTokens: maxNew(i), sequence: new CachedSequence(lane.newCache(256)) })).ids;
        } finally {
          lane.close();
        }
      });
      const together = await Promise.all(runs);
      assert.deepEqual(together, alone);
      // They really ran together: on average several sequences per forward step.
      assert.ok(scheduler.stats.sequences / scheduler.stats.ticks > 3, `mean batch width ${scheduler.stats.sequences / scheduler.stats.ticks}`);
      assert.ok(alone.every((a, i) => a.length === maxNew(i)));
    } finally {
      be.dispose?.();
    }
  });
}

test('an aborted lane drops its queued step at once with ABORTED; the others finish', async () => {
  const { model, backend: be } = await openModel(bundledModelPath(), { families: FAMILIES, backend: 'reference' });
  try {
    const scheduler = new BatchScheduler(model);
    const a = scheduler.lane();
    const b = scheduler.lane();
    const ac = new AbortController();
    a.begin(ac.signal);
    b.begin();
    const pa = a.forward([{ cache: a.newCache(32), ids: [1, 2, 3] }]);
    const pb = b.forward([{ cache: b.newCache(32), ids: [4, 5] }]);
    ac.abort();
    await assert.rejects(pa, (e: unknown) => (e as { code?: string }).code === 'ABORTED');
    const [logits] = await pb;
    assert.equal(logits!.length, model.config.vocabSize);
    assert.equal(scheduler.pending, 0);
    assert.equal(scheduler.stats.sequences, 1);
  } finally {
    be.dispose?.();
  }
});

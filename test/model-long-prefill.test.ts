// FlashAttention-style memory: a 4096-token prefill runs with attention scratch memory that grows
// at most linearly with the length (an [n x seq] score matrix would grow 16x from 1024 to 4096).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReferenceBackend } from '../src/backend/reference/index.js';
import { buildCase } from './support/model-compare.js';
import { rng } from './support/model-fixtures.js';

test('4096-token prefill: attention scratch bytes are linear (not quadratic) in the length', async (t) => {
  const backend = new ReferenceBackend();
  const { model } = await buildCase(
    { tiny: { hidden: 8, layers: 1, heads: 2, headDim: 4, groups: 1, ffn: 8, vocab: 13, seqLength: 4096 }, dtype: 'F32', seed: 3 },
    backend,
  );
  const r = rng(4);
  const scratch: Record<number, number> = {};
  let last: Float32Array | undefined;
  for (const n of [1024, 4096]) {
    const ids = Array.from({ length: n }, () => Math.floor(r() * 13));
    const cache = model.newCache(n);
    last = model.forward([{ cache, ids }])[0]!;
    assert.equal(cache.length, n);
    scratch[n] = backend.lastAttentionScratchBytes();
  }
  const s1 = scratch[1024]!, s4 = scratch[4096]!;
  t.diagnostic(`attention scratch: ${s1} bytes at 1024 tokens, ${s4} bytes at 4096 tokens`);
  assert.ok(s1 > 0, 'the backend reports its scratch');
  assert.ok(s4 <= 4 * s1, `scratch grew ${s4 / s1}x for 4x the tokens`);
  // a single 4096 x 4096 f32 score matrix alone would be 64 MiB
  assert.ok(s4 < (4096 * 4096 * 4) / 1000);
  assert.ok(last!.every((x) => Number.isFinite(x)));
});

// The GLM model on the reference backend against the independent float64 oracle
// (test/support/model-oracle-f64.ts), over the configurations the golden files cannot reach.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChatGLMError } from '../src/errors.js';
import { buildCase, relError, rows, type Case } from './support/model-compare.js';
import { rng } from './support/model-fixtures.js';

function randomIds(n: number, vocab: number, seed: number): number[] {
  const r = rng(seed);
  return Array.from({ length: n }, () => Math.floor(r() * vocab));
}

/** Prefill `prefill` tokens, then decode the rest one by one; all logits vs the oracle. */
async function prefillThenDecode(c: Case, n: number, prefill: number): Promise<number> {
  const { model, oracle } = await buildCase(c);
  const ids = randomIds(n, c.tiny.vocab, c.seed + 1);
  const want = oracle(ids);
  const cache = model.newCache(n);
  const got: Float32Array[] = [];
  got.push(...rows(model.forward([{ cache, ids: ids.slice(0, prefill), allLogits: true }])[0]!, c.tiny.vocab));
  for (let t = prefill; t < n; t++) got.push(model.forward([{ cache, ids: [ids[t]!] }])[0]!);
  assert.equal(model.tokenCount(cache), n);
  return relError(got, want).err;
}

const cases: { name: string; c: Case }[] = [
  {
    name: 'head_dim 64, 3 layers, 2 KV groups, f32',
    c: { tiny: { hidden: 48, layers: 3, heads: 4, headDim: 64, groups: 2, ffn: 40, vocab: 37 }, dtype: 'F32', seed: 11 },
  },
  {
    name: 'head_dim 128, 2 layers, 4 KV groups (one per head), rope_ratio 500, f16',
    c: { tiny: { hidden: 64, layers: 2, heads: 4, headDim: 128, groups: 4, ffn: 48, vocab: 29, ropeRatio: 500, eps: 1.5625e-7 }, dtype: 'F16', seed: 12 },
  },
  {
    name: 'head_dim 64, 2 layers, 1 KV group, rope_ratio 50, bf16',
    c: { tiny: { hidden: 32, layers: 2, heads: 4, headDim: 64, groups: 1, ffn: 24, vocab: 31, ropeRatio: 50 }, dtype: 'BF16', seed: 13 },
  },
  {
    name: 'head_dim 16, 8 heads over 2 groups, position interpolation (ChatGLM2-32k style), f32',
    c: { tiny: { hidden: 32, layers: 2, heads: 8, headDim: 16, groups: 2, ffn: 24, vocab: 19, ropeRatio: 16 }, dtype: 'F32', ropeScaling: 'position', seed: 14 },
  },
  {
    name: 'P-Tuning v2 prefix of 3 virtual tokens, 2 layers',
    c: { tiny: { hidden: 32, layers: 2, heads: 4, headDim: 16, groups: 2, ffn: 24, vocab: 23, preSeqLen: 3 }, dtype: 'F32', seed: 15 },
  },
];

for (const { name, c } of cases) {
  test(`model vs float64 oracle: ${name}`, async (t) => {
    const err = await prefillThenDecode(c, 9, 5);
    t.diagnostic(`max |err| / max |logit| = ${err.toExponential(2)}`);
    assert.ok(err <= 1e-5, `relative error ${err}`);
  });
}

test('the comparison can fail: a different rope_ratio moves the logits far beyond the tolerance', async () => {
  // Guards against an oracle comparison that cannot fail: changing rope_ratio alone must move the
  // logits well beyond the tolerance used above.
  const base: Case = { tiny: { hidden: 32, layers: 1, heads: 4, headDim: 16, groups: 2, ffn: 24, vocab: 19 }, dtype: 'F32', seed: 21 };
  const { model } = await buildCase(base);
  const { oracle } = await buildCase({ ...base, tiny: { ...base.tiny, ropeRatio: 3 } });
  const ids = randomIds(6, 19, 5);
  const got = rows(model.forward([{ cache: model.newCache(6), ids, allLogits: true }])[0]!, 19);
  assert.ok(relError(got, oracle(ids)).err > 1e-3);
});

test('one step over several sequences equals running each on its own (and the oracle)', async () => {
  const c: Case = { tiny: { hidden: 32, layers: 2, heads: 4, headDim: 16, groups: 2, ffn: 24, vocab: 23, ropeRatio: 7 }, dtype: 'F32', seed: 31 };
  const { model, oracle } = await buildCase(c);
  const a = randomIds(7, 23, 1);
  const b = randomIds(4, 23, 2);
  const ca = model.newCache(16);
  const cb = model.newCache(16);
  // a: prefill 5 alone; then a batched step with a's 2 next tokens and b's whole prompt
  model.forward([{ cache: ca, ids: a.slice(0, 5) }]);
  const [la, lb] = model.forward([
    { cache: ca, ids: a.slice(5), allLogits: true },
    { cache: cb, ids: b, allLogits: true },
  ]);
  assert.equal(ca.length, 7);
  assert.equal(cb.length, 4);
  assert.ok(relError(rows(la!, 23), oracle(a).slice(5)).err <= 1e-5);
  assert.ok(relError(rows(lb!, 23), oracle(b)).err <= 1e-5);
  // then one decode step of both together
  const next = [3, 9];
  const [da, db] = model.forward([
    { cache: ca, ids: [next[0]!] },
    { cache: cb, ids: [next[1]!] },
  ]);
  assert.ok(relError([da!], oracle([...a, next[0]!]).slice(-1)).err <= 1e-5);
  assert.ok(relError([db!], oracle([...b, next[1]!]).slice(-1)).err <= 1e-5);
});

test('overflowing the cache is a CONTEXT_OVERFLOW ChatGLMError and leaves the cache untouched', async () => {
  const c: Case = { tiny: { hidden: 16, layers: 1, heads: 2, headDim: 8, groups: 1, ffn: 8, vocab: 11 }, dtype: 'F32', seed: 41 };
  const { model } = await buildCase(c);
  const cache = model.newCache(4);
  model.forward([{ cache, ids: [1, 2, 3] }]);
  assert.throws(
    () => model.forward([{ cache, ids: [4, 5] }]),
    (e: unknown) => e instanceof ChatGLMError && e.code === 'CONTEXT_OVERFLOW',
  );
  assert.equal(cache.length, 3);
  model.forward([{ cache, ids: [4] }]);
  assert.equal(cache.length, 4);
});

test('a token id outside the vocabulary, or one cache twice in a step, is a BAD_ARGUMENT ChatGLMError', async () => {
  const c: Case = { tiny: { hidden: 16, layers: 1, heads: 2, headDim: 8, groups: 1, ffn: 8, vocab: 11 }, dtype: 'F32', seed: 42 };
  const { model } = await buildCase(c);
  for (const id of [11, -1, 2.5]) {
    assert.throws(
      () => model.forward([{ cache: model.newCache(4), ids: [id] }]),
      (e: unknown) => e instanceof ChatGLMError && e.code === 'BAD_ARGUMENT' && e.message.includes(String(id)),
    );
  }
  const cache = model.newCache(4);
  assert.throws(
    () => model.forward([{ cache, ids: [1] }, { cache, ids: [2] }]),
    (e: unknown) => e instanceof ChatGLMError && e.code === 'BAD_ARGUMENT',
  );
  assert.equal(cache.length, 0);
});

test('truncating a cache and re-feeding gives the same logits (prefix reuse), also with a P-Tuning prefix', async () => {
  const c: Case = { tiny: { hidden: 32, layers: 2, heads: 4, headDim: 16, groups: 2, ffn: 24, vocab: 23 }, dtype: 'F32', seed: 51 };
  {
    const p: Case = { ...c, tiny: { ...c.tiny, preSeqLen: 2 } };
    const { model, oracle } = await buildCase(p);
    const ids = randomIds(6, 23, 4);
    const cache = model.newCache(8);
    model.forward([{ cache, ids: [...ids.slice(0, 3), 1, 1] }]);
    model.truncate(cache, 3);
    assert.equal(model.tokenCount(cache), 3);
    const l = model.forward([{ cache, ids: ids.slice(3), allLogits: true }])[0]!;
    assert.ok(relError(rows(l, 23), oracle(ids).slice(3)).err <= 1e-5);
  }
  const { model, oracle } = await buildCase(c);
  const ids = randomIds(6, 23, 3);
  const cache = model.newCache(8);
  model.forward([{ cache, ids: [...ids.slice(0, 4), 0, 0] }]);
  cache.truncate(4);
  const l = model.forward([{ cache, ids: ids.slice(4), allLogits: true }])[0]!;
  assert.ok(relError(rows(l, 23), oracle(ids).slice(4)).err <= 1e-5);
});

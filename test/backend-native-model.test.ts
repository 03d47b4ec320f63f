// The whole GLM forward pass on the native backend against the float64 oracle
// (test/support/model-oracle-f64.ts): prefill then decode through the f16 KV cache, several
// configurations, plus a batched step of two sequences against running them one at a time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildCase, relError, rows, type Case } from './support/model-compare.js';
import { rng } from './support/model-fixtures.js';
import { nativeBackend, nativeSkipReason } from './support/backend-native-fixtures.js';

const skip = nativeSkipReason();

function randomIds(n: number, vocab: number, seed: number): number[] {
  const r = rng(seed);
  return Array.from({ length: n }, () => Math.floor(r() * vocab));
}

const cases: { name: string; c: Case }[] = [
  {
    name: 'head_dim 64, 3 layers, 2 KV groups, f32',
    c: { tiny: { hidden: 64, layers: 3, heads: 4, headDim: 64, groups: 2, ffn: 40, vocab: 37 }, dtype: 'F32', seed: 21 },
  },
  {
    name: 'head_dim 128, 4 KV groups, rope_ratio 500, f16',
    c: { tiny: { hidden: 64, layers: 2, heads: 4, headDim: 128, groups: 4, ffn: 48, vocab: 29, ropeRatio: 500 }, dtype: 'F16', seed: 22 },
  },
  {
    name: '8 heads over 1 group, position interpolation, bf16',
    c: { tiny: { hidden: 32, layers: 2, heads: 8, headDim: 16, groups: 1, ffn: 24, vocab: 19, ropeRatio: 16 }, dtype: 'BF16', ropeScaling: 'position', seed: 23 },
  },
];

for (const { name, c } of cases) {
  test(`native model vs float64 oracle: ${name}`, async (t) => {
    if (skip !== undefined) return t.skip(skip);
    const be = nativeBackend();
    const { model, oracle } = await buildCase(c, be);
    const n = 75; // the prompt crosses a 64-key tile
    const prefill = 70;
    const ids = randomIds(n, c.tiny.vocab, c.seed + 1);
    const want = oracle(ids);
    const cache = model.newCache(n);
    const got: Float32Array[] = [];
    got.push(...rows(model.forward([{ cache, ids: ids.slice(0, prefill), allLogits: true }])[0]!, c.tiny.vocab));
    for (let i = prefill; i < n; i++) got.push(model.forward([{ cache, ids: [ids[i]!] }])[0]!);
    const err = relError(got, want).err;
    t.diagnostic(`max |err| / max |logit| = ${err.toExponential(2)}`);
    // f32 arithmetic and an f16 KV cache against float64: 1e-5 would be too tight for the cache.
    assert.ok(err <= 2e-3, `relative error ${err}`);
  });
}

test('native model: two sequences in one step equal each run alone', async (t) => {
  if (skip !== undefined) return t.skip(skip);
  const be = nativeBackend();
  const c = cases[0]!.c;
  const { model } = await buildCase(c, be);
  const a = randomIds(9, c.tiny.vocab, 1);
  const b = randomIds(4, c.tiny.vocab, 2);
  const ca = model.newCache(16);
  const cb = model.newCache(16);
  const [la, lb] = model.forward([
    { cache: ca, ids: a },
    { cache: cb, ids: b },
  ]);
  const sa = model.forward([{ cache: model.newCache(16), ids: a }])[0]!;
  const sb = model.forward([{ cache: model.newCache(16), ids: b }])[0]!;
  assert.ok(relError([la!], [Array.from(sa)]).err < 1e-5);
  assert.ok(relError([lb!], [Array.from(sb)]).err < 1e-5);
});

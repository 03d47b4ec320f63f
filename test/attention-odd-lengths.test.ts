/**
 * Native FlashAttention against the reference backend for prompt lengths that are not multiples of
 * the key tile or the query block (1, 7, 31, 33, 257), on every kernel table and with 1, 2 and 3
 * threads (the work is split over KV groups and query blocks), starting at position 0 and after
 * a cached prefix of 5; and the whole model's prefill logits for the same lengths. K/V are rounded
 * to f16 first so the f16 cache stores them exactly and what is left is arithmetic.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReferenceBackend } from '../src/backend/reference/index.js';
import type { AttentionParams, Backend, KVCache } from '../src/backend/types.js';
import { roundToF16 } from '../src/numeric/half.js';
import { parseGLMConfig } from '../src/model/config.js';
import { GLMModel } from '../src/model/glm.js';
import { loadWeights } from '../src/model/load.js';
import { configJson, MemorySource, randomWeights, type TinyConfig } from './support/model-fixtures.js';
import { nativeBackend, nativeIsas, nativeSkipReason, randomF32, relError, seeded } from './support/backend-native-fixtures.js';

const skip = nativeSkipReason();
const LENGTHS = [1, 7, 31, 33, 257];

function f16ish(rand: () => number, n: number): Float32Array {
  const v = randomF32(rand, n, 1.5);
  for (let i = 0; i < v.length; i++) v[i] = roundToF16(v[i]!);
  return v;
}

interface Chunk {
  q: Float32Array;
  k: Float32Array;
  v: Float32Array;
  n: number;
}

/** Attention outputs of `chunks` run one after the other through a fresh cache of `be`. */
function run(be: Backend, chunks: Chunk[], params: AttentionParams): Float32Array[] {
  const cache: KVCache = be.createKVCache(1, params.nGroups, params.headDim, 512);
  return chunks.map((c) => {
    const out = new Float32Array(c.n * params.nHeads * params.headDim);
    be.attention(c.q, c.k, c.v, out, [{ cache, rowStart: 0, nTokens: c.n, startPos: cache.length }], params);
    cache.length += c.n;
    return out;
  });
}

test('attention: odd prompt lengths, every kernel table, 1-3 threads, from 0 and after a prefix', (t) => {
  if (skip !== undefined) return t.skip(skip);
  const ref = new ReferenceBackend();
  const natives = nativeIsas().flatMap((isa) => [1, 2, 3].map((threads) => ({ name: `${isa}/${threads}`, be: nativeBackend(isa, threads) })));
  let worst = 0;
  for (const [nHeads, nGroups, headDim] of [[32, 2, 128], [6, 3, 40]] as const) {
    const params: AttentionParams = { layer: 0, nHeads, nGroups, headDim, scale: 1 / Math.sqrt(headDim) };
    for (const n of LENGTHS) {
      for (const prefix of [0, 5]) {
        const rand = seeded(n * 7 + prefix + nHeads);
        const chunk = (m: number): Chunk => ({
          q: randomF32(rand, m * nHeads * headDim, 1.5),
          k: f16ish(rand, m * nGroups * headDim),
          v: f16ish(rand, m * nGroups * headDim),
          n: m,
        });
        const chunks = prefix > 0 ? [chunk(prefix), chunk(n)] : [chunk(n)];
        const want = run(ref, chunks, params).at(-1)!;
        for (const { name, be } of natives) {
          const got = run(be, chunks, params).at(-1)!;
          const err = relError(got, want);
          worst = Math.max(worst, err);
          assert.ok(err < 1e-5, `${name}: heads ${nHeads} groups ${nGroups} hd ${headDim}, ${n} tokens after ${prefix}: rel error ${err}`);
        }
      }
    }
  }
  for (const { be } of natives) be.dispose?.();
  t.diagnostic(`worst relative error ${worst.toExponential(2)}`);
});

test('model prefill: native logits equal the reference backend for odd prompt lengths', async (t) => {
  if (skip !== undefined) return t.skip(skip);
  const tiny: TinyConfig = { hidden: 64, layers: 2, heads: 4, headDim: 32, groups: 2, ffn: 48, vocab: 41, seqLength: 512 };
  const config = parseGLMConfig(configJson(tiny), 'config.json');
  const tensors = randomWeights(tiny, 31);
  const ref = new ReferenceBackend();
  const nat = nativeBackend(undefined, 2);
  const refModel = new GLMModel(config, await loadWeights(MemorySource.fromF32('tiny', tensors), config, ref), ref);
  const natModel = new GLMModel(config, await loadWeights(MemorySource.fromF32('tiny', tensors), config, nat), nat);
  const rand = seeded(5);
  let worst = 0;
  for (const n of LENGTHS) {
    const ids = Array.from({ length: n }, () => Math.floor(rand() * tiny.vocab));
    const want = refModel.forward([{ cache: refModel.newCache(n), ids, allLogits: true }])[0]!;
    const got = natModel.forward([{ cache: natModel.newCache(n), ids, allLogits: true }])[0]!;
    assert.equal(got.length, n * tiny.vocab);
    const err = relError(got, want);
    worst = Math.max(worst, err);
    // The native cache holds K/V in f16 (the reference keeps f32): that rounding is the budget.
    assert.ok(err < 2e-3, `${n} tokens: rel error ${err}`);
  }
  nat.dispose?.();
  t.diagnostic(`worst relative error ${worst.toExponential(2)}`);
});

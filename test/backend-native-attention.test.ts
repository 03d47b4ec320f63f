// Native FlashAttention (f16 KV cache, query heads of a KV group together) against the reference
// backend: prefill across several key tiles, decode steps, two sequences batched in one call, and
// 1, 2 and 4 KV groups. K/V are pre-rounded to f16 so the f16 cache stores them exactly and any
// difference left is arithmetic, which must be tiny.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReferenceBackend } from '../src/backend/reference/index.js';
import type { AttentionParams, AttentionSeq, Backend, KVCache } from '../src/backend/types.js';
import { roundToF16 } from '../src/numeric/half.js';
import { ChatGLMError } from '../src/errors.js';
import { nativeBackend, nativeIsas, nativeSkipReason, randomF32, relError, seeded } from './support/backend-native-fixtures.js';

const skip = nativeSkipReason();

function f16ish(rand: () => number, n: number): Float32Array {
  const v = randomF32(rand, n, 1.5);
  for (let i = 0; i < v.length; i++) v[i] = roundToF16(v[i]!);
  return v;
}

interface Step {
  /** Tokens per sequence in this step. */
  tokens: number[];
}

/** Runs the same steps on both backends and returns the worst relative error over all outputs. */
function compare(be: Backend, nHeads: number, nGroups: number, headDim: number, steps: Step[], seed: number, layers = 2): number {
  const ref = new ReferenceBackend();
  const rand = seeded(seed);
  const nSeq = steps[0]!.tokens.length;
  const refCaches: KVCache[] = [];
  const natCaches: KVCache[] = [];
  for (let s = 0; s < nSeq; s++) {
    refCaches.push(ref.createKVCache(layers, nGroups, headDim, 1024));
    natCaches.push(be.createKVCache(layers, nGroups, headDim, 1024));
  }
  let worst = 0;
  for (const step of steps) {
    const N = step.tokens.reduce((a, b) => a + b, 0);
    for (let layer = 0; layer < layers; layer++) {
      const q = randomF32(rand, N * nHeads * headDim, 1.5);
      const k = f16ish(rand, N * nGroups * headDim);
      const v = f16ish(rand, N * nGroups * headDim);
      const params: AttentionParams = { layer, nHeads, nGroups, headDim, scale: 1 / Math.sqrt(headDim) };
      const seqsOf = (caches: KVCache[]): AttentionSeq[] => {
        let row = 0;
        return step.tokens.map((n, s) => {
          const seq = { cache: caches[s]!, rowStart: row, nTokens: n, startPos: caches[s]!.length };
          row += n;
          return seq;
        });
      };
      const want = new Float32Array(N * nHeads * headDim);
      const got = new Float32Array(N * nHeads * headDim);
      ref.attention(q, k, v, want, seqsOf(refCaches), params);
      be.attention(q, k, v, got, seqsOf(natCaches), params);
      worst = Math.max(worst, relError(got, want));
    }
    step.tokens.forEach((n, s) => {
      refCaches[s]!.length += n;
      natCaches[s]!.length += n;
    });
  }
  return worst;
}

for (const isa of skip === undefined ? nativeIsas() : ['(none)']) {
  test(`attention [${isa}]: prefill then decode, 1/2/4 KV groups`, (t) => {
    if (skip !== undefined) return t.skip(skip);
    const be = nativeBackend(isa);
    for (const [nHeads, nGroups, headDim] of [[4, 1, 32], [8, 2, 64], [8, 4, 16], [32, 2, 128]] as const) {
      // 150 prompt tokens span three 64-key tiles; then single-token decode steps.
      const steps: Step[] = [{ tokens: [150] }, { tokens: [1] }, { tokens: [1] }, { tokens: [3] }];
      const err = compare(be, nHeads, nGroups, headDim, steps, 11 + nHeads + nGroups);
      assert.ok(err < 1e-5, `heads ${nHeads} groups ${nGroups} hd ${headDim}: rel error ${err}`);
    }
  });

  test(`attention [${isa}]: several sequences of different lengths in one call`, (t) => {
    if (skip !== undefined) return t.skip(skip);
    const be = nativeBackend(isa);
    const steps: Step[] = [{ tokens: [70, 5, 1] }, { tokens: [1, 1, 64] }, { tokens: [2, 1, 1] }];
    const err = compare(be, 8, 2, 32, steps, 3);
    assert.ok(err < 1e-5, `rel error ${err}`);
  });
}

test('attention: scratch memory does not grow with the context', (t) => {
  if (skip !== undefined) return t.skip(skip);
  const be = nativeBackend();
  const H = 4, G = 2, D = 32;
  const cache = be.createKVCache(1, G, D, 4096);
  const params: AttentionParams = { layer: 0, nHeads: H, nGroups: G, headDim: D, scale: 0.2 };
  const rand = seeded(1);
  const run = (n: number): number => {
    const q = randomF32(rand, n * H * D);
    const kv = randomF32(rand, n * G * D);
    be.attention(q, kv, kv, new Float32Array(n * H * D), [{ cache, rowStart: 0, nTokens: n, startPos: cache.length }], params);
    cache.length += n;
    return be.lastAttentionScratchBytes!();
  };
  run(16);
  const small = run(1);
  run(2000);
  const large = run(1);
  assert.ok(small > 0);
  assert.equal(large, small, 'decode scratch at 2017 positions equals scratch at 17 positions');
});

test('attention: overflowing the cache is a CONTEXT_OVERFLOW error; foreign caches are refused', (t) => {
  if (skip !== undefined) return t.skip(skip);
  const be = nativeBackend();
  const cache = be.createKVCache(1, 1, 16, 8);
  const params: AttentionParams = { layer: 0, nHeads: 2, nGroups: 1, headDim: 16, scale: 0.25 };
  const q = new Float32Array(9 * 2 * 16);
  const kv = new Float32Array(9 * 16);
  assert.throws(
    () => be.attention(q, kv, kv, new Float32Array(q.length), [{ cache, rowStart: 0, nTokens: 9, startPos: 0 }], params),
    (e: unknown) => e instanceof ChatGLMError && e.code === 'CONTEXT_OVERFLOW',
  );
  const foreign = new ReferenceBackend().createKVCache(1, 1, 16, 8);
  assert.throws(
    () => be.attention(q, kv, kv, new Float32Array(q.length), [{ cache: foreign, rowStart: 0, nTokens: 1, startPos: 0 }], params),
    ChatGLMError,
  );
});

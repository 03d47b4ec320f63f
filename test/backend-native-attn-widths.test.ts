// The attention tile kernel (kernels_t.attn_tile) on head widths the common shapes (64, 128) do
// not reach: not a multiple of 8 (the per-key score path and the scalar channel tail), and a
// 64-channel register block plus an 8-channel and a scalar tail; every kernel variant of this CPU,
// prefill across a 64-key tile boundary then decode steps, against the reference backend.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReferenceBackend } from '../src/backend/reference/index.js';
import type { AttentionParams } from '../src/backend/types.js';
import { roundToF16 } from '../src/numeric/half.js';
import { nativeBackend, nativeIsas, nativeSkipReason, randomF32, relError, seeded } from './support/backend-native-fixtures.js';

const skip = nativeSkipReason();

for (const isa of skip === undefined ? nativeIsas() : ['(none)']) {
  test(`attention tile [${isa}]: head widths 20, 72, 75 and 136`, (t) => {
    if (skip !== undefined) return t.skip(skip);
    const be = nativeBackend(isa);
    const ref = new ReferenceBackend();
    const rand = seeded(404);
    for (const headDim of [20, 72, 75, 136]) {
      const nHeads = 4;
      const nGroups = 2;
      const rc = ref.createKVCache(1, nGroups, headDim, 128);
      const nc = be.createKVCache(1, nGroups, headDim, 128);
      let worst = 0;
      for (const n of [70, 1, 1, 5]) {
        const q = randomF32(rand, n * nHeads * headDim, 1.5);
        // f16-exact K/V: the native f16 cache then holds exactly what the reference holds.
        const k = randomF32(rand, n * nGroups * headDim, 1.5).map(roundToF16);
        const v = randomF32(rand, n * nGroups * headDim, 1.5).map(roundToF16);
        const params: AttentionParams = { layer: 0, nHeads, nGroups, headDim, scale: 1 / Math.sqrt(headDim) };
        const want = new Float32Array(n * nHeads * headDim);
        const got = new Float32Array(n * nHeads * headDim);
        ref.attention(q, k, v, want, [{ cache: rc, rowStart: 0, nTokens: n, startPos: rc.length }], params);
        be.attention(q, k, v, got, [{ cache: nc, rowStart: 0, nTokens: n, startPos: nc.length }], params);
        rc.length += n;
        nc.length += n;
        worst = Math.max(worst, relError(got, want));
      }
      assert.ok(worst < 1e-5, `head width ${headDim}: rel error ${worst}`);
    }
  });
}

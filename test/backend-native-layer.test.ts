// The native backend's fused decoder layer (Backend.layer -> native/ops.c cg_layer): the model
// uses it for every single-sequence step, so it must give exactly what the separate native ops
// give (bit for bit: it calls the same kernels in the same order) and stay as close to the
// reference backend as the separate ops are, for float and quantized weights, prefill and decode.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReferenceBackend } from '../src/backend/reference/index.js';
import type { Backend } from '../src/backend/types.js';
import { quantizeRows } from '../src/numeric/ggml-quants.js';
import { ChatGLMError } from '../src/errors.js';
import { parseGLMConfig } from '../src/model/config.js';
import { GLMModel } from '../src/model/glm.js';
import { loadWeights, type Quantizer } from '../src/model/load.js';
import { configJson, MemorySource, randomWeights, rng, type TinyConfig } from './support/model-fixtures.js';
import { nativeBackend, nativeSkipReason } from './support/backend-native-fixtures.js';

const skip = nativeSkipReason();

/** The same backend without `layer`, so the model falls back to the separate ops. */
function withoutLayer(be: Backend): Backend {
  return new Proxy(be, {
    get(target, prop) {
      if (prop === 'layer') return undefined;
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
    has(target, prop) {
      return prop !== 'layer' && Reflect.has(target, prop);
    },
  });
}

async function model(t: TinyConfig, seed: number, be: Backend, quant?: 'q8_0' | 'q4_0'): Promise<GLMModel> {
  const cfg = parseGLMConfig(configJson(t), 'config.json');
  const quantizer: Quantizer | undefined = quant === undefined ? undefined : (src, rows, cols) => ({ type: quant, bytes: quantizeRows(quant, src, rows, cols) });
  const weights = await loadWeights(MemorySource.fromF32('memory', randomWeights(t, seed), 'F32'), cfg, be, quantizer === undefined ? {} : { quantizer });
  return new GLMModel(cfg, weights, be);
}

/** Logits of a prefill (all positions) followed by single-token decode steps. */
function run(m: GLMModel, ids: number[], prefill: number): Float32Array[] {
  const cache = m.newCache(ids.length);
  const vocab = m.config.vocabSize;
  const out: Float32Array[] = [];
  const all = m.forward([{ cache, ids: ids.slice(0, prefill), allLogits: true }])[0]!;
  for (let i = 0; i < prefill; i++) out.push(all.slice(i * vocab, (i + 1) * vocab));
  for (let i = prefill; i < ids.length; i++) out.push(m.forward([{ cache, ids: [ids[i]!] }])[0]!);
  return out;
}

function maxRelErr(got: Float32Array[], want: Float32Array[]): number {
  let err = 0;
  let scale = 0;
  for (let t = 0; t < want.length; t++)
    for (let i = 0; i < want[t]!.length; i++) {
      err = Math.max(err, Math.abs(got[t]![i]! - want[t]![i]!));
      scale = Math.max(scale, Math.abs(want[t]![i]!));
    }
  return err / scale;
}

// hidden, head and ffn widths are multiples of 32 so q8_0/q4_0 apply to every matrix.
const tiny: TinyConfig = { hidden: 64, layers: 3, heads: 4, headDim: 32, groups: 2, ffn: 96, vocab: 41 };
// The native side keeps an f16 KV cache and, for q8_0/q4_0, quantizes activations to 8 bits.
const TOL = { f32: 2e-3, q8_0: 3e-2, q4_0: 8e-2 } as const;

for (const quant of ['f32', 'q8_0', 'q4_0'] as const) {
  test(`fused layer (${quant} weights): bit-identical to the separate native ops, close to the reference backend`, async (t) => {
    if (skip !== undefined) return t.skip(skip);
    const be = nativeBackend();
    assert.equal(typeof be.layer, 'function');
    const q = quant === 'f32' ? undefined : quant;
    const fused = await model(tiny, 5, be, q);
    const separate = await model(tiny, 5, withoutLayer(be), q);
    const reference = await model(tiny, 5, new ReferenceBackend(), q);
    const r = rng(9);
    // 70 prompt tokens cross a 64-key attention tile; then 6 decode steps.
    const ids = Array.from({ length: 76 }, () => Math.floor(r() * tiny.vocab));
    const a = run(fused, ids, 70);
    const b = run(separate, ids, 70);
    for (let i = 0; i < a.length; i++) assert.deepEqual(a[i], b[i], `position ${i}: fused and separate ops differ`);
    const err = maxRelErr(a, run(reference, ids, 70));
    t.diagnostic(`max |native - reference| / max |reference| = ${err.toExponential(2)}`);
    assert.ok(err <= TOL[quant], `vs reference: ${err} > ${TOL[quant]}`);
  });
}

test('fused layer: a step of two sequences still runs the separate ops and matches one at a time', async (t) => {
  if (skip !== undefined) return t.skip(skip);
  const be = nativeBackend();
  const m = await model(tiny, 6, be, 'q8_0');
  let calls = 0;
  const counting = new Proxy(be, {
    get(target, prop) {
      const v = Reflect.get(target, prop, target) as unknown;
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        if (prop === 'layer') calls++;
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  const mc = new GLMModel(m.config, m.weights, counting);
  const ca = mc.newCache(8);
  const cb = mc.newCache(8);
  const [la, lb] = mc.forward([{ cache: ca, ids: [1, 2, 3] }, { cache: cb, ids: [4, 5] }]);
  assert.equal(calls, 0, 'two sequences: no fused call');
  const sa = mc.newCache(8);
  const sb = mc.newCache(8);
  const wa = mc.forward([{ cache: sa, ids: [1, 2, 3] }])[0]!;
  assert.equal(calls, tiny.layers, 'one sequence: one fused call per layer');
  const wb = mc.forward([{ cache: sb, ids: [4, 5] }])[0]!;
  assert.ok(maxRelErr([la!, lb!], [wa, wb]) < 1e-5);
});

test('fused layer: rejects x that is not exactly the sequence, and foreign caches', async (t) => {
  if (skip !== undefined) return t.skip(skip);
  const be = nativeBackend();
  const m = await model(tiny, 7, be);
  const w = m.weights.layers[0]!;
  const params = { layer: 0, nHeads: 4, nGroups: 2, headDim: 32, scale: 0.1, rotaryDim: 16, ropeBase: 10000, eps: 1e-5, ffnHidden: 96 };
  const cache = be.createKVCache(3, 2, 32, 8);
  const pos = new Float32Array([0, 1]);
  assert.throws(() => be.layer(new Float32Array(64), w, { cache, rowStart: 0, nTokens: 2, startPos: 0 }, pos, params), ChatGLMError);
  assert.throws(() => be.layer(new Float32Array(128), w, { cache, rowStart: 0, nTokens: 2, startPos: 0 }, pos, { ...params, ffnHidden: 64 }), /weight shapes/);
  const foreign = new ReferenceBackend().createKVCache(3, 2, 32, 8);
  assert.throws(() => be.layer(new Float32Array(128), w, { cache: foreign, rowStart: 0, nTokens: 2, startPos: 0 }, pos, params), /KV caches it created/);
  assert.throws(() => be.layer(new Float32Array(128), w, { cache, rowStart: 0, nTokens: 2, startPos: 7 }, pos, params), /capacity|cache/i);
});

test('rope: the reused cos/sin table never leaks into a call with other positions, base or width', (t) => {
  if (skip !== undefined) return t.skip(skip);
  // The native rope keeps the last angle table (a step calls it twice per layer with the same
  // positions); alternate calls that differ in exactly one input and compare each with the reference.
  const be = nativeBackend();
  const ref = new ReferenceBackend();
  const r = rng(31);
  const n = 3;
  const heads = 2;
  const hd = 16;
  const x0 = Float32Array.from({ length: n * heads * hd }, () => r() * 2 - 1);
  const calls: [Float32Array, number, number][] = [
    [new Float32Array([0, 1, 2]), 10000, 8],
    [new Float32Array([0, 1, 3]), 10000, 8], // one position differs
    [new Float32Array([0, 1, 3]), 500000, 8], // base differs
    [new Float32Array([0, 1, 3]), 500000, 16], // width differs
    [new Float32Array([0, 1, 2]), 10000, 8], // back to the first
    [new Float32Array([7]), 10000, 8], // fewer tokens
  ];
  for (const [i, [pos, base, rd]] of calls.entries()) {
    const m = pos.length;
    const got = x0.slice(0, m * heads * hd);
    const want = got.slice();
    be.rope(got, m, heads, hd, rd, pos, base);
    ref.rope(want, m, heads, hd, rd, pos, base);
    let err = 0;
    for (let j = 0; j < want.length; j++) err = Math.max(err, Math.abs(got[j]! - want[j]!));
    assert.ok(err < 1e-6, `call ${i}: max |native - reference| = ${err}`);
  }
});

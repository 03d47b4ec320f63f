// The native backend's batched decoder layer (Backend.batchLayer -> native/batch_ops.c): the model
// uses it for every step that carries several sequences, so each sequence's logits must be
// exactly (bit for bit) what the same sequence gets alone through the single-sequence layer, and
// what the separate ops give: for 2 to 8 one-token rows (the column-prefetched q4_0 kernels, the
// 512-bit two-group one, the padded and the lone fifth row), contexts across several 64-key
// attention tiles (the one-token rows' attention runs as one pool job), a prompt chunk in the
// same step, and a q8_0 KV cache beside f16 ones.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Backend, KVCache } from '../src/backend/types.js';
import { quantizeRows } from '../src/numeric/ggml-quants.js';
import { ChatGLMError } from '../src/errors.js';
import { parseGLMConfig } from '../src/model/config.js';
import { GLMModel } from '../src/model/glm.js';
import { loadWeights, type Quantizer } from '../src/model/load.js';
import { ReferenceBackend } from '../src/backend/reference/index.js';
import { configJson, MemorySource, randomWeights, rng, type TinyConfig } from './support/model-fixtures.js';
import { nativeBackend, nativeIsas, nativeSkipReason } from './support/backend-native-fixtures.js';

const skip = nativeSkipReason();

/** The same backend without `batchLayer`: the model then runs the separate ops. */
function hiding(be: Backend, prop: 'batchLayer'): Backend {
  return new Proxy(be, {
    get(target, p) {
      if (p === prop) return undefined;
      const v = Reflect.get(target, p, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

function counting(be: Backend, calls: { n: number }): Backend {
  return new Proxy(be, {
    get(target, p) {
      const v = Reflect.get(target, p, target) as unknown;
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => {
        if (p === 'batchLayer') calls.n++;
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

async function model(t: TinyConfig, seed: number, be: Backend, quant: 'q8_0' | 'q4_0'): Promise<GLMModel> {
  const cfg = parseGLMConfig(configJson(t), 'config.json');
  const quantizer: Quantizer = (src, rows, cols) => ({ type: quant, bytes: quantizeRows(quant, src, rows, cols) });
  const weights = await loadWeights(MemorySource.fromF32('memory', randomWeights(t, seed), 'F32'), cfg, be, { quantizer });
  return new GLMModel(cfg, weights, be);
}

function sameBits(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return false;
  return true;
}

// Widths are multiples of 32 (every matrix quantizes); 41 output rows = 5 groups of 8 and one
// leftover row, so a chunk holds two group pairs and the next one a lone group.
const tiny: TinyConfig = { hidden: 64, layers: 2, heads: 4, headDim: 32, groups: 2, ffn: 96, vocab: 41 };

// Every kernel variant this CPU runs: scalar has no batched matmul kernel (the plain one runs), avx2
// and avx512vnni have the prefetched 4-row one, avx512vnni also the 512-bit two-group one.
for (const isa of skip === undefined ? nativeIsas() : ['(none)'])
for (const quant of ['q4_0', 'q8_0'] as const) {
  test(`batched layer [${isa}] (${quant} weights): every sequence's logits bit-identical to it alone and to the separate ops`, async (t) => {
    if (skip !== undefined) return t.skip(skip);
    const be = nativeBackend(isa);
    assert.equal(typeof be.batchLayer, 'function');
    const calls = { n: 0 };
    const batched = await model(tiny, 11, counting(be, calls), quant);
    const separate = await model(tiny, 11, hiding(be, 'batchLayer'), quant);
    const r = rng(17);
    const tok = (): number => Math.floor(r() * tiny.vocab);
    // Contexts on both sides of the 64-key tiles; sequence 5 keeps its cache in q8_0.
    const lengths = [3, 70, 130, 1, 20, 65, 9, 40];
    const prompts = lengths.map((n) => Array.from({ length: n }, tok));
    const steps = Array.from({ length: 6 }, () => prompts.map(tok));
    // Which sequences decode at each step: 8, 5, 6, 7, 2 and 3 one-token rows.
    const active = [[0, 1, 2, 3, 4, 5, 6, 7], [0, 2, 4, 6, 7], [1, 2, 3, 4, 5, 6], [0, 1, 2, 3, 4, 5, 6], [5, 2], [7, 0, 1]];
    const caches = (m: GLMModel): KVCache[] =>
      lengths.map((n, s) => {
        m.kvType = s === 5 ? 'q8_0' : 'f16';
        const c = m.newCache(n + steps.length + 8);
        m.kvType = 'f16';
        return c;
      });

    // Alone: each sequence through the single-sequence path.
    const alone: Float32Array[][] = lengths.map(() => []);
    const ca = caches(batched);
    prompts.forEach((p, s) => batched.forward([{ cache: ca[s]!, ids: p }]));
    for (const [k, act] of active.entries()) for (const s of act) alone[s]!.push(batched.forward([{ cache: ca[s]!, ids: [steps[k]![s]!] }])[0]!);
    assert.equal(calls.n, 0, 'one sequence at a time never takes the batched layer');

    // Together: the same steps as one forward each (the batched layer), and through the separate ops.
    for (const [name, m] of [
      ['batched', batched],
      ['separate', separate],
    ] as const) {
      const cb = caches(m);
      prompts.forEach((p, s) => m.forward([{ cache: cb[s]!, ids: p }]));
      const seen = lengths.map(() => 0);
      for (const [k, act] of active.entries()) {
        const logits = m.forward(act.map((s) => ({ cache: cb[s]!, ids: [steps[k]![s]!] })));
        act.forEach((s, i) => {
          assert.ok(sameBits(logits[i]!, alone[s]![seen[s]!]!), `${name}, step ${k}, sequence ${s}: logits differ from the sequence alone`);
          seen[s]!++;
        });
      }
    }
    assert.equal(calls.n, active.length * tiny.layers, 'one batched call per layer and step');
  });
}

test('batched layer: a prompt chunk in the same step as one-token rows gives what it gives alone', async (t) => {
  if (skip !== undefined) return t.skip(skip);
  const be = nativeBackend();
  const m = await model(tiny, 12, be, 'q4_0');
  const r = rng(5);
  const tok = (): number => Math.floor(r() * tiny.vocab);
  const a = Array.from({ length: 80 }, tok);
  const b = Array.from({ length: 7 }, tok);
  const chunk = Array.from({ length: 9 }, tok);
  const alone = (ids: number[], next: number[]): Float32Array => {
    const c = m.newCache(128);
    if (ids.length > 0) m.forward([{ cache: c, ids }]);
    return m.forward([{ cache: c, ids: next }])[0]!;
  };
  const wantA = alone(a, [3]);
  const wantB = alone(b, [4]);
  const wantChunk = alone(a.slice(0, 10), chunk);
  const ca = m.newCache(128);
  const cb = m.newCache(128);
  const cc = m.newCache(128);
  m.forward([{ cache: ca, ids: a }]);
  m.forward([{ cache: cb, ids: b }]);
  m.forward([{ cache: cc, ids: a.slice(0, 10) }]);
  const [la, lb, lc] = m.forward([
    { cache: ca, ids: [3] },
    { cache: cb, ids: [4] },
    { cache: cc, ids: chunk },
  ]);
  assert.ok(sameBits(la!, wantA) && sameBits(lb!, wantB) && sameBits(lc!, wantChunk), 'a row of the mixed step differs from its sequence alone');
});

test('batched layer: a step of 70 sequences (more than the binding keeps on its stack) equals each alone', async (t) => {
  if (skip !== undefined) return t.skip(skip);
  const m = await model(tiny, 14, nativeBackend(), 'q4_0');
  const S = 70;
  const prompts = Array.from({ length: S }, (_, s) => [s % tiny.vocab, (s * 7) % tiny.vocab]);
  const alone = prompts.map((p) => {
    const c = m.newCache(4);
    m.forward([{ cache: c, ids: p.slice(0, 1) }]);
    return m.forward([{ cache: c, ids: p.slice(1) }])[0]!;
  });
  const caches = prompts.map((p) => {
    const c = m.newCache(4);
    m.forward([{ cache: c, ids: p.slice(0, 1) }]);
    return c;
  });
  const logits = m.forward(prompts.map((p, s) => ({ cache: caches[s]!, ids: p.slice(1) })));
  logits.forEach((l, s) => assert.ok(sameBits(l, alone[s]!), `sequence ${s} differs from alone`));
});

test('batched layer: rejects rows out of order, a shared cache, a wrong x and foreign caches', async (t) => {
  if (skip !== undefined) return t.skip(skip);
  const be = nativeBackend();
  const m = await model(tiny, 13, be, 'q4_0');
  const w = m.weights.layers[0]!;
  const params = { layer: 0, nHeads: 4, nGroups: 2, headDim: 32, scale: 0.1, rotaryDim: 16, ropeBase: 10000, eps: 1e-5, ffnHidden: 96 };
  const c1 = be.createKVCache(2, 2, 32, 8);
  const c2 = be.createKVCache(2, 2, 32, 8);
  const pos = new Float32Array([0, 0]);
  const x = new Float32Array(2 * 64);
  const batchLayer = be.batchLayer!.bind(be);
  const seq = (cache: KVCache, rowStart: number): { cache: KVCache; rowStart: number; nTokens: number; startPos: number } => ({ cache, rowStart, nTokens: 1, startPos: 0 });
  assert.throws(() => batchLayer(x, w, [seq(c1, 1), seq(c2, 0)], pos, params), /one after another/);
  assert.throws(() => batchLayer(x, w, [seq(c1, 0), seq(c1, 1)], pos, params), /share a KV cache/);
  assert.throws(() => batchLayer(new Float32Array(3 * 64), w, [seq(c1, 0), seq(c2, 1)], pos, params), ChatGLMError);
  assert.throws(() => batchLayer(x, w, [seq(c1, 0), seq(c2, 1)], pos, { ...params, ffnHidden: 64 }), /weight shapes/);
  const foreign = new ReferenceBackend().createKVCache(2, 2, 32, 8);
  assert.throws(() => batchLayer(x, w, [seq(c1, 0), seq(foreign, 1)], pos, params), /KV caches it created/);
  assert.throws(() => batchLayer(x, w, [seq(c1, 0), { cache: c2, rowStart: 1, nTokens: 1, startPos: 8 }], pos, params), /capacity|cache/i);
});

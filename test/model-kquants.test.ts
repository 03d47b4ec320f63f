// A model whose matrices mix every ggml block type llama-quantize writes (as a Q4_K_M file mixes
// q4_K, q6_K and a 32-element fallback for rows that are not a multiple of 256): the reference
// backend must give exactly the logits of the same model stored as the dequantized f32 values, and
// the native backend (its own kernels, 8-bit activations) must stay close to them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReferenceBackend } from '../src/backend/reference/index.js';
import type { Backend } from '../src/backend/types.js';
import { dequantizeBlockRow, blockRowBytes, type BlockWeightType } from '../src/numeric/ggml-blocks.js';
import { quantizeRowsK } from '../src/numeric/ggml-kquants-quantize.js';
import { quantizeRows } from '../src/numeric/ggml-quants.js';
import type { DType, TensorData } from '../src/formats/tensor-source.js';
import { parseGLMConfig } from '../src/model/config.js';
import { GLMModel } from '../src/model/glm.js';
import { loadWeights } from '../src/model/load.js';
import { configJson, MemorySource, randomWeights, type TinyConfig } from './support/model-fixtures.js';
import { nativeBackend, nativeSkipReason } from './support/backend-native-fixtures.js';
import { relError } from './support/model-compare.js';

// ffn 96 is not a multiple of 256: the down projections use 32-element types, as llama.cpp falls
// back for ChatGLM3-6B's 13696.
const TINY: TinyConfig = { hidden: 256, layers: 2, heads: 4, headDim: 64, groups: 2, ffn: 96, vocab: 300, seqLength: 64 };
const P = 'transformer.';
const L0 = `${P}encoder.layers.0.`;
const L1 = `${P}encoder.layers.1.`;
const TYPES: Record<string, BlockWeightType> = {
  [`${P}embedding.word_embeddings.weight`]: 'q4_K',
  [`${L0}self_attention.query_key_value.weight`]: 'q2_K',
  [`${L0}self_attention.dense.weight`]: 'q3_K',
  [`${L0}mlp.dense_h_to_4h.weight`]: 'q4_K',
  [`${L0}mlp.dense_4h_to_h.weight`]: 'q5_0',
  [`${L1}self_attention.query_key_value.weight`]: 'q5_K',
  [`${L1}self_attention.dense.weight`]: 'q4_1',
  [`${L1}mlp.dense_h_to_4h.weight`]: 'q5_K',
  [`${L1}mlp.dense_4h_to_h.weight`]: 'q5_1',
  [`${P}output_layer.weight`]: 'q6_K',
};

function quantize(type: BlockWeightType, x: Float32Array, rows: number, cols: number): Uint8Array {
  switch (type) {
    case 'q2_K':
    case 'q3_K':
    case 'q4_K':
    case 'q5_K':
    case 'q6_K':
      return quantizeRowsK(type, x, rows, cols);
    default:
      return quantizeRows(type, x, rows, cols);
  }
}

function sources(): { mixed: MemorySource; f32: MemorySource } {
  const mixed: TensorData[] = [];
  const f32: TensorData[] = [];
  for (const t of randomWeights(TINY, 99)) {
    const type = TYPES[t.name];
    if (type === undefined) {
      const d = { info: { name: t.name, dtype: 'F32' as DType, shape: t.shape }, data: new Uint8Array(t.values.buffer.slice(0)) };
      mixed.push(d);
      f32.push(d);
      continue;
    }
    const [rows, cols] = t.shape as [number, number];
    const q = quantize(type, t.values, rows, cols);
    mixed.push({ info: { name: t.name, dtype: type.toUpperCase() as DType, shape: t.shape }, data: q });
    const deq = new Float32Array(rows * cols);
    for (let r = 0; r < rows; r++) dequantizeBlockRow(type, q, r * blockRowBytes(type, cols), cols, deq, r * cols);
    f32.push({ info: { name: t.name, dtype: 'F32', shape: t.shape }, data: new Uint8Array(deq.buffer) });
  }
  return { mixed: new MemorySource('mixed', mixed), f32: new MemorySource('f32', f32) };
}

async function logits(source: MemorySource, backend: Backend, ids: number[]): Promise<Float32Array[]> {
  const config = parseGLMConfig(configJson(TINY), 'config.json');
  const model = new GLMModel(config, await loadWeights(source, config, backend), backend);
  const cache = model.newCache(16);
  const out = model.forward([{ cache, ids, allLogits: true }]);
  // one decode step after the prefill, too
  out.push(...model.forward([{ cache, ids: [ids[0]!] }]));
  const rows: Float32Array[] = [];
  for (const o of out) for (let t = 0; t < o.length / TINY.vocab; t++) rows.push(o.slice(t * TINY.vocab, (t + 1) * TINY.vocab));
  return rows;
}

const IDS = [5, 299, 17, 42, 0, 250];

test('reference backend: a mixed k-quant / legacy-quant model equals its dequantized f32 twin exactly', async () => {
  const { mixed, f32 } = sources();
  const ref = new ReferenceBackend();
  const a = await logits(mixed, ref, IDS);
  const b = await logits(f32, ref, IDS);
  assert.equal(a.length, b.length);
  for (let t = 0; t < a.length; t++) assert.deepEqual(Array.from(a[t]!), Array.from(b[t]!), `row ${t}`);
});

test('native backend: the mixed model stays close to the reference on the dequantized weights', async (t) => {
  const skip = nativeSkipReason();
  if (skip !== undefined) return t.skip(skip);
  const { mixed, f32 } = sources();
  const want = (await logits(f32, new ReferenceBackend(), IDS)).map((r) => Array.from(r));
  const be = nativeBackend();
  try {
    const got = await logits(mixed, be, IDS);
    const { err } = relError(got, want);
    // 8-bit activations (q8_K for the k-quants)
    assert.ok(err < 3e-2, `relative error ${err}`);
  } finally {
    be.dispose();
  }
});

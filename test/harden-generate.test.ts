/**
 * NaN/Inf in a model's output is a NON_FINITE ChatGLMError naming the likely cause, for greedy
 * decoding and for sampling alike, instead of id 0 forever or an undefined id.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createReferenceBackend } from '../src/backend/reference/index.js';
import { parseGLMConfig } from '../src/model/config.js';
import { GLMModel } from '../src/model/glm.js';
import { loadWeights } from '../src/model/load.js';
import { generateAll } from '../src/generate/generator.js';
import { checkFiniteLogits } from '../src/generate/finite-logits.js';
import { ChatGLMError } from '../src/errors.js';
import { configJson, MemorySource, randomWeights, type TinyConfig } from './support/model-fixtures.js';

const T: TinyConfig = { hidden: 32, layers: 2, heads: 4, headDim: 8, groups: 2, ffn: 48, vocab: 64, seqLength: 64 };

async function modelWithWeight(value: number): Promise<GLMModel> {
  const config = parseGLMConfig(configJson(T), 'config.json');
  const tensors = randomWeights(T, 7);
  // One weight of the last layer's MLP set to NaN/Inf, as a corrupt download would have it.
  const down = tensors.find((t) => t.name === 'transformer.encoder.layers.1.mlp.dense_4h_to_h.weight')!;
  down.values[5] = value;
  const backend = createReferenceBackend();
  return new GLMModel(config, await loadWeights(MemorySource.fromF32('corrupt', tensors), config, backend), backend);
}

const isNonFinite = (e: unknown): boolean => e instanceof ChatGLMError && e.code === 'NON_FINITE' && /corrupt/.test(e.message);

for (const bad of [NaN, Infinity]) {
  test(`a ${bad} weight stops generation with NON_FINITE (greedy and sampled)`, async () => {
    const model = await modelWithWeight(bad);
    await assert.rejects(generateAll(model, [1, 2, 3], { greedy: true, maxNewTokens: 4 }), isNonFinite);
    await assert.rejects(generateAll(model, [1, 2, 3], { temperature: 0.8, topP: 0.9, seed: 1, maxNewTokens: 4 }), isNonFinite);
  });
}

test('the same model with finite weights generates', async () => {
  const model = await modelWithWeight(0.01);
  const r = await generateAll(model, [1, 2, 3], { greedy: true, maxNewTokens: 4 });
  assert.equal(r.ids.length, 4);
});

test('checkFiniteLogits: -Infinity marks banned ids and is fine; NaN, +Inf and all -Inf are not', () => {
  checkFiniteLogits(new Float32Array([0, -Infinity, 3]));
  assert.throws(() => checkFiniteLogits(new Float32Array([0, NaN, 3])), (e: unknown) => isNonFinite(e) && /NaN/.test((e as Error).message) && /id 1/.test((e as Error).message));
  assert.throws(() => checkFiniteLogits(new Float32Array([0, 1, Infinity])), (e: unknown) => isNonFinite(e) && /id 2/.test((e as Error).message));
  assert.throws(() => checkFiniteLogits(new Float32Array([-Infinity, -Infinity])), isNonFinite);
});

/**
 * Tiny random GLM models for generation and chat tests, run on the reference backend, built with
 * the model area's own fixtures (random weights in HF names) and loader.
 */
import { createReferenceBackend } from '../../src/backend/reference/index.js';
import { parseGLMConfig } from '../../src/model/config.js';
import { GLMModel } from '../../src/model/glm.js';
import { loadWeights } from '../../src/model/load.js';
import { configJson, MemorySource, randomWeights, type TinyConfig } from './model-fixtures.js';

export const TINY: TinyConfig = { hidden: 32, layers: 2, heads: 4, headDim: 8, groups: 2, ffn: 48, vocab: 268, seqLength: 256 };

export async function tinyModel(overrides: Partial<TinyConfig> = {}, seed = 1234): Promise<GLMModel> {
  const t: TinyConfig = { ...TINY, ...overrides };
  const config = parseGLMConfig(configJson(t), 'config.json');
  const backend = createReferenceBackend();
  const weights = await loadWeights(MemorySource.fromF32('tiny', randomWeights(t, seed)), config, backend);
  return new GLMModel(config, weights, backend);
}

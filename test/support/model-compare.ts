/** Helpers that compare the model with the float64 oracle. */
import { ReferenceBackend } from '../../src/backend/reference/index.js';
import type { Backend } from '../../src/backend/types.js';
import { parseGLMConfig, type RopeScaling } from '../../src/model/config.js';
import { GLMModel } from '../../src/model/glm.js';
import { loadWeights } from '../../src/model/load.js';
import { oracleForward } from './model-oracle-f64.js';
import { configJson, MemorySource, randomWeights, roundTo, type TinyConfig } from './model-fixtures.js';

export interface Case {
  tiny: TinyConfig;
  dtype: 'F32' | 'F16' | 'BF16';
  ropeScaling?: RopeScaling;
  seed: number;
}

/** Builds the model from a random checkpoint (in memory) plus the oracle's view of the same weights. */
export async function buildCase(c: Case, backend: Backend = new ReferenceBackend()) {
  const cfg = configJson(c.tiny);
  const tensors = randomWeights(c.tiny, c.seed);
  const config = parseGLMConfig(cfg, 'config.json', c.ropeScaling !== undefined ? { ropeScaling: c.ropeScaling } : {});
  const model = new GLMModel(config, await loadWeights(MemorySource.fromF32('memory', tensors, c.dtype), config, backend), backend);
  // the oracle computes with exactly the values the checkpoint stores
  const stored = new Map(tensors.map((t) => [t.name, roundTo(c.dtype, t.values)]));
  const oracle = (ids: number[]) => oracleForward(cfg, stored, ids, c.ropeScaling !== undefined ? { ropeScaling: c.ropeScaling } : {});
  return { cfg, model, oracle, tensors };
}

/** max |a - b| / max |b| over all positions. */
export function relError(got: readonly ArrayLike<number>[], want: readonly number[][]): { err: number; scale: number } {
  let err = 0;
  let scale = 0;
  if (got.length !== want.length) throw new Error(`compared ${got.length} rows with ${want.length}`);
  for (let t = 0; t < want.length; t++) {
    const g = got[t]!;
    const w = want[t]!;
    if (g.length !== w.length) throw new Error(`row ${t}: ${g.length} values vs ${w.length}`);
    for (let i = 0; i < w.length; i++) {
      err = Math.max(err, Math.abs(g[i]! - w[i]!));
      scale = Math.max(scale, Math.abs(w[i]!));
    }
  }
  return { err: err / scale, scale };
}

/** Splits [n * vocab] logits into rows. */
export function rows(flat: Float32Array, width: number): Float32Array[] {
  const out: Float32Array[] = [];
  for (let i = 0; i < flat.length; i += width) out.push(flat.subarray(i, i + width));
  return out;
}

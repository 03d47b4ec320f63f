// openModel on GGUF files made by our converter from a tiny HF checkpoint: the f32 file must
// reproduce the float64 oracle exactly as the HF directory does; q8_0 must stay close to it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { convertToGguf } from '../src/convert/gguf-convert.js';
import { openModel } from '../src/model/open.js';
import { oracleForward } from './support/model-oracle-f64.js';
import { relError, rows } from './support/model-compare.js';
import { writeTinyHFModel } from './support/gguf-fixtures.js';
import { FAMILIES } from '../src/families/registry.js';

test('GGUF (f32 and q8_0) converted from an HF directory runs like the original', async () => {
  const root = await mkdtemp(path.join(tmpdir(), 'chatglm-gguf-model-'));
  try {
    const dir = path.join(root, 'hf');
    const tiny = await writeTinyHFModel(dir, { hidden: 64, heads: 4, groups: 2, ffn: 64, layers: 2, paddedVocab: 288, dtype: 'F32', seed: 5, ropeRatio: 8 });
    const stored = new Map([...tiny.values].map(([name, v]) => [name, v.data]));
    const ids = [7, 100, 3, 287, 40];
    const want = oracleForward(tiny.config, stored, ids);
    for (const [type, tol] of [['f32', 1e-5], ['q8_0', 2e-2]] as const) {
      const out = path.join(root, `tiny-${type}.gguf`);
      await convertToGguf({ modelDir: dir, out, type });
      const { model, format, config } = await openModel(out, { families: FAMILIES, backend: 'reference' });
      assert.equal(format, 'gguf');
      assert.equal(config.ropeRatio, 8);
      assert.equal(config.ropeScaling, 'base');
      const got = rows(model.forward([{ cache: model.newCache(8), ids, allLogits: true }])[0]!, 288);
      const { err } = relError(got, want);
      assert.ok(err <= tol, `${type}: relative error ${err}`);
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

// The same synthetic GGUF file in each k-quant mix, made by `convert`: llama.cpp's 32 greedy tokens
// (node-llama-cpp, in a child process) against ours (native backend). The engine is fed llama.cpp's
// tokens (teacher forcing) and at every step must pick the same token, unless llama.cpp's token is
// within TIE of our best logit: a random tiny model has near-ties that float rounding decides (at
// the ones seen, even the float64 reference backend disagrees with llama.cpp), and there a free run
// would go its own way from then on. Skips with the reason when node-llama-cpp is not installed in
// .bench/llama (CI does not install it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { convertToGguf } from '../src/convert/gguf-convert.js';
import { openModel } from '../src/model/open.js';
import { writeTinyHFModel } from './support/gguf-fixtures.js';
import { repoRoot } from './support/formats-tmp.js';
import { nativeSkipReason } from './support/backend-native-fixtures.js';
import { FAMILIES } from '../src/families/registry.js';

const NLC = path.join(repoRoot, '.bench', 'llama');
const STEPS = 32;
const PROMPT = [5, 17, 200, 33, 90, 250, 11, 64];
/** Near-tie: logit gap at most 0.2% of the step's largest |logit|. */
const TIE = 2e-3;

function argmax(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[best]!) best = i;
  return best;
}

function maxAbs(x: Float32Array): number {
  let m = 0;
  for (const v of x) m = Math.max(m, Math.abs(v));
  return m;
}

// More than 8 prompt tokens: the prefill goes through the many-token k-quant GEMM where the kernel table has one.
const LONG_PROMPT = [5, 17, 200, 33, 90, 250, 11, 64, 7, 120, 48, 199, 3, 77, 160, 25, 211, 9, 140, 66];

const CASES: { mix: 'q4_k_m' | 'q5_k_m' | 'q6_k' | 'q3_k_m' | 'q2_k'; prompt: number[] }[] = [
  ...(['q4_k_m', 'q5_k_m', 'q6_k', 'q3_k_m', 'q2_k'] as const).map((mix) => ({ mix, prompt: PROMPT })),
  ...(['q4_k_m', 'q5_k_m'] as const).map((mix) => ({ mix, prompt: LONG_PROMPT })),
];

for (const { mix, prompt: PROMPT } of CASES) {
  test(`${mix}: llama.cpp's ${STEPS} greedy tokens after a ${PROMPT.length}-token prompt, teacher-forced: ours pick the same token or a near-tie`, async (t) => {
    if (!existsSync(path.join(NLC, 'node_modules', 'node-llama-cpp', 'package.json'))) {
      return t.skip('node-llama-cpp is not installed in .bench/llama (npm run bench installs it)');
    }
    const skip = nativeSkipReason();
    if (skip !== undefined) return t.skip(skip);
    const root = await mkdtemp(path.join(tmpdir(), 'chatglm-kgreedy-'));
    try {
      const dir = path.join(root, 'hf');
      await writeTinyHFModel(dir, { hidden: 256, heads: 4, groups: 2, ffn: 96, layers: 4, paddedVocab: 288, dtype: 'F32', seed: 23 });
      const file = path.join(root, `${mix}.gguf`);
      await convertToGguf({ modelDir: dir, out: file, type: mix });
      const r = spawnSync(process.execPath, [path.join(repoRoot, 'dist', 'tools', 'llama-greedy.js'), NLC, file, JSON.stringify(PROMPT), String(STEPS)], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      const theirs = JSON.parse(r.stdout.trim().split('\n').pop()!) as number[];
      const { model } = await openModel(file, { families: FAMILIES, backend: 'native' });
      const cache = model.newCache(PROMPT.length + STEPS + 1);
      assert.equal(theirs.length, STEPS);
      let logits = model.forward([{ cache, ids: PROMPT }])[0]!;
      let same = 0;
      for (let s = 0; s < STEPS; s++) {
        const id = argmax(logits);
        if (id === theirs[s]) same++;
        else {
          const gap = logits[id]! - logits[theirs[s]!]!;
          assert.ok(gap <= TIE * maxAbs(logits), `${mix} step ${s}: we pick ${id}, llama.cpp ${theirs[s]}, logit gap ${gap} is not a near-tie`);
        }
        logits = model.forward([{ cache, ids: [theirs[s]!] }])[0]!;
      }
      t.diagnostic(`${mix}: ${same}/${STEPS} steps pick llama.cpp's token, the others are near-ties`);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
}

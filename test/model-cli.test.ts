// The `logits` and `info` commands, run as a user would, on tiny checkpoints written by the test;
// logits are checked against the independent float64 oracle.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { oracleForward } from './support/model-oracle-f64.js';
import { relError } from './support/model-compare.js';
import { writeCheckpoint } from './support/model-checkpoints.js';
import { randomWeights, repoRoot, type TinyConfig } from './support/model-fixtures.js';

const cli = path.join(repoRoot, 'bin', 'chatglm.js');
const tiny: TinyConfig = { hidden: 64, layers: 2, heads: 4, headDim: 32, groups: 2, ffn: 64, vocab: 53, ropeRatio: 500, eps: 1.5625e-7, name: 'tiny-glm-4' };
const ids = [5, 17, 3];

function run(args: string[]) {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('logits CLI: f32, f16 and bf16 checkpoints within 1e-4 of max |logit| (reference), 5e-3 (default backend)', async () => {
  const root = await mkdtemp(path.join(tmpdir(), 'chatglm-cli-'));
  try {
    for (const [i, dtype] of (['F32', 'F16', 'BF16'] as const).entries()) {
      const dir = path.join(root, dtype);
      const ck = await writeCheckpoint(dir, tiny, dtype, 'safetensors', 300 + i);
      const want = oracleForward(ck.config, ck.stored, ids);
      for (const [backend, tol] of [['reference', 1e-4], ['auto', 5e-3]] as const) {
        const r = run(['logits', '--model', dir, '--ids', ids.join(','), '--backend', backend]);
        assert.equal(r.code, 0, r.stderr);
        const got = JSON.parse(r.stdout) as number[][];
        assert.equal(got.length, ids.length);
        assert.equal(got[0]!.length, tiny.vocab);
        const { err } = relError(got, want);
        assert.ok(err <= tol, `${dtype} ${backend}: relative error ${err}`);
      }
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

test('logits CLI: bad input is one clear line on stderr and exit code 1', async () => {
  const r = run(['logits', '--model', '/nonexistent/glm', '--ids', '1,2', '--backend', 'reference']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^chatglm: .*\/nonexistent\/glm/);
  assert.equal(r.stderr.trim().split('\n').length, 1);
  const bad = run(['logits', '--model', '/tmp', '--ids', '1,x', '--backend', 'reference']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /--ids/);
});

test('info CLI: family, shapes, dtype, parameter count and memory', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'chatglm-info-'));
  try {
    await writeCheckpoint(dir, tiny, 'BF16', 'safetensors-sharded', 9);
    const params = randomWeights(tiny, 9).reduce((s, w) => s + w.values.length, 0);
    const r = run(['info', '--model', dir, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const info = JSON.parse(r.stdout);
    assert.equal(info.family, 'glm4');
    assert.equal(info.parameters, params);
    assert.deepEqual(info.dtypes, { BF16: params });
    assert.equal(info.config.layers, 2);
    assert.equal(info.config.headDim, 32);
    assert.equal(info.config.kvGroups, 2);
    assert.equal(info.config.ropeBase, 5_000_000);
    assert.equal(info.memory.weightsBytes, params * 2);
    // f32 K and V for 2 groups x 32 channels in 2 layers
    assert.equal(info.memory.kvCacheBytesPerToken, 2 * 2 * 2 * 32 * 4);
    const text = run(['info', '--model', dir]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /family:\s+glm4/);
    assert.match(text.stdout, new RegExp(`parameters:\\s+${params.toLocaleString('en-US')}`));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

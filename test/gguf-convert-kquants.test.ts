// `convert --type q4_k_m|q5_k_m|q6_k|q3_k_m|q2_k`: llama-quantize's per-tensor types for the chatglm
// architecture, ggml's reference quantizer on every tensor, the result runs; and, where
// node-llama-cpp is installed, the file equals llama.cpp's own llama_model_quantize output of the
// same weights tensor for tensor, byte for byte.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { convertToGguf } from '../src/convert/gguf-convert.js';
import { kMixTensorType, type KMix } from '../src/convert/gguf-kquant-mix.js';
import { GgufReader, ggmlTypeName } from '../src/formats/gguf.js';
import { quantizeRowsK } from '../src/numeric/ggml-kquants-quantize.js';
import { quantizeRows } from '../src/numeric/ggml-quants.js';
import { openModel } from '../src/model/open.js';
import { oracleForward } from './support/model-oracle-f64.js';
import { relError, rows } from './support/model-compare.js';
import { writeTinyHFModel } from './support/gguf-fixtures.js';
import { findGgmlBase } from './support/ggml-golden.js';
import { repoRoot } from './support/formats-tmp.js';
import { FAMILIES } from '../src/families/registry.js';

test('k-quant mixes: llama-quantize types for a ChatGLM3-6B-shaped model (28 layers, ffn 13696)', () => {
  const n = 28;
  // use_more_bits(i, 28): i < 3, i >= 24, or (i - 3) % 3 == 2
  const more = new Set([0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 24, 25, 26, 27]);
  const t = (mix: KMix, name: string, row: number): string => kMixTensorType(mix, name, row, n);
  for (let i = 0; i < n; i++) {
    // 13696 is not a multiple of 256: q6_K falls back to q8_0, q4_K to q5_0, q5_K to q5_1
    assert.equal(t('q4_k_m', `blk.${i}.ffn_down.weight`, 13696), more.has(i) ? 'Q8_0' : 'Q5_0', `q4_k_m ffn_down ${i}`);
    assert.equal(t('q5_k_m', `blk.${i}.ffn_down.weight`, 13696), more.has(i) ? 'Q8_0' : 'Q5_1', `q5_k_m ffn_down ${i}`);
    assert.equal(t('q6_k', `blk.${i}.ffn_down.weight`, 13696), 'Q8_0');
    assert.equal(t('q4_k_m', `blk.${i}.ffn_down.weight`, 4096), more.has(i) ? 'Q6_K' : 'Q4_K');
    assert.equal(t('q3_k_m', `blk.${i}.ffn_down.weight`, 4096), i < 1 ? 'Q5_K' : 'Q4_K');
  }
  // fused attn_qkv is treated as attn_v
  for (let i = 0; i < n; i++) {
    assert.equal(t('q4_k_m', `blk.${i}.attn_qkv.weight`, 4096), more.has(i) ? 'Q6_K' : 'Q4_K');
    assert.equal(t('q5_k_m', `blk.${i}.attn_qkv.weight`, 4096), more.has(i) ? 'Q6_K' : 'Q5_K');
    assert.equal(t('q3_k_m', `blk.${i}.attn_qkv.weight`, 4096), i < 2 ? 'Q5_K' : 'Q4_K');
  }
  assert.equal(kMixTensorType('q2_k', 'blk.3.attn_qkv.weight', 4096, n, 16), 'Q4_K'); // 32 heads / 2 KV heads
  assert.equal(kMixTensorType('q2_k', 'blk.3.attn_qkv.weight', 4096, n, 2), 'Q3_K');
  assert.equal(t('q4_k_m', 'blk.3.attn_output.weight', 4096), 'Q4_K');
  assert.equal(t('q3_k_m', 'blk.3.attn_output.weight', 4096), 'Q4_K');
  assert.equal(t('q2_k', 'blk.3.attn_output.weight', 4096), 'Q3_K');
  assert.equal(t('q4_k_m', 'blk.3.ffn_up.weight', 4096), 'Q4_K');
  assert.equal(t('q4_k_m', 'token_embd.weight', 4096), 'Q4_K');
  for (const mix of ['q2_k', 'q3_k_m', 'q4_k_m', 'q5_k_m', 'q6_k'] as const) {
    assert.equal(t(mix, 'output.weight', 4096), 'Q6_K');
    assert.equal(t(mix, 'output.weight', 4000), 'Q8_0');
  }
  // Q3_K_M's ffn_down is q4_K/q5_K, falling back to q5_0/q5_1; Q2_K's is q3_K, falling back to q4_0
  assert.equal(t('q3_k_m', 'blk.5.ffn_down.weight', 13696), 'Q5_0');
  assert.equal(t('q3_k_m', 'blk.0.ffn_down.weight', 13696), 'Q5_1');
  assert.equal(t('q2_k', 'blk.5.ffn_down.weight', 13696), 'Q4_0');
  assert.equal(t('q4_k_m', 'blk.5.ffn_down.weight', 100), 'F16'); // not even 32 divides the row
});

const SPEC = { hidden: 256, heads: 4, groups: 2, ffn: 96, layers: 8, paddedVocab: 288, dtype: 'F32' as const, seed: 11 };

test('convert --type q4_k_m: per-tensor types, ggml reference bytes, and the file runs', async () => {
  const root = await mkdtemp(path.join(tmpdir(), 'chatglm-kconv-'));
  try {
    const dir = path.join(root, 'hf');
    const tiny = await writeTinyHFModel(dir, SPEC);
    const out = path.join(root, 'q4km.gguf');
    await convertToGguf({ modelDir: dir, out, type: 'q4_k_m' });
    const r = await GgufReader.open(out);
    try {
      assert.equal(r.header.metadata.get('general.file_type')?.value, 15);
      const types = new Map(r.header.tensors.map((t) => [t.name, ggmlTypeName(t.type)]));
      // 8 layers: use_more_bits at 0, 3, 6, 7; ffn 96 is not a multiple of 256 -> q6_K->q8_0, q4_K->q5_0
      for (let i = 0; i < 8; i++) {
        assert.equal(types.get(`blk.${i}.ffn_down.weight`), [0, 3, 6, 7].includes(i) ? 'Q8_0' : 'Q5_0', `ffn_down ${i}`);
        assert.equal(types.get(`blk.${i}.attn_qkv.weight`), [0, 3, 6, 7].includes(i) ? 'Q6_K' : 'Q4_K');
        assert.equal(types.get(`blk.${i}.attn_output.weight`), 'Q4_K');
        assert.equal(types.get(`blk.${i}.ffn_up.weight`), 'Q4_K');
        assert.equal(types.get(`blk.${i}.attn_norm.weight`), 'F32');
        assert.equal(types.get(`blk.${i}.attn_qkv.bias`), 'F32');
      }
      assert.equal(types.get('token_embd.weight'), 'Q4_K');
      assert.equal(types.get('output.weight'), 'Q6_K');
      // the bytes are our reference quantizers' (checked against ggml's in quant-kquants-golden)
      const v = (n: string) => tiny.values.get(n)!.data;
      assert.deepEqual(await r.readTensor('blk.1.attn_qkv.weight'), quantizeRowsK('q4_K', v('transformer.encoder.layers.1.self_attention.query_key_value.weight'), 512, 256));
      assert.deepEqual(await r.readTensor('blk.3.ffn_down.weight'), quantizeRows('q8_0', v('transformer.encoder.layers.3.mlp.dense_4h_to_h.weight'), 256, 96));
      assert.deepEqual(await r.readTensor('output.weight'), quantizeRowsK('q6_K', v('transformer.output_layer.weight'), 288, 256));
    } finally {
      await r.close();
    }
    const stored = new Map([...tiny.values].map(([name, x]) => [name, x.data]));
    const ids = [7, 100, 3, 287, 40];
    const want = oracleForward(tiny.config, stored, ids);
    const { model } = await openModel(out, { families: FAMILIES, backend: 'reference' });
    const got = rows(model.forward([{ cache: model.newCache(8), ids, allLogits: true }])[0]!, 288);
    const { err } = relError(got, want);
    assert.ok(err < 0.1, `q4_k_m vs the f32 oracle: relative error ${err}`);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});

/** libllama of the node-llama-cpp build for this platform (next to libggml-base). */
function findLibllama(): string | undefined {
  const base = findGgmlBase();
  if (base === undefined) return undefined;
  const f = path.join(path.dirname(base), process.platform === 'darwin' ? 'libllama.v0.4.0.dylib' : 'libllama.v0.4.0.so');
  return existsSync(f) ? f : undefined;
}

for (const [mix, ftype] of [['q4_k_m', 15], ['q5_k_m', 17], ['q6_k', 18], ['q3_k_m', 12], ['q2_k', 10]] as const) {
  test(`convert --type ${mix} equals llama.cpp's llama-quantize of the same weights, byte for byte`, async (t) => {
    const lib = findLibllama();
    if (lib === undefined) return t.skip('node-llama-cpp is not installed in .bench/llama (npm run bench installs it); llama.cpp quantizer unavailable');
    const root = await mkdtemp(path.join(tmpdir(), 'chatglm-kconv-llama-'));
    try {
      const exe = path.join(root, 'llama-quantize');
      const cc = spawnSync('cc', ['-O1', '-std=c11', path.join(repoRoot, 'test', 'support', 'llama-quantize.c'), '-ldl', '-o', exe], { encoding: 'utf8' });
      if (cc.status !== 0) return t.skip(`no working C compiler: ${cc.stderr}`);
      const dir = path.join(root, 'hf');
      await writeTinyHFModel(dir, SPEC);
      const f32 = path.join(root, 'f32.gguf');
      const ours = path.join(root, 'ours.gguf');
      const theirs = path.join(root, 'theirs.gguf');
      await convertToGguf({ modelDir: dir, out: f32, type: 'f32' });
      await convertToGguf({ modelDir: dir, out: ours, type: mix });
      const q = spawnSync(exe, [lib, f32, theirs, String(ftype)], { encoding: 'utf8' });
      assert.equal(q.status, 0, `llama_model_quantize failed: ${q.stderr.slice(-2000)}`);
      const a = await GgufReader.open(ours);
      const b = await GgufReader.open(theirs);
      try {
        // same tensors and types (llama.cpp writes them in its own order)
        const list = (r: GgufReader) => r.header.tensors.map((x) => `${x.name} ${ggmlTypeName(x.type)}`).sort();
        assert.deepEqual(list(a), list(b));
        for (const info of a.header.tensors) {
          const mine = await a.readTensor(info);
          const other = await b.readTensor(info.name);
          assert.ok(Buffer.from(mine).equals(Buffer.from(other)), `${mix}: ${info.name} (${ggmlTypeName(info.type)}) differs from llama.cpp's`);
        }
        assert.equal(b.header.metadata.get('general.file_type')?.value, ftype);
      } finally {
        await a.close();
        await b.close();
      }
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
}

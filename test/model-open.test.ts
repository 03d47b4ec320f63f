// openModel on checkpoints written to disk in every HF layout and dtype, against the float64
// oracle; and the clear errors a broken checkpoint must give.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile, readFile, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ChatGLMError } from '../src/errors.js';
import { openModel } from '../src/model/open.js';
import { loadGLMConfig, parameterCount, parseGLMConfig } from '../src/model/config.js';
import { dequantizeRows, quantizeRows } from '../src/numeric/ggml-quants.js';
import { writeSafetensors } from './support/safetensors-writer.js';
import { oracleForward } from './support/model-oracle-f64.js';
import { relError, rows } from './support/model-compare.js';
import { writeCheckpoint, type Layout } from './support/model-checkpoints.js';
import { configJson, randomWeights, type TinyConfig } from './support/model-fixtures.js';
import { FAMILIES } from '../src/families/registry.js';
import { familyFromConfig } from '../src/tokenizer/family-facts.js';

const tiny: TinyConfig = { hidden: 32, layers: 2, heads: 4, headDim: 16, groups: 2, ffn: 32, vocab: 41, ropeRatio: 4 };
const ids = [5, 17, 3, 40, 0, 22];

async function withTmp<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(path.join(tmpdir(), 'chatglm-model-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const combos: [Layout, 'F32' | 'F16' | 'BF16'][] = [
  ['safetensors', 'F32'],
  ['safetensors-sharded', 'F16'],
  ['bin', 'BF16'],
  ['bin-sharded', 'F16'],
];

for (const [layout, dtype] of combos) {
  test(`openModel: ${layout} ${dtype} checkpoint matches the oracle`, async () => {
    await withTmp(async (dir) => {
      const ck = await writeCheckpoint(dir, tiny, dtype, layout, 100, { includeInvFreq: true });
      const progress: number[] = [];
      const { model, layout: found, config, family } = await openModel(dir, { families: FAMILIES, backend: 'reference', onProgress: (p) => progress.push(p.loaded / p.total) });
      assert.equal(found, layout);
      assert.equal(family, 'chatglm3');
      assert.equal(progress.at(-1), 1);
      const got = rows(model.forward([{ cache: model.newCache(8), ids, allLogits: true }])[0]!, tiny.vocab);
      const { err } = relError(got, oracleForward(ck.config, ck.stored, ids));
      assert.ok(err <= 1e-5, `relative error ${err}`);
    });
  });
}

test('openModel with quantize q8_0 / q4_0 matches the oracle run on the dequantized weights', async () => {
  const t: TinyConfig = { ...tiny, hidden: 64, ffn: 64 }; // q4_0/q8_0 rows need multiples of 32
  await withTmp(async (dir) => {
    const ck = await writeCheckpoint(dir, t, 'F32', 'safetensors', 7);
    for (const type of ['q8_0', 'q4_0'] as const) {
      const { model } = await openModel(dir, { families: FAMILIES, backend: 'reference', quantize: type });
      const deq = new Map<string, Float32Array>();
      for (const [name, v] of ck.stored) {
        const shape = randomWeights(t, 7).find((w) => w.name === name)!.shape;
        deq.set(name, shape.length === 2 ? dequantizeRows(type, quantizeRows(type, v, shape[0]!, shape[1]!), shape[0]!, shape[1]!) : v);
      }
      const got = rows(model.forward([{ cache: model.newCache(8), ids, allLogits: true }])[0]!, t.vocab);
      const { err } = relError(got, oracleForward(ck.config, deq, ids));
      assert.ok(err <= 1e-5, `${type}: relative error ${err}`);
    }
  });
});

function isErr(code: string, ...parts: string[]) {
  return (e: unknown) => {
    assert.ok(e instanceof ChatGLMError, `expected ChatGLMError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    for (const p of parts) assert.ok(e.message.includes(p), `message ${JSON.stringify(e.message)} should mention ${p}`);
    return true;
  };
}

test('broken checkpoints give clear ChatGLMErrors naming the file and the problem', async () => {
  await withTmp(async (dir) => {
    await writeCheckpoint(dir, tiny, 'F32', 'safetensors', 1);
    const cfgFile = path.join(dir, 'config.json');
    const cfg = JSON.parse(await readFile(cfgFile, 'utf8')) as Record<string, unknown>;

    // config disagrees with the tensors: wrong shape
    await writeFile(cfgFile, JSON.stringify({ ...cfg, ffn_hidden_size: 30 }));
    await assert.rejects(openModel(dir, { families: FAMILIES, backend: 'reference' }), isErr('MODEL_MISMATCH', 'dense_h_to_4h', '[64, 32]', '[60, 32]'));
    // fewer layers in the config: the extra tensors are reported
    await writeFile(cfgFile, JSON.stringify({ ...cfg, num_layers: 1 }));
    await assert.rejects(openModel(dir, { families: FAMILIES, backend: 'reference' }), isErr('MODEL_MISMATCH', 'unexpected tensor', 'layers.1.'));
    // more layers: a missing tensor
    await writeFile(cfgFile, JSON.stringify({ ...cfg, num_layers: 3 }));
    await assert.rejects(openModel(dir, { families: FAMILIES, backend: 'reference' }), isErr('MODEL_MISMATCH', 'layers.2.input_layernorm.weight', 'missing'));
    // missing / invalid / unknown fields
    const { hidden_size: _h, ...noHidden } = cfg;
    await writeFile(cfgFile, JSON.stringify(noHidden));
    await assert.rejects(openModel(dir, { families: FAMILIES, backend: 'reference' }), isErr('BAD_FORMAT', 'config.json', 'hidden_size'));
    await writeFile(cfgFile, JSON.stringify({ ...cfg, num_attention_heads: 'four' }));
    await assert.rejects(openModel(dir, { families: FAMILIES, backend: 'reference' }), isErr('BAD_FORMAT', 'config.json', 'num_attention_heads'));
    await writeFile(cfgFile, JSON.stringify({ ...cfg, model_type: 'llama' }));
    await assert.rejects(openModel(dir, { families: FAMILIES, backend: 'reference' }), isErr('UNSUPPORTED', 'config.json', 'model_type', 'llama'));
    await writeFile(cfgFile, JSON.stringify(cfg));

    // a tensor missing from the weights file
    const weights = randomWeights(tiny, 1).filter((w) => !w.name.endsWith('final_layernorm.weight'));
    await writeSafetensors(path.join(dir, 'model.safetensors'), weights.map((w) => ({ name: w.name, dtype: 'F32', shape: w.shape, data: w.values })));
    await assert.rejects(openModel(dir, { families: FAMILIES, backend: 'reference' }), isErr('MODEL_MISMATCH', 'final_layernorm.weight', 'missing'));

    await unlink(cfgFile);
    await assert.rejects(openModel(dir, { families: FAMILIES, backend: 'reference' }), (e: unknown) => e instanceof ChatGLMError && e.message.includes('config.json'));
    // the library's loadGLMConfig: a missing config.json, and one that cannot be read (a directory)
    await assert.rejects(loadGLMConfig(dir), isErr('FILE_NOT_FOUND', cfgFile));
    await mkdir(cfgFile);
    await assert.rejects(loadGLMConfig(dir), isErr('FILE_NOT_FOUND', cfgFile, 'cannot read'));
  });
  await assert.rejects(openModel('/nonexistent/model/dir', { families: FAMILIES, backend: 'reference' }), isErr('FILE_NOT_FOUND', '/nonexistent/model/dir'));
});

test('config: field parsing, GQA defaults, family detection and rope scaling', () => {
  const c = parseGLMConfig(configJson(tiny), 'config.json');
  assert.equal(c.numGroups, 2);
  assert.equal(c.ropeScaling, 'base');
  // config.json alone: nothing telling (the tokenizer files decide), or GLM-4's vocabulary size.
  assert.equal(familyFromConfig(FAMILIES, configJson(tiny)), undefined);
  assert.equal(familyFromConfig(FAMILIES, { ...configJson(tiny), padded_vocab_size: 151552 })?.name, 'glm4');
  assert.equal(familyFromConfig(FAMILIES, { ...configJson(tiny), _name_or_path: 'THUDM/codegeex2-6b' })?.name, 'chatglm2');
  const noMqa = parseGLMConfig({ ...configJson(tiny), multi_query_attention: false }, 'config.json');
  assert.equal(noMqa.numGroups, tiny.heads);
  assert.throws(() => parseGLMConfig({ ...configJson(tiny), multi_query_group_num: 3 }, 'x/config.json'), isErr('BAD_FORMAT', 'x/config.json', 'multi_query_group_num'));
  assert.throws(() => parseGLMConfig({ ...configJson(tiny), position_encoding_2d: true }, 'config.json'), isErr('UNSUPPORTED', 'ChatGLM-6B'));
});

test('parameterCount reproduces the published ChatGLM3-6B total (index.json total_size / 2, minus inv_freq)', () => {
  const c = parseGLMConfig(
    {
      model_type: 'chatglm', hidden_size: 4096, num_layers: 28, num_attention_heads: 32, kv_channels: 128,
      multi_query_attention: true, multi_query_group_num: 2, ffn_hidden_size: 13696, padded_vocab_size: 65024,
      layernorm_epsilon: 1e-5, seq_length: 8192, add_qkv_bias: true,
    },
    'config.json',
  );
  // 12,487,168,064 bytes in fp16 = 6,243,584,032 parameters, 32 of which are rotary inv_freq
  assert.equal(parameterCount(c), 6_243_584_032 - 32);
});

test('family from the directory: ChatGLM2-32k interpolates positions, ChatGLM3 scales the base', async () => {
  const { tokenizerModelBytes, smallPieces } = await import('./support/gguf-fixtures.js');
  await withTmp(async (root) => {
    for (const [name, py, family, scaling] of [
      ['THUDM/chatglm2-6b-32k', 'class ChatGLMTokenizer: pass\n', 'chatglm2', 'position'],
      ['THUDM/chatglm3-6b-32k', 'role_special_tokens = ["<|system|>", "<|user|>", "<|assistant|>", "<|observation|>"]\n', 'chatglm3', 'base'],
    ] as const) {
      const dir = path.join(root, family);
      const t: TinyConfig = { ...tiny, name, ropeRatio: 16 };
      const ck = await writeCheckpoint(dir, t, 'F32', 'safetensors', 77);
      await writeFile(path.join(dir, 'tokenizer.model'), tokenizerModelBytes(smallPieces()));
      await writeFile(path.join(dir, 'tokenization_chatglm.py'), py);
      const { model, config, family: found } = await openModel(dir, { families: FAMILIES, backend: 'reference' });
      assert.equal(found, family);
      assert.equal(config.ropeScaling, scaling);
      const got = rows(model.forward([{ cache: model.newCache(8), ids, allLogits: true }])[0]!, t.vocab);
      assert.ok(relError(got, oracleForward(ck.config, ck.stored, ids, { ropeScaling: scaling })).err <= 1e-5, family);
    }
  });
});

test('tie_word_embeddings: without an output layer the embedding doubles as the LM head', async () => {
  const { GLMModel } = await import('../src/model/glm.js');
  const { loadWeights } = await import('../src/model/load.js');
  const { ReferenceBackend } = await import('../src/backend/reference/index.js');
  const { MemorySource } = await import('./support/model-fixtures.js');
  const cfg = { ...configJson(tiny), tie_word_embeddings: true };
  const config = parseGLMConfig(cfg, 'config.json');
  const tensors = randomWeights(tiny, 8).filter((w) => w.name !== 'transformer.output_layer.weight');
  const be = new ReferenceBackend();
  const model = new GLMModel(config, await loadWeights(MemorySource.fromF32('mem', tensors), config, be), be);
  const stored = new Map(tensors.map((w) => [w.name, w.values]));
  stored.set('transformer.output_layer.weight', stored.get('transformer.embedding.word_embeddings.weight')!);
  const got = rows(model.forward([{ cache: model.newCache(8), ids, allLogits: true }])[0]!, tiny.vocab);
  assert.ok(relError(got, oracleForward(cfg, stored, ids)).err <= 1e-5);
  assert.equal(parameterCount(config), tensors.reduce((s, w) => s + w.values.length, 0));
});

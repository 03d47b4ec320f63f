import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ChatGLMError } from '../src/errors.js';
import { openHFCheckpoint } from '../src/formats/hf-checkpoint.js';
import { writeSafetensors, writeShardedSafetensors, type TensorToWrite } from './support/safetensors-writer.js';
import { writeTorchBin } from './support/torch-bin-writer.js';
import { tensorToF32 } from '../src/formats/tensor-f32.js';
import { tempDir } from './support/formats-tmp.js';

const config = { model_type: 'chatglm', hidden_size: 8, num_layers: 1 };

function tensors(): TensorToWrite[] {
  return [
    { name: 'transformer.embedding.word_embeddings.weight', dtype: 'F32', shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) },
    { name: 'transformer.encoder.final_layernorm.weight', dtype: 'F16', shape: [2], data: new Float32Array([0.5, -1]) },
    { name: 'transformer.output_layer.weight', dtype: 'BF16', shape: [2, 2], data: new Float32Array([-3, 0.25, 8, 1.5]) },
  ];
}

async function checkContents(dir: string, layout: string, files: number): Promise<void> {
  const ck = await openHFCheckpoint(dir);
  try {
    assert.equal(ck.layout, layout);
    assert.equal(ck.weightFiles.length, files);
    assert.deepEqual(ck.config, config);
    assert.deepEqual(ck.source.list().map((t) => t.name).sort(), tensors().map((t) => t.name).sort());
    assert.deepEqual([...tensorToF32(await ck.source.read('transformer.embedding.word_embeddings.weight'))], [1, 2, 3, 4]);
    assert.deepEqual([...tensorToF32(await ck.source.read('transformer.encoder.final_layernorm.weight'))], [0.5, -1]);
    const out = await ck.source.read('transformer.output_layer.weight');
    assert.equal(out.info.dtype, 'BF16');
    assert.deepEqual([...tensorToF32(out)], [-3, 0.25, 8, 1.5]);
    assert.ok(!ck.source.has('nope'));
    await assert.rejects(ck.source.read('nope'), /no tensor named nope/);
  } finally {
    await ck.source.close();
  }
}

function expectError(code: string, pattern: RegExp) {
  return (e: unknown): boolean => {
    assert.ok(e instanceof ChatGLMError, `not a ChatGLMError: ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.match(e.message, pattern);
    return true;
  };
}

test('the four weight layouts, and the tokenizer file', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const mk = async (name: string): Promise<string> => {
      const d = path.join(dir, name);
      await mkdir(d);
      await writeFile(path.join(d, 'config.json'), JSON.stringify(config));
      return d;
    };
    const one = await mk('st');
    await writeSafetensors(path.join(one, 'model.safetensors'), tensors(), { format: 'pt' });
    await writeFile(path.join(one, 'tokenizer.model'), 'x');
    await checkContents(one, 'safetensors', 1);
    assert.equal((await openHFCheckpoint(one).then(async (c) => { await c.source.close(); return c.tokenizerFile; })), path.join(one, 'tokenizer.model'));

    const sharded = await mk('st-sharded');
    await writeShardedSafetensors(sharded, tensors(), 16);
    await checkContents(sharded, 'safetensors-sharded', 2);

    const bin = await mk('bin');
    await writeTorchBin(path.join(bin, 'pytorch_model.bin'), tensors());
    await checkContents(bin, 'bin', 1);
    const noTok = await openHFCheckpoint(bin);
    assert.equal(noTok.tokenizerFile, undefined);
    await noTok.source.close();

    const binSharded = await mk('bin-sharded');
    const [a, b, c] = tensors();
    await writeTorchBin(path.join(binSharded, 'pytorch_model-00001-of-00002.bin'), [a!, b!]);
    await writeTorchBin(path.join(binSharded, 'pytorch_model-00002-of-00002.bin'), [c!]);
    await writeFile(
      path.join(binSharded, 'pytorch_model.bin.index.json'),
      JSON.stringify({
        metadata: { total_size: 16 + 4 + 8 },
        weight_map: { [a!.name]: 'pytorch_model-00001-of-00002.bin', [b!.name]: 'pytorch_model-00001-of-00002.bin', [c!.name]: 'pytorch_model-00002-of-00002.bin' },
      }),
    );
    await checkContents(binSharded, 'bin-sharded', 2);

    // Like transformers, safetensors wins when both are present.
    await writeTorchBin(path.join(one, 'pytorch_model.bin'), [a!]);
    await checkContents(one, 'safetensors', 1);
  } finally {
    await cleanup();
  }
});

test('errors: missing dir, missing or bad config.json, no weights, missing shard, inconsistent index', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    await assert.rejects(openHFCheckpoint(path.join(dir, 'absent')), expectError('FILE_NOT_FOUND', /model directory not found: .*absent/));
    await assert.rejects(
      openHFCheckpoint(dir),
      expectError('FILE_NOT_FOUND', new RegExp(`^config\\.json not found in ${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: is this a Hugging Face ChatGLM model directory\\?$`)),
    );
    await writeFile(path.join(dir, 'config.json'), '{"hidden_size": ');
    await assert.rejects(openHFCheckpoint(dir), expectError('BAD_FORMAT', /config\.json: not valid JSON/));
    await writeFile(path.join(dir, 'config.json'), JSON.stringify(config));
    await assert.rejects(openHFCheckpoint(dir), expectError('FILE_NOT_FOUND', /no weights found in .*model\.safetensors, model\.safetensors\.index\.json, pytorch_model\.bin or pytorch_model\.bin\.index\.json/));
    await assert.rejects(openHFCheckpoint(path.join(dir, 'config.json')), expectError('BAD_ARGUMENT', /is a file, not a model directory/));

    const res = await writeShardedSafetensors(dir, tensors(), 16);
    await rm(path.join(dir, res.shards[1]!));
    await assert.rejects(openHFCheckpoint(dir), expectError('FILE_NOT_FOUND', /names shard model-00002-of-00002\.safetensors, which is missing/));

    // Shard present but the index points a tensor at the wrong shard.
    await writeShardedSafetensors(dir, tensors(), 16);
    await writeFile(
      res.indexFile,
      JSON.stringify({ metadata: {}, weight_map: Object.fromEntries(tensors().map((t) => [t.name, res.shards[0]!])) }),
    );
    await assert.rejects(openHFCheckpoint(dir), expectError('BAD_FORMAT', /puts tensor transformer\.encoder\.final_layernorm\.weight in model-00001-of-00002\.safetensors, but that shard does not contain it/));

    await writeFile(res.indexFile, '{"weight_map": ');
    await assert.rejects(openHFCheckpoint(dir), expectError('BAD_FORMAT', /model\.safetensors\.index\.json: cannot parse/));

    // The same tensor in two shards.
    const t = tensors();
    await writeSafetensors(path.join(dir, res.shards[0]!), t.slice(0, 2));
    await writeSafetensors(path.join(dir, res.shards[1]!), t.slice(1));
    await writeFile(res.indexFile, JSON.stringify({ weight_map: { [t[0]!.name]: res.shards[0], [t[2]!.name]: res.shards[1] } }));
    await assert.rejects(openHFCheckpoint(dir), expectError('BAD_FORMAT', /appears in both/));
  } finally {
    await cleanup();
  }
});

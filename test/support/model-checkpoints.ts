/** Writes tiny random GLM checkpoints to disk in every layout, with the project's own writers. */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { writeSafetensors, writeShardedSafetensors, type TensorToWrite } from './safetensors-writer.js';
import { writeTorchBin } from './torch-bin-writer.js';
import { configJson, randomWeights, roundTo, type TinyConfig } from './model-fixtures.js';

export type Layout = 'safetensors' | 'safetensors-sharded' | 'bin' | 'bin-sharded';

export interface WrittenCheckpoint {
  dir: string;
  config: Record<string, unknown>;
  /** The values the files really hold, by HF name (for the oracle). */
  stored: Map<string, Float32Array>;
}

export async function writeCheckpoint(
  dir: string,
  tiny: TinyConfig,
  dtype: 'F32' | 'F16' | 'BF16',
  layout: Layout,
  seed: number,
  extra: { includeInvFreq?: boolean } = {},
): Promise<WrittenCheckpoint> {
  await mkdir(dir, { recursive: true });
  const config = configJson(tiny);
  config['torch_dtype'] = dtype === 'F32' ? 'float32' : dtype === 'F16' ? 'float16' : 'bfloat16';
  await writeFile(path.join(dir, 'config.json'), JSON.stringify(config, null, 2));
  const weights = randomWeights(tiny, seed);
  const tensors: TensorToWrite[] = weights.map((w) => ({ name: w.name, dtype, shape: w.shape, data: w.values }));
  if (extra.includeInvFreq === true) {
    // stored by PyTorch, ignored by the model
    const n = tiny.headDim / 4;
    tensors.push({ name: 'transformer.rotary_pos_emb.inv_freq', dtype, shape: [n], data: Float32Array.from({ length: n }, (_, i) => 1 / 10000 ** ((2 * i) / (tiny.headDim / 2))) });
  }
  const total = tensors.reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1) * (dtype === 'F32' ? 4 : 2), 0);
  const shardBytes = Math.ceil(total / 3);
  switch (layout) {
    case 'safetensors':
      await writeSafetensors(path.join(dir, 'model.safetensors'), tensors, { format: 'pt' });
      break;
    case 'safetensors-sharded':
      await writeShardedSafetensors(dir, tensors, shardBytes);
      break;
    case 'bin':
      await writeTorchBin(path.join(dir, 'pytorch_model.bin'), tensors);
      break;
    case 'bin-sharded': {
      // same split rule as HF: fill a shard until the next tensor would overflow it
      const shards: TensorToWrite[][] = [[]];
      let size = 0;
      for (const t of tensors) {
        const n = t.shape.reduce((a, b) => a * b, 1) * (dtype === 'F32' ? 4 : 2);
        if (size > 0 && size + n > shardBytes) {
          shards.push([]);
          size = 0;
        }
        shards[shards.length - 1]!.push(t);
        size += n;
      }
      const weightMap: Record<string, string> = {};
      for (const [i, shard] of shards.entries()) {
        const name = `pytorch_model-${String(i + 1).padStart(5, '0')}-of-${String(shards.length).padStart(5, '0')}.bin`;
        await writeTorchBin(path.join(dir, name), shard);
        for (const t of shard) weightMap[t.name] = name;
      }
      await writeFile(path.join(dir, 'pytorch_model.bin.index.json'), JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2));
      break;
    }
  }
  return { dir, config, stored: new Map(weights.map((w) => [w.name, roundTo(dtype, w.values)])) };
}

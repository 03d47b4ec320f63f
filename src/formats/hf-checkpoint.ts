/**
 * Hugging Face model directories as published for ChatGLM2/3 and GLM-4: config.json plus weights in
 * one of the four layouts transformers itself loads (in its order of preference), and the tokenizer
 * file. Shards are merged into one TensorSource that opens every shard's header but reads tensors
 * one at a time.
 */
import { readFile, stat, access } from 'node:fs/promises';
import path from 'node:path';
import { ChatGLMError, badFormat } from '../errors.js';
import type { TensorData, TensorInfo, TensorSource } from './tensor-source.js';
import { openSafetensors } from './safetensors.js';
import { openTorchBin } from './torch-bin.js';

export type WeightsLayout = 'safetensors' | 'safetensors-sharded' | 'bin' | 'bin-sharded';

export interface HFCheckpoint {
  dir: string;
  /** config.json as parsed; the model layer validates it. */
  config: Record<string, unknown>;
  source: TensorSource;
  /** Which of the four weight layouts was found. */
  layout: WeightsLayout;
  /** The weight files opened, in order. */
  weightFiles: string[];
  /** Path of tokenizer.model when the directory has one. */
  tokenizerFile?: string;
}

/** A regular file (or a link to one): a shard named "." or a directory is not a shard. */
async function isFile(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isFile();
  } catch {
    return false;
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}

/** Several sources seen as one; each tensor name must live in exactly one of them. */
export class MergedSource implements TensorSource {
  readonly location: string;
  private readonly owner = new Map<string, TensorSource>();
  private readonly sources: TensorSource[];

  constructor(location: string, sources: TensorSource[]) {
    this.location = location;
    this.sources = sources;
    for (const s of sources) {
      for (const t of s.list()) {
        const prev = this.owner.get(t.name);
        if (prev !== undefined) {
          throw badFormat(location, `tensor ${t.name} appears in both ${prev.location} and ${s.location}`);
        }
        this.owner.set(t.name, s);
      }
    }
  }

  list(): TensorInfo[] {
    return this.sources.flatMap((s) => s.list());
  }

  has(name: string): boolean {
    return this.owner.has(name);
  }

  read(name: string): Promise<TensorData> {
    const s = this.owner.get(name);
    if (s === undefined) {
      return Promise.reject(new ChatGLMError('MODEL_MISMATCH', `${this.location}: no tensor named ${name}`, { file: this.location }));
    }
    return s.read(name);
  }

  async close(): Promise<void> {
    await Promise.all(this.sources.map((s) => s.close()));
  }
}

async function openShards(
  dir: string,
  indexFile: string,
  openOne: (file: string) => Promise<TensorSource>,
): Promise<{ source: TensorSource; files: string[] }> {
  let index: unknown;
  try {
    index = JSON.parse(await readFile(indexFile, 'utf8'));
  } catch (e) {
    throw badFormat(indexFile, `cannot parse the shard index (${(e as Error).message}); download it again`);
  }
  const weightMap = typeof index === 'object' && index !== null ? (index as { weight_map?: unknown }).weight_map : undefined;
  if (typeof weightMap !== 'object' || weightMap === null || Array.isArray(weightMap)) {
    throw badFormat(indexFile, 'the shard index has no "weight_map" object');
  }
  const map = weightMap as Record<string, unknown>;
  const files: string[] = [];
  const fileSet = new Set<string>();
  for (const [name, shard] of Object.entries(map)) {
    if (typeof shard !== 'string' || shard.includes('/') || shard.includes('\\') || shard.includes('\0') || shard === '..' || shard === '.' || shard === '') {
      throw badFormat(indexFile, `weight_map entry for ${name} is not a file name in the model directory`);
    }
    if (!fileSet.has(shard)) {
      fileSet.add(shard);
      files.push(shard);
    }
  }
  for (const f of files) {
    if (!(await isFile(path.join(dir, f)))) {
      throw new ChatGLMError('FILE_NOT_FOUND', `${indexFile} names shard ${f}, which is missing from ${dir}: download the missing shard`, {
        file: path.join(dir, f),
      });
    }
  }
  const sources: TensorSource[] = [];
  try {
    for (const f of files) sources.push(await openOne(path.join(dir, f)));
    const merged = new MergedSource(dir, sources);
    for (const [name, shard] of Object.entries(map)) {
      const src = sources[files.indexOf(shard as string)]!;
      if (!src.has(name)) throw badFormat(indexFile, `the index puts tensor ${name} in ${shard as string}, but that shard does not contain it`);
    }
    return { source: merged, files: files.map((f) => path.join(dir, f)) };
  } catch (e) {
    await Promise.all(sources.map((s) => s.close()));
    throw e;
  }
}

/** Opens a Hugging Face ChatGLM model directory. Close `source` when done. */
export async function openHFCheckpoint(dir: string): Promise<HFCheckpoint> {
  let st;
  try {
    st = await stat(dir);
  } catch {
    throw new ChatGLMError('FILE_NOT_FOUND', `model directory not found: ${dir} (pass the directory holding config.json and the weights)`, { file: dir });
  }
  if (!st.isDirectory()) {
    throw new ChatGLMError('BAD_ARGUMENT', `${dir} is a file, not a model directory: pass the Hugging Face model directory (config.json plus weights)`, { file: dir });
  }
  const configFile = path.join(dir, 'config.json');
  let configText: string;
  try {
    configText = await readFile(configFile, 'utf8');
  } catch {
    throw new ChatGLMError('FILE_NOT_FOUND', `config.json not found in ${dir}: is this a Hugging Face ChatGLM model directory?`, { file: configFile });
  }
  let config: unknown;
  try {
    config = JSON.parse(configText);
  } catch (e) {
    throw badFormat(configFile, `not valid JSON (${(e as Error).message}); download config.json again`);
  }
  if (typeof config !== 'object' || config === null || Array.isArray(config)) throw badFormat(configFile, 'config.json is not a JSON object');

  const st1 = path.join(dir, 'model.safetensors');
  const stIndex = path.join(dir, 'model.safetensors.index.json');
  const bin1 = path.join(dir, 'pytorch_model.bin');
  const binIndex = path.join(dir, 'pytorch_model.bin.index.json');
  let source: TensorSource;
  let layout: WeightsLayout;
  let weightFiles: string[];
  if (await exists(st1)) {
    source = await openSafetensors(st1);
    layout = 'safetensors';
    weightFiles = [st1];
  } else if (await exists(stIndex)) {
    ({ source, files: weightFiles } = await openShards(dir, stIndex, openSafetensors));
    layout = 'safetensors-sharded';
  } else if (await exists(bin1)) {
    source = await openTorchBin(bin1);
    layout = 'bin';
    weightFiles = [bin1];
  } else if (await exists(binIndex)) {
    ({ source, files: weightFiles } = await openShards(dir, binIndex, openTorchBin));
    layout = 'bin-sharded';
  } else {
    throw new ChatGLMError(
      'FILE_NOT_FOUND',
      `no weights found in ${dir}: expected model.safetensors, model.safetensors.index.json, pytorch_model.bin or pytorch_model.bin.index.json (download the weight files too, not only the config)`,
      { file: dir },
    );
  }
  const result: HFCheckpoint = { dir, config: config as Record<string, unknown>, source, layout, weightFiles };
  const tok = path.join(dir, 'tokenizer.model');
  if (await exists(tok)) result.tokenizerFile = tok;
  return result;
}

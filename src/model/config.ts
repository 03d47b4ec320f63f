/**
 * GLM-2/3/4 configuration, parsed and validated from a Hugging Face config.json. Only the decoder
 * this project implements is accepted: anything else (ChatGLM-6B v1, the native `glm` port with
 * renamed tensors, LayerNorm or linear biases) is refused with the field that shows it.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ChatGLMError, notFound } from '../errors.js';

/**
 * How rope_ratio stretches RoPE: 'base' multiplies the base (ChatGLM3-32k/128k, GLM-4),
 * 'position' divides positions by it (ChatGLM2-6B-32k's position interpolation).
 */
export type RopeScaling = 'base' | 'position';

export interface GLMConfig {
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  /** kv_channels: channels per attention head. */
  headDim: number;
  /** KV groups (multi_query_group_num), or numHeads without multi-query attention. */
  numGroups: number;
  ffnHiddenSize: number;
  /** padded_vocab_size: rows of the embedding and of the output layer. */
  vocabSize: number;
  eps: number;
  ropeRatio: number;
  ropeScaling: RopeScaling;
  /** The context the model was trained for (seq_length). */
  seqLength: number;
  addQkvBias: boolean;
  /** P-Tuning v2 virtual tokens (pre_seq_len), 0 when the checkpoint has none. */
  preSeqLen: number;
  /** The output layer reuses the embedding (never so in published ChatGLM checkpoints). */
  tieWordEmbeddings: boolean;
  eosTokenIds: number[];
  padTokenId?: number;
}

export interface ParseConfigOptions {
  /** How rope_ratio applies (default 'base'; the family decides, see FamilyFacts.ropeScaling). */
  ropeScaling?: RopeScaling;
}

type Json = Record<string, unknown>;

function fieldError(file: string, field: string, problem: string): ChatGLMError {
  return new ChatGLMError('BAD_FORMAT', `${file}: field "${field}" ${problem}`, { file });
}

/**
 * Upper bounds far above any published GLM (GLM-4: 40 layers, 4096 wide, 151,552 ids, 1M context),
 * so a corrupt or hostile config fails here instead of sizing tensor lists and caches from it.
 */
const FIELD_MAX: Readonly<Record<string, number>> = {
  hidden_size: 1 << 17,
  num_layers: 1024,
  num_attention_heads: 4096,
  kv_channels: 4096,
  multi_query_group_num: 4096,
  ffn_hidden_size: 1 << 20,
  padded_vocab_size: 1 << 22,
  seq_length: 1 << 24,
  pre_seq_len: 1 << 16,
};

function positiveInt(j: Json, file: string, field: string): number {
  const v = j[field];
  if (v === undefined) throw fieldError(file, field, 'is missing; this does not look like a ChatGLM2/3 or GLM-4 config');
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) throw fieldError(file, field, `must be a positive integer, got ${JSON.stringify(v)}`);
  const max = FIELD_MAX[field];
  if (max !== undefined && v > max) throw fieldError(file, field, `is ${v}, more than ${max}; the config is corrupt`);
  return v;
}

function optionalNumber(j: Json, file: string, field: string, fallback: number, positive = true): number {
  const v = j[field];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || (positive && v <= 0)) throw fieldError(file, field, `must be a positive number, got ${JSON.stringify(v)}`);
  return v;
}

function optionalBool(j: Json, file: string, field: string, fallback: boolean): boolean {
  const v = j[field];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== 'boolean') throw fieldError(file, field, `must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

/** Validates a parsed config.json. `file` names it in errors. */
export function parseGLMConfig(json: unknown, file: string, options: ParseConfigOptions = {}): GLMConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new ChatGLMError('BAD_FORMAT', `${file}: expected a JSON object`, { file });
  }
  const j = json as Json;
  const modelType = j['model_type'];
  if (modelType !== undefined && modelType !== 'chatglm') {
    throw new ChatGLMError(
      'UNSUPPORTED',
      `${file}: field "model_type" is ${JSON.stringify(modelType)}; only ChatGLM2/3 and GLM-4 checkpoints ("chatglm") are supported`,
      { file },
    );
  }
  if (j['position_encoding_2d'] !== undefined || j['inner_hidden_size'] !== undefined) {
    throw new ChatGLMError('UNSUPPORTED', `${file}: this is a first-generation ChatGLM-6B config (field "position_encoding_2d"); only ChatGLM2/3 and GLM-4 are supported`, { file });
  }
  for (const [field, want] of [
    ['rmsnorm', true],
    ['add_bias_linear', false],
    ['post_layer_norm', true],
    ['apply_residual_connection_post_layernorm', false],
    ['original_rope', true],
  ] as const) {
    const v = j[field];
    if (v !== undefined && v !== want) {
      throw new ChatGLMError('UNSUPPORTED', `${file}: field "${field}" is ${JSON.stringify(v)}; this implementation needs ${want}`, { file });
    }
  }

  const hiddenSize = positiveInt(j, file, 'hidden_size');
  const numLayers = positiveInt(j, file, 'num_layers');
  const numHeads = positiveInt(j, file, 'num_attention_heads');
  const headDim = j['kv_channels'] === undefined ? hiddenSize / numHeads : positiveInt(j, file, 'kv_channels');
  if (!Number.isInteger(headDim)) throw fieldError(file, 'kv_channels', `is missing and hidden_size ${hiddenSize} is not divisible by num_attention_heads ${numHeads}`);
  if (headDim % 4 !== 0) throw fieldError(file, 'kv_channels', `must be a multiple of 4 (RoPE rotates half of each head in pairs), got ${headDim}`);
  const mqa = optionalBool(j, file, 'multi_query_attention', false);
  const numGroups = mqa ? positiveInt(j, file, 'multi_query_group_num') : numHeads;
  if (numHeads % numGroups !== 0) throw fieldError(file, 'multi_query_group_num', `(${numGroups}) must divide num_attention_heads (${numHeads})`);
  const ffnHiddenSize = positiveInt(j, file, 'ffn_hidden_size');
  const vocabSize = positiveInt(j, file, 'padded_vocab_size');
  const eps = optionalNumber(j, file, 'layernorm_epsilon', 1e-5);
  const ropeRatio = optionalNumber(j, file, 'rope_ratio', 1);
  const seqLength = positiveInt(j, file, 'seq_length');
  const addQkvBias = optionalBool(j, file, 'add_qkv_bias', false);
  const preSeqLenRaw = j['pre_seq_len'];
  let preSeqLen = 0;
  if (preSeqLenRaw !== undefined && preSeqLenRaw !== null) {
    preSeqLen = positiveInt(j, file, 'pre_seq_len');
    if (optionalBool(j, file, 'prefix_projection', false)) {
      throw new ChatGLMError('UNSUPPORTED', `${file}: field "prefix_projection" is true; only P-Tuning v2 prefixes without projection are supported`, { file });
    }
  }
  const eosRaw = j['eos_token_id'];
  const eosTokenIds = eosRaw === undefined || eosRaw === null ? [] : Array.isArray(eosRaw) ? eosRaw : [eosRaw];
  if (!eosTokenIds.every((x) => typeof x === 'number' && Number.isInteger(x) && x >= 0)) {
    throw fieldError(file, 'eos_token_id', `must be a token id or a list of them, got ${JSON.stringify(eosRaw)}`);
  }
  const pad = j['pad_token_id'];
  if (pad !== undefined && pad !== null && (typeof pad !== 'number' || !Number.isInteger(pad) || pad < 0)) {
    throw fieldError(file, 'pad_token_id', `must be a token id, got ${JSON.stringify(pad)}`);
  }

  const config: GLMConfig = {
    hiddenSize,
    numLayers,
    numHeads,
    headDim,
    numGroups,
    ffnHiddenSize,
    vocabSize,
    eps,
    ropeRatio,
    ropeScaling: options.ropeScaling ?? 'base',
    seqLength,
    addQkvBias,
    preSeqLen,
    tieWordEmbeddings: optionalBool(j, file, 'tie_word_embeddings', false),
    eosTokenIds: eosTokenIds as number[],
  };
  if (typeof pad === 'number') config.padTokenId = pad;
  return config;
}

/** Reads and validates `<dir>/config.json`. */
export async function loadGLMConfig(dir: string, options: ParseConfigOptions = {}): Promise<GLMConfig> {
  const file = path.join(dir, 'config.json');
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw notFound('config.json', file, 'point --model at a Hugging Face ChatGLM model directory');
    throw new ChatGLMError('FILE_NOT_FOUND', `cannot read ${file}: ${(err as Error).message}`, { file, cause: err });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ChatGLMError('BAD_FORMAT', `${file}: not valid JSON (${(err as Error).message})`, { file, cause: err });
  }
  return parseGLMConfig(json, file, options);
}

/** Width of the fused QKV projection: all query heads plus K and V for each group. */
export function qkvSize(c: GLMConfig): number {
  return (c.numHeads + 2 * c.numGroups) * c.headDim;
}

/** Parameter count implied by the config (excludes rotary inv_freq, includes a P-Tuning prefix). */
export function parameterCount(c: GLMConfig): number {
  const h = c.hiddenSize;
  const perLayer = h + qkvSize(c) * h + (c.addQkvBias ? qkvSize(c) : 0) + c.numHeads * c.headDim * h + h + 2 * c.ffnHiddenSize * h + c.ffnHiddenSize * h;
  const prefix = c.preSeqLen * c.numLayers * 2 * c.numGroups * c.headDim;
  return (c.tieWordEmbeddings ? 1 : 2) * c.vocabSize * h + c.numLayers * perLayer + h + prefix;
}

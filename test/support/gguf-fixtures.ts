/**
 * Tiny ChatGLM Hugging Face directories for the GGUF tests: config.json, model.safetensors written
 * with our safetensors writer, and a tokenizer.model written with the SentencePiece ModelProto
 * writer (real byte-fallback pieces, so llama.cpp finds its `<0x0A>` line-feed token).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { writeSafetensors } from './safetensors-writer.js';
import type { TensorToWrite } from './safetensors-writer.js';
import {
  ModelType,
  PieceType,
  defaultNormalizerSpec,
  defaultTrainerSpec,
  writeModelProto,
} from '../../src/tokenizer/sentencepiece-model.js';
import type { SentencePieceEntry } from '../../src/tokenizer/sentencepiece-model.js';
import { controlAndBytePieces } from './tokenizer-fixtures.js';

export interface TinyModelSpec {
  hidden: number;
  heads: number;
  groups: number;
  ffn: number;
  layers: number;
  paddedVocab: number;
  dtype: 'F32' | 'F16' | 'BF16';
  seed: number;
  ropeRatio?: number;
  /** Include transformer.rotary_pos_emb.inv_freq (HF checkpoints carry it; convert drops it). */
  invFreq?: boolean;
  /** Pieces to use instead of the built-in small vocabulary. */
  pieces?: SentencePieceEntry[];
  /** Extra text for tokenization_chatglm.py (ChatGLM3's names its role tokens). */
  tokenizerPy?: string;
}

/** A deterministic uniform generator (xorshift32). */
export function uniform(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

/** <unk> <s> </s>, the 256 byte pieces, then a handful of ordinary pieces. */
export function smallPieces(): SentencePieceEntry[] {
  const pieces = controlAndBytePieces();
  const words = ['▁', 'e', 't', 'a', 'o', '▁t', 'he', '▁the', '▁a', 'in', '你', '好', '你好'];
  words.forEach((w, i) => pieces.push({ piece: w, score: -i - 1, type: PieceType.NORMAL }));
  return pieces;
}

export function tokenizerModelBytes(pieces: SentencePieceEntry[]): Uint8Array {
  const trainerSpec = { ...defaultTrainerSpec(), modelType: ModelType.BPE, vocabSize: pieces.length, byteFallback: true };
  return writeModelProto({ pieces, trainerSpec, normalizerSpec: { ...defaultNormalizerSpec(), removeExtraWhitespaces: false } });
}

export interface TinyModel {
  dir: string;
  config: Record<string, unknown>;
  /** The f32 values each HF tensor was generated from (before rounding to dtype). */
  values: Map<string, { shape: number[]; data: Float32Array }>;
  pieces: SentencePieceEntry[];
}

/** Writes a random ChatGLM checkpoint directory. */
export async function writeTinyHFModel(dir: string, spec: TinyModelSpec): Promise<TinyModel> {
  await mkdir(dir, { recursive: true });
  const headDim = spec.hidden / spec.heads;
  const config: Record<string, unknown> = {
    _name_or_path: 'tiny-chatglm3',
    model_type: 'chatglm',
    architectures: ['ChatGLMModel'],
    num_layers: spec.layers,
    hidden_size: spec.hidden,
    ffn_hidden_size: spec.ffn,
    num_attention_heads: spec.heads,
    kv_channels: headDim,
    multi_query_attention: true,
    multi_query_group_num: spec.groups,
    padded_vocab_size: spec.paddedVocab,
    layernorm_epsilon: 1e-5,
    seq_length: 512,
    add_qkv_bias: true,
    add_bias_linear: false,
    rmsnorm: true,
    post_layer_norm: true,
    apply_residual_connection_post_layernorm: false,
    original_rope: true,
    eos_token_id: 2,
    pad_token_id: 0,
    torch_dtype: spec.dtype === 'F32' ? 'float32' : spec.dtype === 'F16' ? 'float16' : 'bfloat16',
  };
  if (spec.ropeRatio !== undefined) config['rope_ratio'] = spec.ropeRatio;
  const rnd = uniform(spec.seed);
  const values = new Map<string, { shape: number[]; data: Float32Array }>();
  const add = (name: string, shape: number[], scale: number, offset = 0): void => {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = offset + (rnd() * 2 - 1) * scale;
    values.set(name, { shape, data });
  };
  const H = spec.hidden;
  const qkv = H + 2 * spec.groups * headDim;
  add('transformer.embedding.word_embeddings.weight', [spec.paddedVocab, H], 1);
  for (let l = 0; l < spec.layers; l++) {
    const L = `transformer.encoder.layers.${l}.`;
    add(`${L}input_layernorm.weight`, [H], 0.1, 1);
    add(`${L}self_attention.query_key_value.weight`, [qkv, H], 1 / Math.sqrt(H));
    add(`${L}self_attention.query_key_value.bias`, [qkv], 0.1);
    add(`${L}self_attention.dense.weight`, [H, H], 1 / Math.sqrt(H));
    add(`${L}post_attention_layernorm.weight`, [H], 0.1, 1);
    add(`${L}mlp.dense_h_to_4h.weight`, [2 * spec.ffn, H], 1 / Math.sqrt(H));
    add(`${L}mlp.dense_4h_to_h.weight`, [H, spec.ffn], 1 / Math.sqrt(spec.ffn));
  }
  add('transformer.encoder.final_layernorm.weight', [H], 0.1, 1);
  add('transformer.output_layer.weight', [spec.paddedVocab, H], 1 / Math.sqrt(H));
  const tensors: TensorToWrite[] = [...values].map(([name, v]) => ({ name, dtype: spec.dtype, shape: v.shape, data: v.data }));
  if (spec.invFreq === true) {
    const inv = new Float32Array(headDim / 4).map((_, i) => 1 / 10000 ** ((2 * i) / (headDim / 2)));
    tensors.push({ name: 'transformer.rotary_pos_emb.inv_freq', dtype: 'F32', shape: [inv.length], data: inv });
  }
  await writeSafetensors(path.join(dir, 'model.safetensors'), tensors);
  await writeFile(path.join(dir, 'config.json'), JSON.stringify(config, null, 2));
  const pieces = spec.pieces ?? smallPieces();
  await writeFile(path.join(dir, 'tokenizer.model'), tokenizerModelBytes(pieces));
  await writeFile(path.join(dir, 'tokenization_chatglm.py'), spec.tokenizerPy ?? 'role_special_tokens = ["<|system|>", "<|user|>", "<|assistant|>", "<|observation|>"]\n');
  return { dir, config, values, pieces };
}

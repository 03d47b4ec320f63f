/**
 * Test fixtures for the model: an in-memory TensorSource, a seeded random generator, and random
 * GLM checkpoints of any size (as f32 values keyed by HF tensor name) that tests can hand to the
 * model directly or write to disk with the project's own writers.
 */
import path from 'node:path';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { DType, TensorData, TensorInfo, TensorSource } from '../../src/formats/tensor-source.js';
import { f32Bytes, f32ToBf16Bytes, f32ToF16Bytes, roundToBf16, roundToF16 } from '../../src/numeric/half.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const sharedDir = path.resolve(repoRoot, '../shared');
export const goldenDir = path.join(sharedDir, 'golden', 'chatglm.cpp');
export function haveGolden(file: string): boolean {
  return existsSync(path.join(goldenDir, file));
}

/** mulberry32: small, seeded, good enough for random weights. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function uniform(n: number, rand: () => number, lo = -0.5, hi = 0.5): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * rand();
  return out;
}

export interface TinyConfig {
  hidden: number;
  layers: number;
  heads: number;
  headDim: number;
  groups: number;
  ffn: number;
  vocab: number;
  eps?: number;
  ropeRatio?: number;
  seqLength?: number;
  preSeqLen?: number;
  /** _name_or_path, to steer family detection. */
  name?: string;
}

/** A config.json object for a tiny GLM. */
export function configJson(t: TinyConfig): Record<string, unknown> {
  const j: Record<string, unknown> = {
    _name_or_path: t.name ?? 'tiny-chatglm3',
    model_type: 'chatglm',
    architectures: ['ChatGLMModel'],
    add_bias_linear: false,
    add_qkv_bias: true,
    apply_residual_connection_post_layernorm: false,
    ffn_hidden_size: t.ffn,
    hidden_size: t.hidden,
    kv_channels: t.headDim,
    layernorm_epsilon: t.eps ?? 1e-5,
    multi_query_attention: true,
    multi_query_group_num: t.groups,
    num_attention_heads: t.heads,
    num_layers: t.layers,
    original_rope: true,
    padded_vocab_size: t.vocab,
    post_layer_norm: true,
    rmsnorm: true,
    seq_length: t.seqLength ?? 64,
    eos_token_id: 2,
    pad_token_id: 0,
    torch_dtype: 'float32',
  };
  if (t.ropeRatio !== undefined) j['rope_ratio'] = t.ropeRatio;
  if (t.preSeqLen !== undefined) {
    j['pre_seq_len'] = t.preSeqLen;
    j['prefix_projection'] = false;
  }
  return j;
}

export interface F32Tensor {
  name: string;
  shape: number[];
  values: Float32Array;
}

/**
 * Random weights for a tiny GLM, in HF names and shapes. Norm weights sit around 1 so that
 * activations stay in a sensible range over several layers.
 */
export function randomWeights(t: TinyConfig, seed: number): F32Tensor[] {
  const r = rng(seed);
  const qkv = (t.heads + 2 * t.groups) * t.headDim;
  const P = 'transformer.';
  const out: F32Tensor[] = [{ name: `${P}embedding.word_embeddings.weight`, shape: [t.vocab, t.hidden], values: uniform(t.vocab * t.hidden, r, -1, 1) }];
  const scale = (fanIn: number) => 1.5 / Math.sqrt(fanIn);
  for (let l = 0; l < t.layers; l++) {
    const L = `${P}encoder.layers.${l}.`;
    out.push({ name: `${L}input_layernorm.weight`, shape: [t.hidden], values: uniform(t.hidden, r, 0.5, 1.5) });
    out.push({ name: `${L}self_attention.query_key_value.weight`, shape: [qkv, t.hidden], values: uniform(qkv * t.hidden, r, -scale(t.hidden), scale(t.hidden)) });
    out.push({ name: `${L}self_attention.query_key_value.bias`, shape: [qkv], values: uniform(qkv, r, -0.5, 0.5) });
    out.push({ name: `${L}self_attention.dense.weight`, shape: [t.hidden, t.heads * t.headDim], values: uniform(t.hidden * t.heads * t.headDim, r, -scale(t.heads * t.headDim), scale(t.heads * t.headDim)) });
    out.push({ name: `${L}post_attention_layernorm.weight`, shape: [t.hidden], values: uniform(t.hidden, r, 0.5, 1.5) });
    out.push({ name: `${L}mlp.dense_h_to_4h.weight`, shape: [2 * t.ffn, t.hidden], values: uniform(2 * t.ffn * t.hidden, r, -scale(t.hidden), scale(t.hidden)) });
    out.push({ name: `${L}mlp.dense_4h_to_h.weight`, shape: [t.hidden, t.ffn], values: uniform(t.hidden * t.ffn, r, -scale(t.ffn), scale(t.ffn)) });
  }
  out.push({ name: `${P}encoder.final_layernorm.weight`, shape: [t.hidden], values: uniform(t.hidden, r, 0.5, 1.5) });
  out.push({ name: `${P}output_layer.weight`, shape: [t.vocab, t.hidden], values: uniform(t.vocab * t.hidden, r, -scale(t.hidden), scale(t.hidden)) });
  if (t.preSeqLen !== undefined) {
    out.push({ name: `${P}prefix_encoder.embedding.weight`, shape: [t.preSeqLen, t.layers * 2 * t.groups * t.headDim], values: uniform(t.preSeqLen * t.layers * 2 * t.groups * t.headDim, r, -1, 1) });
  }
  return out;
}

/** The values a tensor really holds once stored as `dtype` (what an oracle must compute with). */
export function roundTo(dtype: 'F32' | 'F16' | 'BF16', values: Float32Array): Float32Array {
  if (dtype === 'F32') return values;
  const f = dtype === 'F16' ? roundToF16 : roundToBf16;
  return Float32Array.from(values, (x) => f(x));
}

export function encode(dtype: 'F32' | 'F16' | 'BF16', values: Float32Array): Uint8Array {
  if (dtype === 'F32') return new Uint8Array(f32Bytes(values));
  return dtype === 'F16' ? f32ToF16Bytes(values) : f32ToBf16Bytes(values);
}

/** A TensorSource over tensors held in memory. */
export class MemorySource implements TensorSource {
  readonly location: string;
  private readonly tensors = new Map<string, TensorData>();

  constructor(location: string, tensors: readonly TensorData[]) {
    this.location = location;
    for (const t of tensors) this.tensors.set(t.info.name, t);
  }

  static fromF32(location: string, tensors: readonly F32Tensor[], dtype: 'F32' | 'F16' | 'BF16' = 'F32'): MemorySource {
    return new MemorySource(
      location,
      tensors.map((t) => ({ info: { name: t.name, dtype: dtype as DType, shape: t.shape }, data: encode(dtype, t.values) })),
    );
  }

  list(): TensorInfo[] {
    return [...this.tensors.values()].map((t) => t.info);
  }
  has(name: string): boolean {
    return this.tensors.has(name);
  }
  async read(name: string): Promise<TensorData> {
    const t = this.tensors.get(name);
    if (t === undefined) throw new Error(`no tensor ${name}`);
    return t;
  }
  async close(): Promise<void> {}
}

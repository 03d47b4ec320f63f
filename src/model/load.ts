/**
 * Turns a TensorSource (any checkpoint format, HF tensor names) into backend matrices, one tensor
 * at a time, after checking that the checkpoint holds exactly the tensors the config implies.
 */
import { ChatGLMError } from '../errors.js';
import type { Backend, Matrix } from '../backend/types.js';
import { weightTypeOf } from '../backend/types.js';
import type { DType, TensorData, TensorInfo, TensorSource } from '../formats/tensor-source.js';
import { tensorToF32 } from '../formats/tensor-f32.js';
import { blockBytes, blockElements, type BlockWeightType } from '../numeric/ggml-blocks.js';
import { qkvSize, type GLMConfig } from './config.js';
import type { GLMLayerWeights, GLMWeights } from './glm.js';

export interface LoadProgress {
  /** Tensors loaded so far / in total. */
  loaded: number;
  total: number;
  /** Bytes read so far / in total. */
  bytes: number;
  totalBytes: number;
  name: string;
}

/** Re-encodes an f32 matrix as a quantized one ([rows, cols] f32 -> block bytes). */
export type Quantizer = (src: Float32Array, rows: number, cols: number) => { type: 'q8_0' | 'q4_0'; bytes: Uint8Array };

export interface LoadOptions {
  onProgress?: (p: LoadProgress) => void;
  /** When given, every F32/F16/BF16 matrix is quantized with it as it is loaded. */
  quantizer?: Quantizer;
}

const P = 'transformer.';
/** Stored by PyTorch but recomputed by the forward pass; safe to ignore. */
const IGNORED = new Set([`${P}rotary_pos_emb.inv_freq`]);

type Kind = 'matrix' | 'vector' | 'prefix';
interface Expected {
  name: string;
  shape: number[];
  kind: Kind;
}

/** Every tensor a checkpoint for `c` must hold, in load order, with its shape. */
export function expectedTensors(c: GLMConfig): Expected[] {
  const H = c.hiddenSize;
  const out: Expected[] = [{ name: `${P}embedding.word_embeddings.weight`, shape: [c.vocabSize, H], kind: 'matrix' }];
  for (let l = 0; l < c.numLayers; l++) {
    const L = `${P}encoder.layers.${l}.`;
    out.push({ name: `${L}input_layernorm.weight`, shape: [H], kind: 'vector' });
    out.push({ name: `${L}self_attention.query_key_value.weight`, shape: [qkvSize(c), H], kind: 'matrix' });
    if (c.addQkvBias) out.push({ name: `${L}self_attention.query_key_value.bias`, shape: [qkvSize(c)], kind: 'vector' });
    out.push({ name: `${L}self_attention.dense.weight`, shape: [H, c.numHeads * c.headDim], kind: 'matrix' });
    out.push({ name: `${L}post_attention_layernorm.weight`, shape: [H], kind: 'vector' });
    out.push({ name: `${L}mlp.dense_h_to_4h.weight`, shape: [2 * c.ffnHiddenSize, H], kind: 'matrix' });
    out.push({ name: `${L}mlp.dense_4h_to_h.weight`, shape: [H, c.ffnHiddenSize], kind: 'matrix' });
  }
  out.push({ name: `${P}encoder.final_layernorm.weight`, shape: [H], kind: 'vector' });
  if (!c.tieWordEmbeddings) out.push({ name: `${P}output_layer.weight`, shape: [c.vocabSize, H], kind: 'matrix' });
  if (c.preSeqLen > 0) {
    out.push({ name: `${P}prefix_encoder.embedding.weight`, shape: [c.preSeqLen, c.numLayers * 2 * c.numGroups * c.headDim], kind: 'prefix' });
  }
  return out;
}

function shapeText(s: readonly number[]): string {
  return `[${s.join(', ')}]`;
}

const FLOAT_DTYPES: readonly DType[] = ['F32', 'F16', 'BF16'];
const MATRIX_DTYPES: readonly DType[] = ['F32', 'F16', 'BF16', 'Q8_0', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K'];

/** Checks names, shapes and dtypes before any data is read, so a bad file fails fast. */
export function validateTensors(source: TensorSource, c: GLMConfig): Expected[] {
  const present = new Map<string, TensorInfo>(source.list().map((t) => [t.name, t]));
  const where = source.location;
  // Compare the layer count with what the file holds before listing the tensors it implies.
  const lastLayer = `${P}encoder.layers.${c.numLayers - 1}.input_layernorm.weight`;
  if (c.numLayers > present.size || !present.has(lastLayer)) {
    throw new ChatGLMError(
      'MODEL_MISMATCH',
      `${where}: the config says ${c.numLayers} layers but tensor ${lastLayer} is missing (the checkpoint is incomplete or does not match config.json)`,
      { file: where },
    );
  }
  const expected = expectedTensors(c);
  for (const e of expected) {
    const info = present.get(e.name);
    if (info === undefined) {
      throw new ChatGLMError('MODEL_MISMATCH', `${where}: tensor ${e.name} is missing (the checkpoint is incomplete or does not match config.json)`, { file: where });
    }
    if (info.shape.length !== e.shape.length || info.shape.some((d, i) => d !== e.shape[i])) {
      throw new ChatGLMError(
        'MODEL_MISMATCH',
        `${where}: tensor ${e.name} has shape ${shapeText(info.shape)} but config.json implies ${shapeText(e.shape)}`,
        { file: where },
      );
    }
    const allowed = e.kind === 'matrix' ? MATRIX_DTYPES : FLOAT_DTYPES;
    if (!allowed.includes(info.dtype)) {
      throw new ChatGLMError('UNSUPPORTED', `${where}: tensor ${e.name} has dtype ${info.dtype}; expected one of ${allowed.join(', ')}`, { file: where });
    }
  }
  const wanted = new Set(expected.map((e) => e.name));
  const extra = [...present.keys()].filter((n) => !wanted.has(n) && !IGNORED.has(n));
  if (extra.length > 0) {
    const shown = extra.slice(0, 5).join(', ') + (extra.length > 5 ? `, ... (${extra.length} in all)` : '');
    throw new ChatGLMError('MODEL_MISMATCH', `${where}: unexpected tensor(s) ${shown} (the checkpoint does not match config.json)`, { file: where });
  }
  return expected;
}

/** Bytes a tensor of this dtype and shape occupies (Q* types: ggml blocks of 32 or 256 weights). */
export function tensorBytes(info: TensorInfo): number {
  const n = info.shape.reduce((a, b) => a * b, 1);
  switch (info.dtype) {
    case 'F32':
    case 'I32':
      return n * 4;
    case 'F16':
    case 'BF16':
      return n * 2;
    case 'I64':
      return n * 8;
    case 'I8':
    case 'U8':
      return n;
    default: {
      // ggml block types: whole blocks along the row
      const t = weightTypeOf(info.dtype) as BlockWeightType;
      return (n / blockElements(t)) * blockBytes(t);
    }
  }
}

/** Reads every tensor of `source` into backend weights for the model described by `c`. */
export async function loadWeights(source: TensorSource, c: GLMConfig, backend: Backend, options: LoadOptions = {}): Promise<GLMWeights> {
  const expected = validateTensors(source, c);
  const infos = new Map(source.list().map((t) => [t.name, t]));
  const totalBytes = expected.reduce((s, e) => s + tensorBytes(infos.get(e.name)!), 0);
  const matrices = new Map<string, Matrix>();
  const vectors = new Map<string, Float32Array>();
  let bytes = 0;
  for (const [i, e] of expected.entries()) {
    const t: TensorData = await source.read(e.name);
    if (e.kind === 'matrix') {
      const [rows, cols] = e.shape as [number, number];
      if (options.quantizer !== undefined && FLOAT_DTYPES.includes(t.info.dtype)) {
        const q = options.quantizer(tensorToF32(t), rows, cols);
        matrices.set(e.name, backend.loadMatrix(q.type, rows, cols, q.bytes));
      } else {
        matrices.set(e.name, backend.loadMatrix(weightTypeOf(t.info.dtype), rows, cols, t.data));
      }
    } else {
      // Small tensors (norms, biases, the prefix) are used as f32; copy so no checkpoint buffer is pinned.
      vectors.set(e.name, Float32Array.from(tensorToF32(t)));
    }
    bytes += tensorBytes(t.info);
    options.onProgress?.({ loaded: i + 1, total: expected.length, bytes, totalBytes, name: e.name });
  }

  const layers: GLMLayerWeights[] = [];
  for (let l = 0; l < c.numLayers; l++) {
    const L = `${P}encoder.layers.${l}.`;
    const layer: GLMLayerWeights = {
      inputNorm: vectors.get(`${L}input_layernorm.weight`)!,
      qkv: matrices.get(`${L}self_attention.query_key_value.weight`)!,
      dense: matrices.get(`${L}self_attention.dense.weight`)!,
      postNorm: vectors.get(`${L}post_attention_layernorm.weight`)!,
      up: matrices.get(`${L}mlp.dense_h_to_4h.weight`)!,
      down: matrices.get(`${L}mlp.dense_4h_to_h.weight`)!,
    };
    const bias = vectors.get(`${L}self_attention.query_key_value.bias`);
    if (bias !== undefined) layer.qkvBias = bias;
    layers.push(layer);
  }
  const weights: GLMWeights = {
    embedding: matrices.get(`${P}embedding.word_embeddings.weight`)!,
    layers,
    finalNorm: vectors.get(`${P}encoder.final_layernorm.weight`)!,
    output: matrices.get(c.tieWordEmbeddings ? `${P}embedding.word_embeddings.weight` : `${P}output_layer.weight`)!,
  };
  const prefix = vectors.get(`${P}prefix_encoder.embedding.weight`);
  if (prefix !== undefined) weights.prefix = prefix;
  return weights;
}

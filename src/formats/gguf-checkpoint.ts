/**
 * A GGUF file seen as a ChatGLM checkpoint: an HF config.json-shaped object rebuilt from the
 * `chatglm.*` metadata, a TensorSource with Hugging Face tensor names and PyTorch shapes, and the
 * tokenizer stored in the file. Works for files written by our `convert` and by llama.cpp's
 * convert_hf_to_gguf.py (architecture "chatglm").
 *
 * llama.cpp's names map one to one onto HF's (tensor_mapping.py), and GGUF lists dimensions
 * innermost first, so ne = [in, out] is the PyTorch shape [out, in]; the bytes need no reordering.
 */
import { open } from 'node:fs/promises';
import { ChatGLMError, badFormat } from '../errors.js';
import type { DType, TensorData, TensorInfo, TensorSource } from './tensor-source.js';
import {
  GgufReader,
  GgufValueType,
  ggmlTypeName,
  metaArray,
  metaBool,
  metaNumber,
  metaString,
} from './gguf.js';
import type { GgufArray, GgufHeader, GgufNumberArray, GgufTensorInfo } from './gguf.js';
import { IndexedSource, copyInfo } from './indexed-source.js';

const P = 'transformer.';

/** Per-layer tensors: HF suffix after `transformer.encoder.layers.N.` <-> llama.cpp suffix after `blk.N.`. */
const LAYER_NAMES: ReadonlyArray<readonly [string, string]> = [
  ['input_layernorm.weight', 'attn_norm.weight'],
  ['self_attention.query_key_value.weight', 'attn_qkv.weight'],
  ['self_attention.query_key_value.bias', 'attn_qkv.bias'],
  ['self_attention.dense.weight', 'attn_output.weight'],
  ['post_attention_layernorm.weight', 'ffn_norm.weight'],
  ['mlp.dense_h_to_4h.weight', 'ffn_up.weight'],
  ['mlp.dense_4h_to_h.weight', 'ffn_down.weight'],
];

const GLOBAL_NAMES: ReadonlyArray<readonly [string, string]> = [
  [`${P}embedding.word_embeddings.weight`, 'token_embd.weight'],
  [`${P}encoder.final_layernorm.weight`, 'output_norm.weight'],
  [`${P}output_layer.weight`, 'output.weight'],
];

/** HF tensor name -> llama.cpp GGUF name, or undefined for names llama.cpp has no slot for. */
export function hfToGgufName(hf: string): string | undefined {
  for (const [h, g] of GLOBAL_NAMES) if (h === hf) return g;
  const m = /^transformer\.encoder\.layers\.(\d+)\.(.+)$/.exec(hf);
  if (m === null) return undefined;
  for (const [h, g] of LAYER_NAMES) if (h === m[2]) return `blk.${m[1]}.${g}`;
  return undefined;
}

/** llama.cpp GGUF tensor name -> HF tensor name, or undefined. */
export function ggufToHfName(g: string): string | undefined {
  for (const [h, gg] of GLOBAL_NAMES) if (gg === g) return h;
  const m = /^blk\.(\d+)\.(.+)$/.exec(g);
  if (m === null) return undefined;
  for (const [h, gg] of LAYER_NAMES) if (gg === m[2]) return `${P}encoder.layers.${m[1]}.${h}`;
  return undefined;
}

/** ggml type id -> TensorSource dtype for the types the engine consumes directly. */
const DIRECT_DTYPES: ReadonlyMap<number, DType> = new Map<number, DType>([
  [0, 'F32'],
  [1, 'F16'],
  [30, 'BF16'],
  [8, 'Q8_0'],
  [2, 'Q4_0'],
  [3, 'Q4_1'],
  [6, 'Q5_0'],
  [7, 'Q5_1'],
  [10, 'Q2_K'],
  [11, 'Q3_K'],
  [12, 'Q4_K'],
  [13, 'Q5_K'],
  [14, 'Q6_K'],
  [24, 'I8'],
  [26, 'I32'],
  [27, 'I64'],
]);


export interface GgufTokenizerInfo {
  /** tokenizer.ggml.model: "llama" (SentencePiece) or "gpt2" (byte-level BPE, GLM-4). */
  model: string;
  /** tokenizer.ggml.pre, e.g. "chatglm-spm" or "chatglm-bpe". */
  pre?: string;
  tokens: readonly string[];
  /** As stored (normally a Float32Array). */
  scores?: GgufNumberArray;
  /** 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte (SentencePiece's numbering); as stored (normally an Int32Array). */
  tokenTypes?: GgufNumberArray;
  /** Decoded on first read. */
  merges?: readonly string[];
  bosId?: number;
  eosId?: number;
  eotId?: number;
  unkId?: number;
  padId?: number;
  addBos?: boolean;
  addEos?: boolean;
  /** SentencePiece dummy prefix (tokenizer.ggml.add_space_prefix). */
  addSpacePrefix?: boolean;
  removeExtraWhitespaces?: boolean;
  chatTemplate?: string;
}

export interface GgufCheckpoint {
  file: string;
  header: GgufHeader;
  /** config.json-shaped (HF keys: hidden_size, num_layers, kv_channels, padded_vocab_size, ...). */
  config: Record<string, unknown>;
  source: TensorSource;
  tokenizer?: GgufTokenizerInfo;
}

function stringArray(h: GgufHeader, key: string): GgufArray | undefined {
  const a = metaArray(h, key);
  if (a === undefined) return undefined;
  if (a.itemType !== GgufValueType.STRING) throw badFormat(h.path, `metadata ${key} should be an array of strings`);
  return a;
}

/** A numeric array as a typed array of numbers (64-bit integers converted, as scalar ones are). */
function numberArray(h: GgufHeader, key: string): GgufNumberArray | undefined {
  const a = metaArray(h, key);
  if (a === undefined) return undefined;
  const v = a.numbers();
  if (v === undefined) throw badFormat(h.path, `metadata ${key} should be an array of numbers`);
  if (v instanceof BigInt64Array || v instanceof BigUint64Array) return Float64Array.from(v, Number);
  return v;
}

/** Reads the tokenizer.ggml.* metadata, or undefined when the file carries no vocabulary. */
export function readGgufTokenizer(h: GgufHeader): GgufTokenizerInfo | undefined {
  const model = metaString(h, 'tokenizer.ggml.model');
  const tokens = stringArray(h, 'tokenizer.ggml.tokens')?.strings();
  if (model === undefined || tokens === undefined) return undefined;
  const info: GgufTokenizerInfo = { model, tokens };
  const set = <K extends keyof GgufTokenizerInfo>(k: K, v: GgufTokenizerInfo[K] | undefined): void => {
    if (v !== undefined) info[k] = v;
  };
  set('pre', metaString(h, 'tokenizer.ggml.pre'));
  set('scores', numberArray(h, 'tokenizer.ggml.scores'));
  set('tokenTypes', numberArray(h, 'tokenizer.ggml.token_type'));
  // Merges are not needed to rebuild the tokenizer (GLM-4's follow from the token order), so
  // their 150K strings are decoded only if someone reads them.
  const merges = stringArray(h, 'tokenizer.ggml.merges');
  if (merges !== undefined) Object.defineProperty(info, 'merges', { enumerable: true, get: () => merges.strings() });
  set('bosId', metaNumber(h, 'tokenizer.ggml.bos_token_id'));
  set('eosId', metaNumber(h, 'tokenizer.ggml.eos_token_id'));
  set('eotId', metaNumber(h, 'tokenizer.ggml.eot_token_id'));
  set('unkId', metaNumber(h, 'tokenizer.ggml.unknown_token_id'));
  set('padId', metaNumber(h, 'tokenizer.ggml.padding_token_id'));
  set('addBos', metaBool(h, 'tokenizer.ggml.add_bos_token'));
  set('addEos', metaBool(h, 'tokenizer.ggml.add_eos_token'));
  set('addSpacePrefix', metaBool(h, 'tokenizer.ggml.add_space_prefix'));
  set('removeExtraWhitespaces', metaBool(h, 'tokenizer.ggml.remove_extra_whitespaces'));
  set('chatTemplate', metaString(h, 'tokenizer.chat_template'));
  for (const [k, arr] of [
    ['scores', info.scores],
    ['token_type', info.tokenTypes],
  ] as const) {
    if (arr !== undefined && arr.length !== tokens.length) {
      throw badFormat(h.path, `tokenizer.ggml.${k} has ${arr.length} entries but there are ${tokens.length} tokens`);
    }
  }
  return info;
}

function need(h: GgufHeader, key: string): number {
  const v = metaNumber(h, key);
  if (v === undefined) {
    throw badFormat(h.path, `metadata ${key} is missing; this is not a complete ChatGLM GGUF file (re-convert it with \`chatglm convert\`)`);
  }
  return v;
}

/** Builds an HF config.json-shaped object from the chatglm.* metadata and the tensor shapes. */
function buildConfig(h: GgufHeader, tok: GgufTokenizerInfo | undefined): Record<string, unknown> {
  const arch = metaString(h, 'general.architecture');
  if (arch !== 'chatglm') {
    throw new ChatGLMError(
      'UNSUPPORTED',
      `${h.path}: general.architecture is ${JSON.stringify(arch ?? null)}; only ChatGLM2/3 and GLM-4 files ("chatglm") are supported`,
      { file: h.path },
    );
  }
  const a = 'chatglm.';
  const hidden = need(h, `${a}embedding_length`);
  const heads = need(h, `${a}attention.head_count`);
  const kvHeads = metaNumber(h, `${a}attention.head_count_kv`) ?? heads;
  const headDim = metaNumber(h, `${a}attention.key_length`) ?? hidden / heads;
  if (!Number.isInteger(headDim)) throw badFormat(h.path, `embedding_length ${hidden} is not a multiple of head_count ${heads}`);
  const embd = h.tensors.find((t) => t.name === 'token_embd.weight');
  if (embd === undefined) throw badFormat(h.path, 'tensor token_embd.weight is missing; the file is incomplete');
  const vocab = embd.ne[1] ?? 0;
  const scalingType = metaString(h, `${a}rope.scaling.type`);
  const freqBase = metaNumber(h, `${a}rope.freq_base`) ?? 10000;
  // Linear scaling is how ChatGLM2-6B-32k's position interpolation is spelled in GGUF; otherwise
  // rope_ratio lives in the base (10000 * rope_ratio), as llama.cpp's converter writes it.
  const ropeRatio = scalingType === 'linear' ? (metaNumber(h, `${a}rope.scaling.factor`) ?? 1) : freqBase / 10000;
  const qkvBias = h.tensors.some((t) => /^blk\.\d+\.attn_(qkv|q)\.bias$/.test(t.name));
  const config: Record<string, unknown> = {
    model_type: 'chatglm',
    architectures: ['ChatGLMModel'],
    num_layers: need(h, `${a}block_count`),
    hidden_size: hidden,
    ffn_hidden_size: need(h, `${a}feed_forward_length`),
    num_attention_heads: heads,
    kv_channels: headDim,
    multi_query_attention: kvHeads !== heads,
    multi_query_group_num: kvHeads,
    padded_vocab_size: vocab,
    layernorm_epsilon: metaNumber(h, `${a}attention.layer_norm_rms_epsilon`) ?? 1e-5,
    seq_length: metaNumber(h, `${a}context_length`) ?? 2048,
    rope_ratio: ropeRatio,
    add_qkv_bias: qkvBias,
    add_bias_linear: false,
    rmsnorm: true,
    post_layer_norm: true,
    apply_residual_connection_post_layernorm: false,
    original_rope: true,
    tie_word_embeddings: !h.tensors.some((t) => t.name === 'output.weight'),
  };
  const rotary = metaNumber(h, `${a}rope.dimension_count`);
  if (rotary !== undefined && rotary * 2 !== headDim) {
    throw new ChatGLMError(
      'UNSUPPORTED',
      `${h.path}: chatglm.rope.dimension_count is ${rotary} but ChatGLM rotates half of each ${headDim}-channel head; this file is not a ChatGLM2/3/GLM-4 model`,
      { file: h.path },
    );
  }
  const name = metaString(h, 'general.name');
  if (name !== undefined) config['_name_or_path'] = name;
  // A family whose turns also end on other tokens adds them (model/open.ts, FamilyFacts.endOfTurnTokens).
  if (tok?.eosId !== undefined) config['eos_token_id'] = tok.eosId;
  if (tok?.padId !== undefined) config['pad_token_id'] = tok.padId;
  return config;
}

interface Entry {
  info: TensorInfo;
  /** GGUF tensors whose bytes, concatenated, are this tensor (several when Q/K/V are split). */
  parts: GgufTensorInfo[];
}

function pytorchShape(t: GgufTensorInfo): number[] {
  return [...t.ne].reverse();
}

/** The HF-named view of a ChatGLM GGUF file. */
export class GgufSource extends IndexedSource<Entry> {
  protected readonly entries = new Map<string, Entry>();

  constructor(private readonly reader: GgufReader) {
    super();
    const h = reader.header;
    const byName = new Map(h.tensors.map((t) => [t.name, t]));
    for (const t of h.tensors) {
      const hf = ggufToHfName(t.name);
      if (hf !== undefined) this.entries.set(hf, { info: this.infoFor(hf, t), parts: [t] });
    }
    // Some llama.cpp conversions of GLM-4 store Q, K and V separately; the engine wants them fused
    // (rows q | k | v, the HF layout), which for row-major data is plain concatenation.
    for (const t of h.tensors) {
      const m = /^blk\.(\d+)\.attn_q\.(weight|bias)$/.exec(t.name);
      if (m === null) continue;
      const k = byName.get(`blk.${m[1]}.attn_k.${m[2]}`);
      const v = byName.get(`blk.${m[1]}.attn_v.${m[2]}`);
      if (k === undefined || v === undefined) throw badFormat(h.path, `${t.name} has no matching attn_k/attn_v`);
      const sameWidth = t.ne.length === 1 || (k.ne[0] === t.ne[0] && v.ne[0] === t.ne[0]);
      if (k.type !== t.type || v.type !== t.type || !sameWidth || t.ne.length !== k.ne.length || t.ne.length !== v.ne.length) {
        throw new ChatGLMError('UNSUPPORTED', `${h.path}: split Q/K/V tensors of layer ${m[1]} differ in type or width; re-convert with fused attn_qkv`, { file: h.path });
      }
      const hf = `${P}encoder.layers.${m[1]}.self_attention.query_key_value.${m[2]}`;
      const rows = (x: GgufTensorInfo): number => (x.ne.length === 1 ? x.ne[0]! : x.ne[1]!);
      const fused: GgufTensorInfo = { ...t, ne: t.ne.length === 1 ? [rows(t) + rows(k) + rows(v)] : [t.ne[0]!, rows(t) + rows(k) + rows(v)] };
      this.entries.set(hf, { info: this.infoFor(hf, fused), parts: [t, k, v] });
    }
    // llama.cpp ties the output layer to the embedding when `output.weight` is absent.
    const out = `${P}output_layer.weight`;
    const emb = this.entries.get(`${P}embedding.word_embeddings.weight`);
    if (!this.entries.has(out) && emb !== undefined) this.entries.set(out, { info: { ...emb.info, name: out }, parts: emb.parts });
  }

  private infoFor(hf: string, t: GgufTensorInfo): TensorInfo {
    const direct = DIRECT_DTYPES.get(t.type);
    const dtype = direct;
    if (dtype === undefined) {
      throw new ChatGLMError(
        'UNSUPPORTED',
        `${this.reader.path}: tensor ${t.name} is ${ggmlTypeName(t.type)}, which this engine cannot use; convert the model with \`chatglm convert --type q4_0|q8_0|f16\` (or llama-quantize to Q4_0, Q8_0 or a Q*_K mix)`,
        { file: this.reader.path },
      );
    }
    return { name: hf, dtype, shape: pytorchShape(t) };
  }

  get location(): string {
    return this.reader.path;
  }

  get header(): GgufHeader {
    return this.reader.header;
  }

  /** The GGUF tensors behind an HF name (for backends that mmap: their absolute file offsets). */
  ggufTensors(name: string): GgufTensorInfo[] | undefined {
    return this.entries.get(name)?.parts;
  }

  async read(name: string): Promise<TensorData> {
    const e = this.entries.get(name);
    if (e === undefined) {
      throw new ChatGLMError('MODEL_MISMATCH', `${this.location}: no tensor ${name} (GGUF ${hfToGgufName(name) ?? 'has no equivalent'})`, {
        file: this.location,
      });
    }
    const chunks: Uint8Array[] = [];
    for (const p of e.parts) chunks.push(await this.reader.readTensor(p));
    let data: Uint8Array;
    if (chunks.length === 1) data = chunks[0]!;
    else {
      data = new Uint8Array(chunks.reduce((s, c) => s + c.length, 0));
      let o = 0;
      for (const c of chunks) {
        data.set(c, o);
        o += c.length;
      }
    }
    return { info: copyInfo(e.info), data };
  }

  async close(): Promise<void> {
    await this.reader.close();
  }
}

/** Opens a ChatGLM GGUF file. Close `source` when done. */
export async function openGgufCheckpoint(file: string): Promise<GgufCheckpoint> {
  const reader = await GgufReader.open(file);
  try {
    const h = reader.header;
    const tokenizer = readGgufTokenizer(h);
    const config = buildConfig(h, tokenizer);
    const source = new GgufSource(reader);
    const result: GgufCheckpoint = { file, header: h, config, source };
    if (tokenizer !== undefined) result.tokenizer = tokenizer;
    return result;
  } catch (err) {
    await reader.close();
    throw err;
  }
}

/** True when the file starts with the GGUF magic (cheap check for loaders choosing a format). */
export async function isGgufFile(file: string): Promise<boolean> {
  let fh;
  try {
    fh = await open(file, 'r');
  } catch {
    return false;
  }
  try {
    const b = new Uint8Array(4);
    const { bytesRead } = await fh.read(b, 0, 4, 0);
    return bytesRead === 4 && b[0] === 0x47 && b[1] === 0x47 && b[2] === 0x55 && b[3] === 0x46;
  } finally {
    await fh.close();
  }
}

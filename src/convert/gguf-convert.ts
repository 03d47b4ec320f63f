/**
 * Hugging Face ChatGLM2/3 / GLM-4 directory -> GGUF that llama.cpp loads as architecture `chatglm`
 * (the tensor names, metadata keys and vocabulary layout of llama.cpp's convert_hf_to_gguf.py), and
 * that our own loader reads back (gguf-checkpoint.ts).
 *
 * Tensors are read, converted and written one at a time (quantized in row chunks), so peak memory is
 * about one source tensor plus its encoded form, never the model.
 */
import { FAMILIES, getFamily, type ModelFamily } from '../families/registry.js';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { ChatGLMError, badFormat } from '../errors.js';
import { parseModelProto } from '../tokenizer/sentencepiece-model.js';
import { parseTikTokenRanks } from '../tokenizer/tiktoken.js';
import { detectModelFamily } from '../tokenizer/load.js';
import type { FamilyFacts } from '../tokenizer/family-facts.js';
import type { TensorData, TensorInfo, TensorSource } from '../formats/tensor-source.js';
import { openHFCheckpoint } from '../formats/hf-checkpoint.js';
import { f32Bytes, f32ToF16Bytes } from '../numeric/half.js';
import { tensorToF32 } from '../formats/tensor-f32.js';
import { QK, bytesPerRow, isGgmlQuantType, quantizeRowInto } from '../numeric/ggml-quants.js';
import { isKQuantType, kBytesPerRow } from '../numeric/ggml-kquants.js';
import { quantizeRowKInto } from '../numeric/ggml-kquants-quantize.js';
import { K_MIXES, K_MIX_FILE_TYPE, isKMix, kMixTensorType, type KMix } from './gguf-kquant-mix.js';
import { ggmlTensorBytes, ggmlTypeId, ggmlTypeName } from '../formats/gguf.js';
import type { GgufMetadataEntry } from '../formats/gguf.js';
import { GgufWriter, gv } from './gguf-writer.js';
import type { GgufTensorSpec } from './gguf-writer.js';
import { hfToGgufName } from '../formats/gguf-checkpoint.js';

export type ConvertType = 'f32' | 'f16' | 'q8_0' | 'q4_0' | KMix;
export const CONVERT_TYPES: readonly ConvertType[] = ['f32', 'f16', 'q8_0', 'q4_0', ...K_MIXES];

/** llama_ftype values for general.file_type. */
const FILE_TYPE: Record<ConvertType, number> = { f32: 0, f16: 1, q4_0: 2, q8_0: 7, ...K_MIX_FILE_TYPE };

export interface ConvertProgress {
  /** Tensors written so far / in total. */
  done: number;
  total: number;
  /** Bytes of tensor data written so far / in total. */
  bytes: number;
  totalBytes: number;
  /** GGUF name of the tensor just written. */
  name: string;
}

export interface ConvertOptions {
  modelDir: string;
  out: string;
  type: ConvertType;
  /** Overrides the family detected from the directory (decides the special tokens). */
  family?: ModelFamily;
  onProgress?: (p: ConvertProgress) => void;
  /** Stops between tensors; the partial file is removed and an ABORTED error thrown. */
  signal?: AbortSignal;
}

export interface ConvertResult {
  out: string;
  family: ModelFamily;
  tensors: number;
  /** Size of the GGUF file. */
  bytes: number;
  vocabSize: number;
}

const TT = { NORMAL: 1, CONTROL: 3, UNUSED: 5 } as const;

type Json = Record<string, unknown>;

function int(config: Json, file: string, key: string, fallback?: number): number {
  const v = config[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) {
    throw badFormat(file, `config.json field "${key}" must be a positive integer, got ${JSON.stringify(v ?? null)}`);
  }
  return v;
}

async function readText(p: string): Promise<string | undefined> {
  try {
    return await readFile(p, 'utf8');
  } catch {
    return undefined;
  }
}

export interface VocabMetadata {
  entries: [string, GgufMetadataEntry][];
  size: number;
}

/** SentencePiece vocabulary (ChatGLM2/3) as llama.cpp's converter lays it out. */
export function sentencePieceVocab(
  modelBytes: Uint8Array,
  file: string,
  family: ModelFamily,
  paddedVocab: number,
  padId: number,
): VocabMetadata {
  const m = parseModelProto(modelBytes, file);
  const tokens: string[] = [];
  const scores: number[] = [];
  const types: number[] = [];
  for (const p of m.pieces) {
    tokens.push(p.piece);
    scores.push(p.score);
    types.push(p.type);
  }
  for (const s of getFamily(family).sentencePieceSpecials ?? []) {
    tokens.push(s);
    scores.push(0);
    types.push(TT.CONTROL);
  }
  if (tokens.length > paddedVocab) {
    throw badFormat(file, `the tokenizer has ${tokens.length} tokens (specials included) but padded_vocab_size is ${paddedVocab}; is this the model's own tokenizer.model?`);
  }
  while (tokens.length < paddedVocab) {
    tokens.push(`[PAD${tokens.length}]`);
    scores.push(0);
    types.push(TT.UNUSED);
  }
  const t = m.trainerSpec;
  const entries: [string, GgufMetadataEntry][] = [
    ['tokenizer.ggml.model', gv.str('llama')],
    ['tokenizer.ggml.pre', gv.str('chatglm-spm')],
    ['tokenizer.ggml.tokens', gv.strs(tokens)],
    ['tokenizer.ggml.scores', gv.f32s(scores)],
    ['tokenizer.ggml.token_type', gv.i32s(types)],
  ];
  // How the SentencePiece normalizer treats spaces (llama.cpp reads both for SentencePiece vocabularies).
  entries.push(['tokenizer.ggml.add_space_prefix', gv.bool(m.normalizerSpec.addDummyPrefix)]);
  entries.push(['tokenizer.ggml.remove_extra_whitespaces', gv.bool(m.normalizerSpec.removeExtraWhitespaces)]);
  if (t.bosId >= 0) entries.push(['tokenizer.ggml.bos_token_id', gv.u32(t.bosId)]);
  if (t.eosId >= 0) entries.push(['tokenizer.ggml.eos_token_id', gv.u32(t.eosId)]);
  if (t.unkId >= 0) entries.push(['tokenizer.ggml.unknown_token_id', gv.u32(t.unkId)]);
  entries.push(['tokenizer.ggml.padding_token_id', gv.u32(padId)]);
  return { entries, size: tokens.length };
}

/** GPT-2's byte -> printable character table, which byte-level BPE vocabularies are written in. */
function bytesToUnicode(): string[] {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const table = new Array<string>(256);
  for (const b of bs) table[b] = String.fromCodePoint(b);
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (table[b] === undefined) table[b] = String.fromCodePoint(256 + n++);
  }
  return table;
}

/** Splits a token back into the parts BPE merged last (llama.cpp's ChatGLMModel.bpe). */
function bpeParts(ranks: Map<string, number>, token: Uint8Array, maxRank: number): Uint8Array[] {
  let parts: Uint8Array[] = Array.from(token, (b) => Uint8Array.of(b));
  const key = (a: Uint8Array, b: Uint8Array): string => Buffer.concat([a, b]).toString('latin1');
  for (;;) {
    let minIdx = -1;
    let minRank = Infinity;
    for (let i = 0; i + 1 < parts.length; i++) {
      const r = ranks.get(key(parts[i]!, parts[i + 1]!));
      if (r !== undefined && r < minRank) {
        minIdx = i;
        minRank = r;
      }
    }
    if (minIdx < 0 || minRank >= maxRank) break;
    const merged = new Uint8Array(Buffer.concat([parts[minIdx]!, parts[minIdx + 1]!]));
    parts = [...parts.slice(0, minIdx), merged, ...parts.slice(minIdx + 2)];
  }
  return parts;
}

/** GLM-4's tiktoken vocabulary (`base64 rank` lines) as a GGUF "gpt2" vocabulary with merges. */
export function tiktokenVocab(text: string, file: string, family: FamilyFacts, paddedVocab: number, padId: number | undefined): VocabMetadata {
  const specials = family.tiktoken?.specials ?? [];
  const pre = family.tiktoken?.ggufPre[0];
  if (pre === undefined || !specials.includes('<|user|>')) throw new ChatGLMError('UNSUPPORTED', `${family.displayName} declares no GGUF pre-tokenizer name or no <|user|> token: it cannot be written as a GGUF byte-level BPE vocabulary`);
  const ranks = new Map<string, number>();
  const byRank: Uint8Array[] = [];
  for (const { bytes, rank } of parseTikTokenRanks(text, file)) {
    ranks.set(Buffer.from(bytes).toString('latin1'), rank);
    byRank[rank] = bytes;
  }
  const enc = bytesToUnicode();
  const str = (b: Uint8Array): string => Array.from(b, (x) => enc[x]!).join('');
  const tokens: string[] = [];
  const types: number[] = [];
  const merges: string[] = [];
  for (let i = 0; i < byRank.length; i++) {
    const b = byRank[i];
    if (b === undefined) throw badFormat(file, `rank ${i} is missing`);
    tokens.push(str(b));
    types.push(TT.NORMAL);
    if (b.length > 1) merges.push(bpeParts(ranks, b, i).map(str).join(' '));
  }
  for (const s of specials) {
    tokens.push(s);
    types.push(TT.CONTROL);
  }
  if (tokens.length > paddedVocab) throw badFormat(file, `the tokenizer has ${tokens.length} tokens but padded_vocab_size is ${paddedVocab}`);
  while (tokens.length < paddedVocab) {
    tokens.push(`[PAD${tokens.length}]`);
    types.push(TT.UNUSED);
  }
  const eos = byRank.length; // <|endoftext|>
  const entries: [string, GgufMetadataEntry][] = [
    ['tokenizer.ggml.model', gv.str('gpt2')],
    ['tokenizer.ggml.pre', gv.str(pre)],
    ['tokenizer.ggml.tokens', gv.strs(tokens)],
    ['tokenizer.ggml.token_type', gv.i32s(types)],
    ['tokenizer.ggml.merges', gv.strs(merges)],
    ['tokenizer.ggml.eos_token_id', gv.u32(eos)],
    ['tokenizer.ggml.eot_token_id', gv.u32(eos + specials.indexOf('<|user|>'))],
    ['tokenizer.ggml.unknown_token_id', gv.u32(eos)],
    ['tokenizer.ggml.padding_token_id', gv.u32(padId ?? eos)],
  ];
  return { entries, size: tokens.length };
}

/** tokenizer_config.json's chat_template, copied as llama.cpp's converter does. */
async function readChatTemplate(dir: string): Promise<string | undefined> {
  const text = await readText(path.join(dir, 'tokenizer_config.json'));
  if (text === undefined) return undefined;
  try {
    const j = JSON.parse(text) as Json;
    return typeof j['chat_template'] === 'string' ? j['chat_template'] : undefined;
  } catch {
    throw badFormat(path.join(dir, 'tokenizer_config.json'), 'not valid JSON; download it again or delete it');
  }
}

interface Planned {
  hf: TensorInfo;
  spec: GgufTensorSpec;
}

/** Order llama.cpp's converter uses: embedding, layers in order, final norm, output. */
function planTensors(source: TensorSource, numLayers: number, type: ConvertType, gqa = 1): Planned[] {
  const all = new Map(source.list().map((t) => [t.name, t]));
  const order: string[] = ['transformer.embedding.word_embeddings.weight'];
  const layerSuffixes = [
    'input_layernorm.weight',
    'self_attention.query_key_value.weight',
    'self_attention.query_key_value.bias',
    'self_attention.dense.weight',
    'post_attention_layernorm.weight',
    'mlp.dense_h_to_4h.weight',
    'mlp.dense_4h_to_h.weight',
  ];
  for (let l = 0; l < numLayers; l++) for (const s of layerSuffixes) order.push(`transformer.encoder.layers.${l}.${s}`);
  order.push('transformer.encoder.final_layernorm.weight', 'transformer.output_layer.weight');

  const known = new Set(order);
  const unknown = [...all.keys()].filter((n) => !known.has(n) && !n.endsWith('rotary_pos_emb.inv_freq'));
  if (unknown.length > 0) {
    throw new ChatGLMError(
      'UNSUPPORTED',
      `${source.location}: tensors llama.cpp's chatglm architecture has no place for: ${unknown.slice(0, 5).join(', ')}${unknown.length > 5 ? ', ...' : ''} (P-Tuning prefixes cannot be converted; merge or drop them first)`,
      { file: source.location },
    );
  }
  const planned: Planned[] = [];
  for (const name of order) {
    const info = all.get(name);
    if (info === undefined) {
      if (name.endsWith('.bias') || name === 'transformer.output_layer.weight') continue;
      throw new ChatGLMError('MODEL_MISMATCH', `${source.location}: tensor ${name} is missing; the checkpoint is incomplete`, { file: source.location });
    }
    if (!['F32', 'F16', 'BF16'].includes(info.dtype)) {
      throw new ChatGLMError('UNSUPPORTED', `${source.location}: tensor ${name} is ${info.dtype}; convert needs F32, F16 or BF16 weights`, { file: source.location });
    }
    const ggufName = hfToGgufName(name)!;
    const ne = [...info.shape].reverse();
    let ggml: string;
    if (info.shape.length < 2) ggml = 'F32'; // norms and biases stay f32, as llama.cpp keeps them
    else if (type === 'f32') ggml = 'F32';
    else if (type === 'f16') ggml = 'F16';
    else if (isKMix(type)) ggml = kMixTensorType(type, ggufName, ne[0]!, numLayers, gqa); // llama-quantize's choice per tensor
    else ggml = ne[0]! % QK === 0 ? type.toUpperCase() : 'F16'; // rows that do not split into blocks
    planned.push({ hf: info, spec: { name: ggufName, ne, type: ggmlTypeId(ggml) } });
  }
  return planned;
}

const CHUNK_ELEMENTS = 1 << 22;

/** Encodes one source tensor in the planned ggml type. */
function encode(td: TensorData, spec: GgufTensorSpec): Uint8Array {
  const cols = spec.ne[0]!;
  const rows = spec.ne.slice(1).reduce((a, b) => a * b, 1);
  if (spec.type === 1 && td.info.dtype === 'F16') return td.data; // exact pass-through
  if (spec.type === 0) return new Uint8Array(f32Bytes(tensorToF32(td)));
  if (spec.type === 1) return f32ToF16Bytes(tensorToF32(td));
  // ggml type name -> our block type name ('Q4_K' -> 'q4_K', 'Q5_0' -> 'q5_0')
  const name = ggmlTypeName(spec.type);
  const q = name.slice(0, 2).toLowerCase() + name.slice(2);
  if (!isGgmlQuantType(q) && !(isKQuantType(q) && q !== 'q8_K')) throw new ChatGLMError('UNSUPPORTED', `convert cannot write ggml type ${name}`);
  const rb = isGgmlQuantType(q) ? bytesPerRow(q, cols) : kBytesPerRow(q, cols);
  const out = new Uint8Array(rows * rb);
  const elemBytes = td.info.dtype === 'F32' ? 4 : 2;
  // Decode to f32 a chunk of rows at a time: a 6B model's embedding is 1 GiB as f32.
  const chunkRows = Math.max(1, Math.floor(CHUNK_ELEMENTS / cols));
  for (let r0 = 0; r0 < rows; r0 += chunkRows) {
    const n = Math.min(chunkRows, rows - r0);
    const part: TensorData = {
      info: { ...td.info, shape: [n, cols] },
      data: td.data.subarray(r0 * cols * elemBytes, (r0 + n) * cols * elemBytes),
    };
    const f = tensorToF32(part);
    for (let r = 0; r < n; r++) {
      if (isGgmlQuantType(q)) quantizeRowInto(q, f, r * cols, cols, out, (r0 + r) * rb);
      else quantizeRowKInto(q, f, r * cols, cols, out, (r0 + r) * rb);
    }
  }
  return out;
}

/** Converts a Hugging Face ChatGLM directory to a GGUF file. */
export async function convertToGguf(options: ConvertOptions): Promise<ConvertResult> {
  const { modelDir, out, type } = options;
  if (!CONVERT_TYPES.includes(type)) {
    throw new ChatGLMError('BAD_ARGUMENT', `unknown --type ${String(type)}; use one of ${CONVERT_TYPES.join(', ')}`);
  }
  const ckpt = await openHFCheckpoint(modelDir);
  const configFile = path.join(modelDir, 'config.json');
  try {
    const c = ckpt.config;
    const family = options.family ?? (await detectModelFamily(modelDir, c, FAMILIES)).name;
    const hidden = int(c, configFile, 'hidden_size');
    const heads = int(c, configFile, 'num_attention_heads');
    const layers = int(c, configFile, 'num_layers');
    const headDim = int(c, configFile, 'kv_channels', hidden / heads);
    const groups = c['multi_query_attention'] === true ? int(c, configFile, 'multi_query_group_num') : heads;
    const vocab = int(c, configFile, 'padded_vocab_size');
    const ropeRatio = typeof c['rope_ratio'] === 'number' ? c['rope_ratio'] : 1;
    const eps = typeof c['layernorm_epsilon'] === 'number' ? c['layernorm_epsilon'] : 1e-5;
    const padId = typeof c['pad_token_id'] === 'number' ? c['pad_token_id'] : undefined;

    const a = 'chatglm.';
    const meta: [string, GgufMetadataEntry][] = [
      ['general.architecture', gv.str('chatglm')],
      ['general.type', gv.str('model')],
      ['general.name', gv.str(String(c['_name_or_path'] ?? path.basename(path.resolve(modelDir))))],
      [`${a}context_length`, gv.u32(int(c, configFile, 'seq_length', 2048))],
      [`${a}embedding_length`, gv.u32(hidden)],
      [`${a}feed_forward_length`, gv.u32(int(c, configFile, 'ffn_hidden_size'))],
      [`${a}block_count`, gv.u32(layers)],
      [`${a}attention.head_count`, gv.u32(heads)],
      [`${a}attention.head_count_kv`, gv.u32(groups)],
      [`${a}attention.layer_norm_rms_epsilon`, gv.f32(eps)],
      ['general.file_type', gv.u32(FILE_TYPE[type])],
      [`${a}rope.dimension_count`, gv.u32(headDim / 2)],
      ['tokenizer.ggml.add_bos_token', gv.bool(false)],
    ];
    if (headDim * heads !== hidden) {
      meta.push([`${a}attention.key_length`, gv.u32(headDim)], [`${a}attention.value_length`, gv.u32(headDim)]);
    }
    if (getFamily(family).ropeScaling === 'position' && ropeRatio !== 1) {
      // ChatGLM2-6B-32k divides positions by rope_ratio: that is GGUF's linear rope scaling.
      meta.push([`${a}rope.freq_base`, gv.f32(10000)], [`${a}rope.scaling.type`, gv.str('linear')], [`${a}rope.scaling.factor`, gv.f32(ropeRatio)]);
    } else {
      meta.push([`${a}rope.freq_base`, gv.f32(10000 * ropeRatio)]);
    }
    meta.push(['general.quantization_version', gv.u32(2)]);

    // openHFCheckpoint has already looked for tokenizer.model.
    const tokFile = ckpt.tokenizerFile;
    if (tokFile === undefined) {
      throw new ChatGLMError('FILE_NOT_FOUND', `tokenizer.model not found in ${modelDir}; download it with the weights (the GGUF file must carry the vocabulary)`, {
        file: path.join(modelDir, 'tokenizer.model'),
      });
    }
    const tokBytes = new Uint8Array(await readFile(tokFile));
    const vocabMeta =
      getFamily(family).vocabulary === 'tiktoken'
        ? tiktokenVocab(Buffer.from(tokBytes).toString('utf8'), tokFile, getFamily(family), vocab, padId)
        : sentencePieceVocab(tokBytes, tokFile, family, vocab, padId ?? 0);
    meta.push(...vocabMeta.entries);
    const chatTemplate = await readChatTemplate(modelDir);
    if (chatTemplate !== undefined) meta.push(['tokenizer.chat_template', gv.str(chatTemplate)]);

    const planned = planTensors(ckpt.source, layers, type, heads / groups);
    for (const p of planned) {
      if (p.spec.name === 'token_embd.weight' && p.spec.ne[1] !== vocab) {
        throw badFormat(ckpt.source.location, `the embedding has ${p.spec.ne[1]} rows but padded_vocab_size is ${vocab}`);
      }
    }
    const sizes = planned.map((p) => ggmlTensorBytes(p.spec.type, p.spec.ne)!);
    const totalBytes = sizes.reduce((s, x) => s + x, 0);
    const writer = await GgufWriter.create(out, { metadata: meta, tensors: planned.map((p) => p.spec) });
    let bytes = 0;
    try {
      for (let i = 0; i < planned.length; i++) {
        if (options.signal?.aborted) throw new ChatGLMError('ABORTED', `convert: interrupted; ${out} was not written`);
        const p = planned[i]!;
        const td = await ckpt.source.read(p.hf.name);
        await writer.writeTensor(p.spec.name, encode(td, p.spec));
        bytes += sizes[i]!;
        options.onProgress?.({ done: i + 1, total: planned.length, bytes, totalBytes, name: p.spec.name });
      }
      await writer.finish();
    } catch (err) {
      await writer.abort();
      throw err;
    }
    const { size } = await stat(out);
    return { out, family, tensors: planned.length, bytes: size, vocabSize: vocabMeta.size };
  } finally {
    await ckpt.source.close();
  }
}

/**
 * Synthetic random-weight ChatGLM GGUF files with the real shapes, for the benchmark. The weights
 * are random quantized blocks written directly (no f32 matrix is ever built, so a 6B-shape file is
 * written in about the time the disk takes), with a SentencePiece-style vocabulary of the right
 * size so llama.cpp loads the same file as architecture "chatglm".
 */
import { randomFillSync } from 'node:crypto';
import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { GgufWriter, gv, type GgufTensorSpec } from '../src/convert/gguf-writer.js';
import type { GgufMetadataEntry } from '../src/formats/gguf.js';
import { f32Bytes, f32ToF16Bits } from '../src/numeric/half.js';
import { GGML_TYPES, ggmlTypeId } from '../src/formats/ggml-types.js';
import { K_MIX_FILE_TYPE } from '../src/convert/gguf-kquant-mix.js';
import { isKSynthMix, kSynthTensorType, randomTypedRows, type KSynthMix } from './bench-synth-kquants.js';

export interface SynthShape {
  name: string;
  hidden: number;
  heads: number;
  groups: number;
  ffn: number;
  layers: number;
  vocab: number;
  /** Trained context (GGUF context_length; default 8192) and RoPE base (default 10000). */
  context?: number;
  ropeFreqBase?: number;
}

export const SHAPES: Record<string, SynthShape> = {
  '1.7b': { name: '1.7B-shape', hidden: 2048, heads: 16, groups: 2, ffn: 6848, layers: 28, vocab: 65024 },
  '6b': { name: 'ChatGLM3-6B-shape', hidden: 4096, heads: 32, groups: 2, ffn: 13696, layers: 28, vocab: 65024 },
  // ChatGLM3-6B-32k: the 6B weights with seq_length 32768 and rope_ratio 50, which llama.cpp's
  // converter writes as rope.freq_base = 10000 * 50.
  '6b-32k': { name: 'ChatGLM3-6B-32k-shape', hidden: 4096, heads: 32, groups: 2, ffn: 13696, layers: 28, vocab: 65024, context: 32768, ropeFreqBase: 500000 },
};

/** One ggml type throughout (q4_0, q8_0), or a llama.cpp k-quant mix with its per-tensor types. */
export type SynthType = 'q4_0' | 'q8_0' | KSynthMix;
type PlainType = 'q4_0' | 'q8_0';
const FILE_TYPE: Record<SynthType, number> = { q4_0: 2, q8_0: 7, ...K_MIX_FILE_TYPE };
const BLOCK: Record<PlainType, number> = { q4_0: 18, q8_0: 34 };

/** Weights of about N(0, 0.02): the scale makes uniform quants have that standard deviation. */
function blockScale(type: PlainType): number {
  const std = 0.02;
  return type === 'q8_0' ? (std * Math.sqrt(3)) / 127 : (std * Math.sqrt(3)) / 8;
}

/** Random quantized rows: random quant bytes, every block's f16 scale jittered around blockScale. */
function randomQuantRows(type: PlainType, rows: number, cols: number): Uint8Array {
  const bb = BLOCK[type];
  const nBlocks = (rows * cols) / 32;
  const out = new Uint8Array(nBlocks * bb);
  randomFillSync(out);
  const base = blockScale(type);
  for (let b = 0; b < nBlocks; b++) {
    const o = b * bb;
    const d = f32ToF16Bits(base * (0.75 + 0.5 * (out[o]! / 255)));
    out[o] = d & 0xff;
    out[o + 1] = d >> 8;
  }
  return out;
}

/** A SentencePiece-like vocabulary laid out as llama.cpp's converter writes ChatGLM3's. */
function vocabMetadata(vocab: number): [string, GgufMetadataEntry][] {
  const tokens: string[] = ['<unk>', '<s>', '</s>'];
  const types: number[] = [2, 3, 3];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
    types.push(6);
  }
  const specials = ['[MASK]', '[gMASK]', '[sMASK]', 'sop', 'eop', '<|system|>', '<|user|>', '<|assistant|>', '<|observation|>'];
  const pieces = 64789;
  for (let i = tokens.length; i < pieces; i++) {
    tokens.push(`\u2581t${i}`);
    types.push(1);
  }
  for (const s of specials) {
    tokens.push(s);
    types.push(3);
  }
  while (tokens.length < vocab) {
    tokens.push(`[PAD${tokens.length}]`);
    types.push(5);
  }
  const scores = tokens.map((_, i) => (types[i] === 1 ? -i : 0));
  return [
    ['tokenizer.ggml.model', gv.str('llama')],
    ['tokenizer.ggml.pre', gv.str('chatglm-spm')],
    ['tokenizer.ggml.tokens', gv.strs(tokens)],
    ['tokenizer.ggml.scores', gv.f32s(scores)],
    ['tokenizer.ggml.token_type', gv.i32s(types)],
    ['tokenizer.ggml.bos_token_id', gv.u32(1)],
    ['tokenizer.ggml.eos_token_id', gv.u32(2)],
    ['tokenizer.ggml.unknown_token_id', gv.u32(0)],
    ['tokenizer.ggml.padding_token_id', gv.u32(0)],
    ['tokenizer.ggml.add_bos_token', gv.bool(false)],
  ];
}

/** The file's tensors: names, shapes (innermost first) and ggml type ids, per llama.cpp's mix rules for k-mixes. */
function tensorSpecs(s: SynthShape, type: SynthType): GgufTensorSpec[] {
  const hd = s.hidden / s.heads;
  const qkvRows = (s.heads + 2 * s.groups) * hd;
  const t = (name: string, rowLength: number): number =>
    isKSynthMix(type) ? ggmlTypeId(kSynthTensorType(type, name, rowLength, s.layers, s.heads / s.groups)) : ggmlTypeId(type.toUpperCase());
  const specs: GgufTensorSpec[] = [{ name: 'token_embd.weight', ne: [s.hidden, s.vocab], type: t('token_embd.weight', s.hidden) }];
  for (let l = 0; l < s.layers; l++) {
    const b = `blk.${l}.`;
    specs.push(
      { name: `${b}attn_norm.weight`, ne: [s.hidden], type: 0 },
      { name: `${b}attn_qkv.weight`, ne: [s.hidden, qkvRows], type: t(`${b}attn_qkv.weight`, s.hidden) },
      { name: `${b}attn_qkv.bias`, ne: [qkvRows], type: 0 },
      { name: `${b}attn_output.weight`, ne: [s.hidden, s.hidden], type: t(`${b}attn_output.weight`, s.hidden) },
      { name: `${b}ffn_norm.weight`, ne: [s.hidden], type: 0 },
      { name: `${b}ffn_up.weight`, ne: [s.hidden, 2 * s.ffn], type: t(`${b}ffn_up.weight`, s.hidden) },
      { name: `${b}ffn_down.weight`, ne: [s.ffn, s.hidden], type: t(`${b}ffn_down.weight`, s.ffn) },
    );
  }
  specs.push({ name: 'output_norm.weight', ne: [s.hidden], type: 0 }, { name: 'output.weight', ne: [s.hidden, s.vocab], type: t('output.weight', s.hidden) });
  return specs;
}

function specBytes(spec: GgufTensorSpec): number {
  const info = GGML_TYPES.get(spec.type)!;
  return (spec.ne.reduce((a, b) => a * b, 1) / info.blockSize) * info.typeSize;
}

/** Bytes of the weight matrices (what a decode step streams from memory), embedding excluded. */
export function decodeWeightBytes(s: SynthShape, type: SynthType): number {
  let bytes = 0;
  for (const spec of tensorSpecs(s, type)) if (spec.type !== 0 && spec.name !== 'token_embd.weight') bytes += specBytes(spec);
  return bytes;
}

/** Writes the file unless it already exists; returns its path. */
export async function writeSyntheticModel(dir: string, shapeKey: string, type: SynthType, log: (s: string) => void = () => {}): Promise<string> {
  const s = SHAPES[shapeKey];
  if (s === undefined) throw new Error(`unknown shape ${shapeKey}; use one of ${Object.keys(SHAPES).join(', ')}`);
  await mkdir(dir, { recursive: true });
  const file = path.join(dir, `chatglm-${shapeKey}-${type}.gguf`);
  try {
    await stat(file);
    return file;
  } catch {
    // not there yet
  }
  const hd = s.hidden / s.heads;
  const specs = tensorSpecs(s, type);
  const rowsOf = (spec: GgufTensorSpec, rows: number, cols: number): Uint8Array => {
    if (!isKSynthMix(type)) return randomQuantRows(type, rows, cols);
    return randomTypedRows(GGML_TYPES.get(spec.type)!.name, rows, cols);
  };
  const a = 'chatglm.';
  const meta: [string, GgufMetadataEntry][] = [
    ['general.architecture', gv.str('chatglm')],
    ['general.type', gv.str('model')],
    ['general.name', gv.str(`synthetic ${s.name} ${type}`)],
    [`${a}context_length`, gv.u32(s.context ?? 8192)],
    [`${a}embedding_length`, gv.u32(s.hidden)],
    [`${a}feed_forward_length`, gv.u32(s.ffn)],
    [`${a}block_count`, gv.u32(s.layers)],
    [`${a}attention.head_count`, gv.u32(s.heads)],
    [`${a}attention.head_count_kv`, gv.u32(s.groups)],
    [`${a}attention.layer_norm_rms_epsilon`, gv.f32(1e-5)],
    ['general.file_type', gv.u32(FILE_TYPE[type])],
    [`${a}rope.dimension_count`, gv.u32(hd / 2)],
    [`${a}rope.freq_base`, gv.f32(s.ropeFreqBase ?? 10000)],
    ['general.quantization_version', gv.u32(2)],
    ...vocabMetadata(s.vocab),
  ];
  const w = await GgufWriter.create(file, { metadata: meta, tensors: specs });
  try {
    for (const spec of specs) {
      if (spec.type === 0) {
        const v = new Float32Array(spec.ne[0]!);
        const isNorm = spec.name.endsWith('norm.weight');
        const r = new Uint8Array(v.length);
        randomFillSync(r);
        for (let i = 0; i < v.length; i++) v[i] = isNorm ? 0.9 + (0.2 * r[i]!) / 255 : 0.02 * (r[i]! / 127.5 - 1);
        await w.writeTensor(spec.name, f32Bytes(v));
      } else {
        const [cols, rows] = spec.ne as [number, number];
        // Big matrices in slices of rows so a 6B-shape embedding never needs one huge buffer twice.
        if (rows * cols > 1 << 26) {
          const parts: Uint8Array[] = [];
          const step = Math.max(1, Math.floor((1 << 26) / cols));
          for (let r0 = 0; r0 < rows; r0 += step) parts.push(rowsOf(spec, Math.min(step, rows - r0), cols));
          await w.writeTensor(spec.name, Buffer.concat(parts));
        } else {
          await w.writeTensor(spec.name, rowsOf(spec, rows, cols));
        }
      }
      if (spec.name.endsWith('ffn_down.weight')) log(`  ${path.basename(file)}: ${spec.name}`);
    }
    await w.finish();
  } catch (err) {
    await w.abort();
    throw err;
  }
  return file;
}

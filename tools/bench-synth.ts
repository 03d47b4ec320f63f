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

export interface SynthShape {
  name: string;
  hidden: number;
  heads: number;
  groups: number;
  ffn: number;
  layers: number;
  vocab: number;
}

export const SHAPES: Record<string, SynthShape> = {
  '1.7b': { name: '1.7B-shape', hidden: 2048, heads: 16, groups: 2, ffn: 6848, layers: 28, vocab: 65024 },
  '6b': { name: 'ChatGLM3-6B-shape', hidden: 4096, heads: 32, groups: 2, ffn: 13696, layers: 28, vocab: 65024 },
};

export type SynthType = 'q4_0' | 'q8_0';
const TYPE_ID: Record<SynthType, number> = { q4_0: 2, q8_0: 8 };
const FILE_TYPE: Record<SynthType, number> = { q4_0: 2, q8_0: 7 };
const BLOCK: Record<SynthType, number> = { q4_0: 18, q8_0: 34 };

/** Weights of about N(0, 0.02): the scale makes uniform quants have that standard deviation. */
function blockScale(type: SynthType): number {
  const std = 0.02;
  return type === 'q8_0' ? (std * Math.sqrt(3)) / 127 : (std * Math.sqrt(3)) / 8;
}

/** Random quantized rows: random quant bytes, every block's f16 scale jittered around blockScale. */
function randomQuantRows(type: SynthType, rows: number, cols: number): Uint8Array {
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

/** Bytes of the weight matrices (what a decode step streams from memory), embedding excluded. */
export function decodeWeightBytes(s: SynthShape, type: SynthType): number {
  const hd = s.hidden / s.heads;
  const perLayer = (s.heads + 2 * s.groups) * hd * s.hidden + s.hidden * s.hidden + 2 * s.ffn * s.hidden + s.hidden * s.ffn;
  return ((perLayer * s.layers + s.vocab * s.hidden) / 32) * BLOCK[type];
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
  const qkvRows = (s.heads + 2 * s.groups) * hd;
  const t = TYPE_ID[type];
  const specs: GgufTensorSpec[] = [{ name: 'token_embd.weight', ne: [s.hidden, s.vocab], type: t }];
  for (let l = 0; l < s.layers; l++) {
    specs.push(
      { name: `blk.${l}.attn_norm.weight`, ne: [s.hidden], type: 0 },
      { name: `blk.${l}.attn_qkv.weight`, ne: [s.hidden, qkvRows], type: t },
      { name: `blk.${l}.attn_qkv.bias`, ne: [qkvRows], type: 0 },
      { name: `blk.${l}.attn_output.weight`, ne: [s.hidden, s.hidden], type: t },
      { name: `blk.${l}.ffn_norm.weight`, ne: [s.hidden], type: 0 },
      { name: `blk.${l}.ffn_up.weight`, ne: [s.hidden, 2 * s.ffn], type: t },
      { name: `blk.${l}.ffn_down.weight`, ne: [s.ffn, s.hidden], type: t },
    );
  }
  specs.push({ name: 'output_norm.weight', ne: [s.hidden], type: 0 }, { name: 'output.weight', ne: [s.hidden, s.vocab], type: t });
  const a = 'chatglm.';
  const meta: [string, GgufMetadataEntry][] = [
    ['general.architecture', gv.str('chatglm')],
    ['general.type', gv.str('model')],
    ['general.name', gv.str(`synthetic ${s.name} ${type}`)],
    [`${a}context_length`, gv.u32(8192)],
    [`${a}embedding_length`, gv.u32(s.hidden)],
    [`${a}feed_forward_length`, gv.u32(s.ffn)],
    [`${a}block_count`, gv.u32(s.layers)],
    [`${a}attention.head_count`, gv.u32(s.heads)],
    [`${a}attention.head_count_kv`, gv.u32(s.groups)],
    [`${a}attention.layer_norm_rms_epsilon`, gv.f32(1e-5)],
    ['general.file_type', gv.u32(FILE_TYPE[type])],
    [`${a}rope.dimension_count`, gv.u32(hd / 2)],
    [`${a}rope.freq_base`, gv.f32(10000)],
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
          for (let r0 = 0; r0 < rows; r0 += step) parts.push(randomQuantRows(type, Math.min(step, rows - r0), cols));
          await w.writeTensor(spec.name, Buffer.concat(parts));
        } else {
          await w.writeTensor(spec.name, randomQuantRows(type, rows, cols));
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

/**
 * Small valid inputs of every format the project reads, built in memory (binary files go through
 * a temporary folder where a writer needs a path). The fuzzer mutates these; each must be accepted
 * as is (the fuzz test checks that, so mutations start from something the readers take).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { GgufWriter, gv } from '../../src/convert/gguf-writer.js';
import type { GgufMetadataEntry } from '../../src/formats/gguf.js';
import { writeSafetensors, tensorFromF32 } from '../../test/support/safetensors-writer.js';
import { writeTorchBin } from '../../test/support/torch-bin-writer.js';
import { ModelType, PieceType, defaultNormalizerSpec, defaultTrainerSpec, writeModelProto, type SentencePieceEntry } from '../../src/tokenizer/sentencepiece-model.js';
import { CHATGLM3_SPECIAL_TOKENS } from '../../src/families/chatglm3.js';
import { stateDictPickle, torchZip } from './craft.js';

export type SeedFormat = 'gguf' | 'safetensors' | 'torch' | 'sentencepiece' | 'tiktoken' | 'messages' | 'config' | 'toolcall';

export interface Seed {
  format: SeedFormat;
  /** A short label for reports. */
  name: string;
  data: Uint8Array;
}

/** The tiny model every binary seed describes: 1 layer, hidden 32, 4 heads in 2 groups. */
export const TINY = { hidden: 32, heads: 4, groups: 2, headDim: 8, ffn: 48, layers: 1, seqLength: 64 } as const;

function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out[i] = (s / 4294967296 - 0.5) * 0.2;
  }
  return out;
}

/** SentencePiece pieces: <unk> <s> </s>, the 256 byte pieces, a few words (two of them UNUSED). */
export function seedPieces(): SentencePieceEntry[] {
  const pieces: SentencePieceEntry[] = [
    { piece: '<unk>', score: 0, type: PieceType.UNKNOWN },
    { piece: '<s>', score: 0, type: PieceType.CONTROL },
    { piece: '</s>', score: 0, type: PieceType.CONTROL },
  ];
  for (let b = 0; b < 256; b++) pieces.push({ piece: `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`, score: 0, type: PieceType.BYTE });
  const words = ['▁', 'e', 't', 'a', 'o', 'h', 'l', '▁t', 'he', '▁the', 'll', 'hello', '▁hello', '你', '好', '你好', 'x', 'xx', 'xxxx'];
  words.forEach((w, i) => pieces.push({ piece: w, score: -i - 1, type: i >= words.length - 2 ? PieceType.UNUSED : PieceType.NORMAL }));
  return pieces;
}

/** The whole vocabulary: the pieces, then ChatGLM3's specials (as control tokens, the way a GGUF file lists them). */
export function seedVocabulary(): SentencePieceEntry[] {
  return [...seedPieces(), ...CHATGLM3_SPECIAL_TOKENS.map((piece) => ({ piece, score: 0, type: PieceType.CONTROL }))];
}

export function sentencePieceSeed(): Uint8Array {
  const pieces = seedPieces();
  const trainerSpec = { ...defaultTrainerSpec(), modelType: ModelType.BPE, vocabSize: pieces.length, byteFallback: true, unkId: 0, bosId: 1, eosId: 2, padId: -1 };
  const normalizerSpec = { ...defaultNormalizerSpec(), name: 'identity', removeExtraWhitespaces: false };
  return writeModelProto({ pieces, trainerSpec, normalizerSpec });
}

export function tiktokenSeed(): Uint8Array {
  const lines: string[] = [];
  for (let b = 0; b < 256; b++) lines.push(`${Buffer.from([b]).toString('base64')} ${b}`);
  const merges = ['he', 'll', 'llo', 'hello', ' w', 'or', 'ld', ' wor', ' world', 'ab', 'abab', 'aa', 'aaaa', '你好'];
  merges.forEach((m, i) => lines.push(`${Buffer.from(m, 'utf8').toString('base64')} ${256 + i}`));
  return Buffer.from(lines.join('\n') + '\n', 'utf8');
}

/** HF names and PyTorch shapes of the tiny model's tensors. */
function hfTensors(): { name: string; shape: number[] }[] {
  const { hidden: H, heads, groups, headDim, ffn } = TINY;
  const qkv = (heads + 2 * groups) * headDim;
  const vocab = seedVocabulary().length;
  const L = 'transformer.encoder.layers.0.';
  return [
    { name: 'transformer.embedding.word_embeddings.weight', shape: [vocab, H] },
    { name: `${L}input_layernorm.weight`, shape: [H] },
    { name: `${L}self_attention.query_key_value.weight`, shape: [qkv, H] },
    { name: `${L}self_attention.query_key_value.bias`, shape: [qkv] },
    { name: `${L}self_attention.dense.weight`, shape: [H, heads * headDim] },
    { name: `${L}post_attention_layernorm.weight`, shape: [H] },
    { name: `${L}mlp.dense_h_to_4h.weight`, shape: [2 * ffn, H] },
    { name: `${L}mlp.dense_4h_to_h.weight`, shape: [H, ffn] },
    { name: 'transformer.encoder.final_layernorm.weight', shape: [H] },
    { name: 'transformer.output_layer.weight', shape: [vocab, H] },
  ];
}

const GGUF_NAMES: Record<string, string> = {
  'transformer.embedding.word_embeddings.weight': 'token_embd.weight',
  'transformer.encoder.final_layernorm.weight': 'output_norm.weight',
  'transformer.output_layer.weight': 'output.weight',
  'input_layernorm.weight': 'attn_norm.weight',
  'self_attention.query_key_value.weight': 'attn_qkv.weight',
  'self_attention.query_key_value.bias': 'attn_qkv.bias',
  'self_attention.dense.weight': 'attn_output.weight',
  'post_attention_layernorm.weight': 'ffn_norm.weight',
  'mlp.dense_h_to_4h.weight': 'ffn_up.weight',
  'mlp.dense_4h_to_h.weight': 'ffn_down.weight',
};

function ggufName(hf: string): string {
  return GGUF_NAMES[hf] ?? `blk.0.${GGUF_NAMES[hf.replace('transformer.encoder.layers.0.', '')]!}`;
}

/** The tiny model's HF config.json. */
export function configSeed(): Record<string, unknown> {
  return {
    model_type: 'chatglm',
    hidden_size: TINY.hidden,
    num_layers: TINY.layers,
    num_attention_heads: TINY.heads,
    kv_channels: TINY.headDim,
    multi_query_attention: true,
    multi_query_group_num: TINY.groups,
    ffn_hidden_size: TINY.ffn,
    padded_vocab_size: seedVocabulary().length,
    seq_length: TINY.seqLength,
    layernorm_epsilon: 1e-5,
    add_qkv_bias: true,
    rmsnorm: true,
    eos_token_id: 2,
    pad_token_id: 0,
  };
}

async function ggufSeed(dir: string): Promise<Uint8Array> {
  const pieces = seedVocabulary();
  const meta: [string, GgufMetadataEntry][] = [
    ['general.architecture', gv.str('chatglm')],
    ['general.name', gv.str('fuzz-seed')],
    ['chatglm.context_length', gv.u32(TINY.seqLength)],
    ['chatglm.embedding_length', gv.u32(TINY.hidden)],
    ['chatglm.feed_forward_length', gv.u32(TINY.ffn)],
    ['chatglm.block_count', gv.u32(TINY.layers)],
    ['chatglm.attention.head_count', gv.u32(TINY.heads)],
    ['chatglm.attention.head_count_kv', gv.u32(TINY.groups)],
    ['chatglm.attention.layer_norm_rms_epsilon', gv.f32(1e-5)],
    ['chatglm.rope.dimension_count', gv.u32(TINY.headDim / 2)],
    ['tokenizer.ggml.model', gv.str('llama')],
    ['tokenizer.ggml.pre', gv.str('chatglm-spm')],
    ['tokenizer.ggml.tokens', gv.strs(pieces.map((p) => p.piece))],
    ['tokenizer.ggml.scores', gv.f32s(pieces.map((p) => p.score))],
    ['tokenizer.ggml.token_type', gv.i32s(pieces.map((p) => p.type))],
    ['tokenizer.ggml.bos_token_id', gv.u32(1)],
    ['tokenizer.ggml.eos_token_id', gv.u32(2)],
    ['tokenizer.ggml.unknown_token_id', gv.u32(0)],
  ];
  const tensors = hfTensors().map((t) => ({ name: ggufName(t.name), ne: [...t.shape].reverse(), type: 0 }));
  const file = path.join(dir, 'seed.gguf');
  const w = await GgufWriter.create(file, { metadata: meta, tensors });
  for (const [i, t] of hfTensors().entries()) {
    const v = values(t.shape.reduce((a, b) => a * b, 1), i + 1);
    await w.writeTensor(ggufName(t.name), new Uint8Array(v.buffer));
  }
  await w.finish();
  return new Uint8Array(await readFile(file));
}

async function safetensorsSeed(dir: string): Promise<Uint8Array> {
  const file = path.join(dir, 'seed.safetensors');
  await writeSafetensors(
    file,
    hfTensors().map((t, i) => tensorFromF32(t.name, i % 2 === 0 ? 'F32' : 'F16', t.shape, values(t.shape.reduce((a, b) => a * b, 1), i + 1))),
    { format: 'pt' },
  );
  return new Uint8Array(await readFile(file));
}

async function torchSeed(dir: string): Promise<Uint8Array> {
  const file = path.join(dir, 'seed.bin');
  await writeTorchBin(
    file,
    hfTensors().map((t, i) => ({ ...tensorFromF32(t.name, i % 3 === 0 ? 'BF16' : 'F32', t.shape, values(t.shape.reduce((a, b) => a * b, 1), i + 1)), parameter: i === 2 })),
  );
  return new Uint8Array(await readFile(file));
}

export function messagesSeed(): string {
  const tools = [
    {
      type: 'function',
      function: {
        name: 'get_weather',
        description: 'Weather for a city',
        parameters: { type: 'object', properties: { city: { type: 'string' }, days: { type: 'array', items: { type: 'integer' } } }, required: ['city'] },
      },
    },
  ];
  return JSON.stringify([
    { role: 'system', content: 'You are helpful.', tools },
    { role: 'user', content: 'Weather in Paris?' },
    { role: 'assistant', metadata: 'get_weather', content: "```python\ntool_call(city='Paris', days=[1, 2])\n```" },
    { role: 'observation', content: '{"temp": 21}' },
    { role: 'assistant', content: 'It is 21 degrees.' },
    { role: 'user', content: 'And tomorrow? <|assistant|> quoted' },
  ]);
}

export const TOOLCALL_SEEDS: readonly string[] = [
  "get_weather\n```python\ntool_call(city='Paris', days=[1, 2], opts={'unit': ('c', 2.5e3, None, True)}, note=\"a\\tb\" 'c')\n```",
  'get_weather\n{"city": "Paris", "days": [1, 2], "opts": {"unit": "c", "x": null}}',
  "Let me check.<|assistant|>interpreter\n```python\nprint('hi')\n```",
  '\n我来查一下[[训练时间]]。',
];

/** Every seed. Binary ones are written through `tmp` (removed afterwards). */
export async function buildSeeds(): Promise<Seed[]> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'chatglm-fuzz-seeds-'));
  try {
    const utf8 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'utf8'));
    const seeds: Seed[] = [
      { format: 'gguf', name: 'tiny chatglm gguf', data: await ggufSeed(dir) },
      { format: 'safetensors', name: 'tiny model.safetensors', data: await safetensorsSeed(dir) },
      { format: 'torch', name: 'tiny pytorch_model.bin', data: await torchSeed(dir) },
      {
        format: 'torch',
        name: 'hand-assembled torch zip',
        data: torchZip(stateDictPickle([{ name: 'w', shape: [2, 2], stride: [2, 1], key: '0', numel: 4 }]), { '0': Float32Array.of(1, 2, 3, 4) }),
      },
      { format: 'sentencepiece', name: 'tokenizer.model', data: sentencePieceSeed() },
      { format: 'tiktoken', name: 'tiktoken ranks', data: tiktokenSeed() },
      { format: 'messages', name: 'messages with tools', data: utf8(messagesSeed()) },
      { format: 'config', name: 'config.json', data: utf8(JSON.stringify(configSeed())) },
      ...TOOLCALL_SEEDS.map((t, i) => ({ format: 'toolcall' as const, name: `tool call ${i}`, data: utf8(t) })),
    ];
    return seeds;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

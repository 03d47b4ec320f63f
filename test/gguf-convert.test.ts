import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { writeFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { convertToGguf } from '../src/convert/gguf-convert.js';
import { ggufToHfName, hfToGgufName, openGgufCheckpoint } from '../src/formats/gguf-checkpoint.js';
import { GgufReader, GgufValueType, ggmlTypeId } from '../src/formats/gguf.js';
import { GgufWriter, gv } from '../src/convert/gguf-writer.js';
import { openHFCheckpoint } from '../src/formats/hf-checkpoint.js';
import { dequantizeRows, quantizeRows } from '../src/numeric/ggml-quants.js';
import { quantizeRowsK } from '../src/numeric/ggml-kquants-quantize.js';
import { roundToF16 } from '../src/numeric/half.js';
import { ChatGLMError } from '../src/errors.js';
import { repoRoot, tempDir } from './support/formats-tmp.js';
import { writeTinyHFModel } from './support/gguf-fixtures.js';
import { FAMILIES } from '../src/families/registry.js';
import { familyFromGguf } from '../src/tokenizer/family-facts.js';
import { openCheckpoint } from '../src/model/open.js';

/** The family the registry's detectors see in an opened GGUF file. */
function familyOf(ck: Awaited<ReturnType<typeof openGgufCheckpoint>>): string {
  const rows = ck.header.tensors.find((t) => t.name === 'token_embd.weight')?.ne[1] ?? 0;
  return familyFromGguf(FAMILIES, ck.tokenizer, rows).name;
}

const run = promisify(execFile);
const SPEC = { hidden: 64, heads: 2, groups: 1, ffn: 96, layers: 2, paddedVocab: 288, seed: 11 } as const;

test('tensor names follow llama.cpp tensor_mapping.py for MODEL_ARCH.CHATGLM, both ways', () => {
  const pairs: [string, string][] = [
    ['transformer.embedding.word_embeddings.weight', 'token_embd.weight'],
    ['transformer.encoder.final_layernorm.weight', 'output_norm.weight'],
    ['transformer.output_layer.weight', 'output.weight'],
    ['transformer.encoder.layers.0.input_layernorm.weight', 'blk.0.attn_norm.weight'],
    ['transformer.encoder.layers.3.self_attention.query_key_value.weight', 'blk.3.attn_qkv.weight'],
    ['transformer.encoder.layers.3.self_attention.query_key_value.bias', 'blk.3.attn_qkv.bias'],
    ['transformer.encoder.layers.27.self_attention.dense.weight', 'blk.27.attn_output.weight'],
    ['transformer.encoder.layers.1.post_attention_layernorm.weight', 'blk.1.ffn_norm.weight'],
    ['transformer.encoder.layers.1.mlp.dense_h_to_4h.weight', 'blk.1.ffn_up.weight'],
    ['transformer.encoder.layers.1.mlp.dense_4h_to_h.weight', 'blk.1.ffn_down.weight'],
  ];
  for (const [hf, g] of pairs) {
    assert.equal(hfToGgufName(hf), g);
    assert.equal(ggufToHfName(g), hf);
  }
  assert.equal(hfToGgufName('transformer.rotary_pos_emb.inv_freq'), undefined);
  assert.equal(hfToGgufName('transformer.prefix_encoder.embedding.weight'), undefined);
  assert.equal(ggufToHfName('rope_freqs.weight'), undefined);
});

test('convert --type f16: llama.cpp metadata and layout, tensors back exactly, vocabulary with specials and padding', async (t) => {
  const { dir, cleanup } = await tempDir('gguf-conv-');
  t.after(cleanup);
  const m = await writeTinyHFModel(path.join(dir, 'hf'), { ...SPEC, dtype: 'F16', invFreq: true });
  await writeFile(path.join(m.dir, 'tokenizer_config.json'), JSON.stringify({ chat_template: '{% for m in messages %}<|{{ m.role }}|>{% endfor %}' }));
  const out = path.join(dir, 'm.gguf');
  const progress: number[] = [];
  const r = await convertToGguf({ modelDir: m.dir, out, type: 'f16', onProgress: (p) => progress.push(p.done) });
  assert.equal(r.family, 'chatglm3');
  assert.equal(r.tensors, 1 + 2 * 7 + 2);
  assert.deepEqual(progress, Array.from({ length: r.tensors }, (_, i) => i + 1));

  // The raw GGUF: keys and values llama.cpp's chatglm loader reads.
  const g = await GgufReader.open(out);
  const meta = (k: string): unknown => g.get(k);
  assert.equal(meta('general.architecture'), 'chatglm');
  assert.equal(meta('chatglm.context_length'), 512);
  assert.equal(meta('chatglm.embedding_length'), 64);
  assert.equal(meta('chatglm.feed_forward_length'), 96);
  assert.equal(meta('chatglm.block_count'), 2);
  assert.equal(meta('chatglm.attention.head_count'), 2);
  assert.equal(meta('chatglm.attention.head_count_kv'), 1);
  assert.equal(meta('chatglm.attention.layer_norm_rms_epsilon'), Math.fround(1e-5));
  assert.equal(meta('chatglm.rope.dimension_count'), 16); // half of head_dim 32
  assert.equal(meta('chatglm.rope.freq_base'), 10000);
  assert.equal(meta('general.file_type'), 1);
  assert.equal(meta('tokenizer.ggml.model'), 'llama');
  assert.equal(meta('tokenizer.ggml.pre'), 'chatglm-spm');
  assert.equal(meta('tokenizer.ggml.add_bos_token'), false);
  assert.equal(g.header.metadata.get('tokenizer.ggml.scores')!.value instanceof Object, true);
  const byName = new Map(g.header.tensors.map((x) => [x.name, x]));
  assert.equal(byName.size, r.tensors);
  assert.equal(g.header.tensors[0]!.name, 'token_embd.weight');
  assert.deepEqual(byName.get('token_embd.weight')!.ne, [64, 288]);
  assert.equal(byName.get('token_embd.weight')!.type, ggmlTypeId('F16'));
  assert.deepEqual(byName.get('blk.1.attn_qkv.weight')!.ne, [64, 128]); // q 64 + k 32 + v 32 rows
  assert.deepEqual(byName.get('blk.1.ffn_up.weight')!.ne, [64, 192]); // gate and up rows
  assert.deepEqual(byName.get('blk.1.ffn_down.weight')!.ne, [96, 64]);
  for (const n of ['blk.0.attn_norm.weight', 'blk.0.attn_qkv.bias', 'blk.0.ffn_norm.weight', 'output_norm.weight']) {
    assert.equal(byName.get(n)!.type, ggmlTypeId('F32'), `${n} stays f32`);
  }
  for (const x of g.header.tensors) assert.equal(x.fileOffset % 32, 0, `${x.name} aligned`);
  await g.close();

  // Read back through the checkpoint view: HF names, PyTorch shapes, identical bytes.
  const ck = await openGgufCheckpoint(out);
  t.after(() => ck.source.close());
  const hf = await openHFCheckpoint(m.dir);
  t.after(() => hf.source.close());
  const names = ck.source.list().map((x) => x.name).sort();
  assert.deepEqual(names, [...m.values.keys()].sort());
  for (const [name, v] of m.values) {
    const got = await ck.source.read(name);
    assert.deepEqual(got.info.shape, v.shape, name);
    if (v.shape.length === 2) {
      assert.equal(got.info.dtype, 'F16');
      assert.deepEqual(got.data, (await hf.source.read(name)).data, `${name} f16 bytes`);
    } else {
      assert.equal(got.info.dtype, 'F32');
      const f = new Float32Array(got.data.buffer, got.data.byteOffset, got.data.byteLength / 4);
      assert.deepEqual(Array.from(f), Array.from(v.data, roundToF16), name);
    }
  }
  for (const k of ['num_layers', 'hidden_size', 'ffn_hidden_size', 'num_attention_heads', 'kv_channels', 'multi_query_group_num', 'padded_vocab_size', 'seq_length', 'add_qkv_bias']) {
    assert.equal(ck.config[k], m.config[k], k);
  }
  assert.equal(ck.config['rope_ratio'], 1);
  assert.equal(ck.config['multi_query_attention'], true);
  assert.equal(ck.config['tie_word_embeddings'], false);
  assert.equal(ck.config['eos_token_id'], 2);
  assert.equal(familyOf(ck), 'chatglm3');

  const tok = ck.tokenizer!;
  const n = m.pieces.length;
  assert.deepEqual(tok.tokens.slice(0, n), m.pieces.map((p) => p.piece));
  // ChatGLM3's tokenization_chatglm.py appends these after the SentencePiece pieces, in this order.
  assert.deepEqual(tok.tokens.slice(n, n + 9), ['[MASK]', '[gMASK]', '[sMASK]', 'sop', 'eop', '<|system|>', '<|user|>', '<|assistant|>', '<|observation|>']);
  assert.equal(tok.tokens.length, 288);
  assert.equal(tok.tokens[287], '[PAD287]');
  assert.ok(tok.tokenTypes instanceof Int32Array, 'token types are held as the Int32Array the file stores');
  assert.deepEqual(Array.from(tok.tokenTypes.slice(0, 4)), [2, 3, 3, 6]); // unknown, control, control, byte
  assert.ok(tok.tokenTypes!.slice(n, n + 9).every((x) => x === 3));
  assert.ok(tok.tokenTypes!.slice(n + 9).every((x) => x === 5));
  assert.ok(tok.scores instanceof Float32Array, 'scores are held as the Float32Array the file stores');
  assert.deepEqual(Array.from(tok.scores.slice(0, n)), m.pieces.map((p) => Math.fround(p.score)));
  assert.equal(tok.tokens[3 + 0x0a], '<0x0A>');
  assert.deepEqual([tok.unkId, tok.bosId, tok.eosId, tok.padId, tok.addBos], [0, 1, 2, 0, false]);
  // The fixture's normalizer: dummy prefix on, whitespace runs kept (as ChatGLM's tokenizer does).
  assert.deepEqual([tok.addSpacePrefix, tok.removeExtraWhitespaces], [true, false]);
  assert.equal(tok.chatTemplate, '{% for m in messages %}<|{{ m.role }}|>{% endfor %}');
});

test('convert --type q8_0 / q4_0 from f32: ggml blocks within quantization error of the source', async (t) => {
  const { dir, cleanup } = await tempDir('gguf-conv-');
  t.after(cleanup);
  const m = await writeTinyHFModel(path.join(dir, 'hf'), { ...SPEC, dtype: 'F32', seed: 5 });
  for (const type of ['q8_0', 'q4_0'] as const) {
    const out = path.join(dir, `${type}.gguf`);
    await convertToGguf({ modelDir: m.dir, out, type });
    const ck = await openGgufCheckpoint(out);
    for (const [name, v] of m.values) {
      const got = await ck.source.read(name);
      if (v.shape.length === 1) {
        assert.equal(got.info.dtype, 'F32', name);
        continue;
      }
      assert.equal(got.info.dtype, type.toUpperCase(), name);
      const [rows, cols] = v.shape as [number, number];
      assert.deepEqual(got.data, quantizeRows(type, v.data, rows, cols), `${name} bytes`);
      const back = dequantizeRows(type, got.data, rows, cols);
      // Per 32-block: |x - x'| <= d/2 (q8_0, d = amax/127) or d (q4_0's clamped +8d, d = amax/8),
      // plus the f16 rounding of d.
      for (let b = 0; b < v.data.length / 32; b++) {
        let amax = 0;
        for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(v.data[b * 32 + j]!));
        const bound = type === 'q8_0' ? (amax / 127) * (0.5 + 127 / 2048) : (amax / 8) * (1 + 8 / 2048);
        for (let j = 0; j < 32; j++) {
          const i = b * 32 + j;
          assert.ok(Math.abs(back[i]! - v.data[i]!) <= bound + 1e-7, `${type} ${name} element ${i}`);
        }
      }
    }
    await ck.source.close();
    assert.equal((await GgufReader.open(out).then(async (r) => [r.get('general.file_type'), await r.close()]))[0], type === 'q8_0' ? 7 : 2);
  }
});

test('files as llama.cpp writes them: tied output, split Q/K/V, <bos>/<eos> names', async (t) => {
  const { dir, cleanup } = await tempDir('gguf-conv-');
  t.after(cleanup);
  const file = path.join(dir, 'llama.gguf');
  const H = 64;
  const f32 = (n: number, base: number): Uint8Array => new Uint8Array(new Float32Array(n).map((_, i) => base + i).buffer);
  const tensors = [
    { name: 'token_embd.weight', ne: [H, 8], type: 0, data: f32(H * 8, 0) },
    { name: 'blk.0.attn_norm.weight', ne: [H], type: 0, data: f32(H, 1) },
    { name: 'blk.0.attn_q.weight', ne: [H, 64], type: 0, data: f32(H * 64, 1000) },
    { name: 'blk.0.attn_k.weight', ne: [H, 32], type: 0, data: f32(H * 32, 2000) },
    { name: 'blk.0.attn_v.weight', ne: [H, 32], type: 0, data: f32(H * 32, 3000) },
    { name: 'blk.0.attn_q.bias', ne: [64], type: 0, data: f32(64, 4000) },
    { name: 'blk.0.attn_k.bias', ne: [32], type: 0, data: f32(32, 5000) },
    { name: 'blk.0.attn_v.bias', ne: [32], type: 0, data: f32(32, 6000) },
    { name: 'blk.0.attn_output.weight', ne: [H, H], type: 0, data: f32(H * H, 0) },
    { name: 'blk.0.ffn_norm.weight', ne: [H], type: 0, data: f32(H, 1) },
    { name: 'blk.0.ffn_up.weight', ne: [H, 64], type: 0, data: f32(H * 64, 0) },
    { name: 'blk.0.ffn_down.weight', ne: [32, H], type: 0, data: f32(32 * H, 0) },
    { name: 'output_norm.weight', ne: [H], type: 0, data: f32(H, 1) },
  ];
  const tokens = ['<unk>', '<bos>', '<eos>', '▁a', '[MASK]', '[gMASK]', '[sMASK]', 'sop'];
  const w = await GgufWriter.create(file, {
    metadata: [
      ['general.architecture', gv.str('chatglm')],
      ['chatglm.context_length', gv.u32(8192)],
      ['chatglm.embedding_length', gv.u32(H)],
      ['chatglm.feed_forward_length', gv.u32(32)],
      ['chatglm.block_count', gv.u32(1)],
      ['chatglm.attention.head_count', gv.u32(2)],
      ['chatglm.attention.head_count_kv', gv.u32(1)],
      ['chatglm.attention.layer_norm_rms_epsilon', gv.f32(1.5625e-7)],
      ['chatglm.rope.dimension_count', gv.u32(16)],
      ['chatglm.rope.freq_base', gv.f32(5000000)],
      ['tokenizer.ggml.model', gv.str('llama')],
      ['tokenizer.ggml.pre', gv.str('chatglm-spm')],
      ['tokenizer.ggml.tokens', gv.strs(tokens)],
      ['tokenizer.ggml.scores', gv.f32s(new Array(8).fill(0))],
      ['tokenizer.ggml.token_type', gv.arr(GgufValueType.INT32, Int32Array.of(2, 3, 3, 1, 3, 3, 3, 3))],
      ['tokenizer.ggml.eos_token_id', gv.u32(2)],
    ],
    tensors: tensors.map(({ name, ne, type }) => ({ name, ne, type })),
  });
  for (const x of tensors) await w.writeTensor(x.name, x.data);
  await w.finish();

  const ck = await openGgufCheckpoint(file);
  t.after(() => ck.source.close());
  assert.equal(familyOf(ck), 'chatglm2'); // no role tokens in this vocabulary
  assert.equal(ck.config['tie_word_embeddings'], true);
  assert.equal(ck.config['rope_ratio'], 500);
  assert.equal(ck.config['kv_channels'], 32);
  assert.equal(ck.config['add_qkv_bias'], true);
  const qkv = await ck.source.read('transformer.encoder.layers.0.self_attention.query_key_value.weight');
  assert.deepEqual(qkv.info.shape, [128, H]);
  const f = new Float32Array(qkv.data.buffer, qkv.data.byteOffset, qkv.data.byteLength / 4);
  assert.deepEqual([f[0], f[H * 64], f[H * 96], f[H * 128 - 1]], [1000, 2000, 3000, 3000 + H * 32 - 1]);
  const bias = await ck.source.read('transformer.encoder.layers.0.self_attention.query_key_value.bias');
  assert.deepEqual(bias.info.shape, [128]);
  const out = await ck.source.read('transformer.output_layer.weight');
  assert.deepEqual(out.info.shape, [8, H]);
  assert.deepEqual(out.data, tensors[0]!.data);
  assert.deepEqual(ck.tokenizer!.tokens, tokens);
});

test('family detection: ChatGLM2 gets 5 specials, and rope_ratio becomes linear scaling', async (t) => {
  const { dir, cleanup } = await tempDir('gguf-conv-');
  t.after(cleanup);
  const m = await writeTinyHFModel(path.join(dir, 'hf'), { ...SPEC, dtype: 'F16', ropeRatio: 16, tokenizerPy: '# ChatGLM2 tokenizer\n' });
  const cfg = { ...m.config, _name_or_path: 'THUDM/chatglm2-6b-32k' };
  await writeFile(path.join(m.dir, 'config.json'), JSON.stringify(cfg));
  const out = path.join(dir, 'c2.gguf');
  const r = await convertToGguf({ modelDir: m.dir, out, type: 'f16' });
  assert.equal(r.family, 'chatglm2');
  const ck = await openGgufCheckpoint(out);
  t.after(() => ck.source.close());
  const n = m.pieces.length;
  assert.deepEqual(ck.tokenizer!.tokens.slice(n, n + 6), ['[MASK]', '[gMASK]', '[sMASK]', 'sop', 'eop', `[PAD${n + 5}]`]);
  assert.equal(familyOf(ck), 'chatglm2');
  assert.equal(ck.header.metadata.get('chatglm.rope.scaling.type')?.value, 'linear');
  assert.equal(ck.header.metadata.get('chatglm.rope.freq_base')?.value, 10000);
  assert.equal(ck.config['rope_ratio'], 16);
});

test('GLM-4 tiktoken vocabulary: GPT-2 byte alphabet, merges recovered by BPE, specials after the ranks', async (t) => {
  const { dir, cleanup } = await tempDir('gguf-conv-');
  t.after(cleanup);
  const ranks: Buffer[] = [];
  for (let b = 0; b < 256; b++) ranks.push(Buffer.from([b]));
  ranks.push(Buffer.from(' a'), Buffer.from('bc'), Buffer.from(' abc'));
  const m = await writeTinyHFModel(path.join(dir, 'hf'), { ...SPEC, dtype: 'F16', tokenizerPy: '' });
  await writeFile(path.join(m.dir, 'tokenizer.model'), ranks.map((b, i) => `${b.toString('base64')} ${i}`).join('\n') + '\n');
  await writeFile(path.join(m.dir, 'config.json'), JSON.stringify({ ...m.config, _name_or_path: 'THUDM/glm-4-9b-chat', pad_token_id: 259 }));
  const out = path.join(dir, 'g4.gguf');
  const r = await convertToGguf({ modelDir: m.dir, out, type: 'f16' });
  assert.equal(r.family, 'glm4');
  const ck = await openGgufCheckpoint(out);
  t.after(() => ck.source.close());
  const tok = ck.tokenizer!;
  assert.equal(tok.model, 'gpt2');
  assert.equal(tok.pre, 'chatglm-bpe');
  assert.equal(tok.tokens[32], 'Ġ'); // space, in GPT-2's printable byte alphabet
  assert.equal(tok.tokens[10], 'Ċ'); // newline
  assert.equal(tok.tokens[65], 'A');
  assert.deepEqual(tok.tokens.slice(256, 262), ['Ġa', 'bc', 'Ġabc', '<|endoftext|>', '[MASK]', '[gMASK]']);
  assert.deepEqual(tok.merges, ['Ġ a', 'b c', 'Ġa bc']);
  assert.equal(tok.eosId, 259);
  assert.equal(tok.eotId, 259 + 7); // <|user|>
  assert.equal(tok.tokens[tok.eotId!], '<|user|>');
  assert.equal(familyOf(ck), 'glm4');
  // The file stores one eos id; opening it as a model adds GLM-4's other end-of-turn tokens.
  assert.equal(ck.config['eos_token_id'], 259);
  const h = await openCheckpoint(out, { families: FAMILIES });
  t.after(() => h.source.close());
  assert.equal(h.family, 'glm4');
  assert.deepEqual(h.config.eosTokenIds, [259, 266, 268]);
});

test('convert errors: bad --type, corrupt tokenizer.model; CLI writes the file and reports one line on error', async (t) => {
  const { dir, cleanup } = await tempDir('gguf-conv-');
  t.after(cleanup);
  const m = await writeTinyHFModel(path.join(dir, 'hf'), { ...SPEC, dtype: 'F16' });
  await assert.rejects(convertToGguf({ modelDir: m.dir, out: path.join(dir, 'x.gguf'), type: 'q5_k' as 'f16' }), /unknown --type/);

  const bin = path.join(repoRoot, 'bin', 'chatglm.js');
  const out = path.join(dir, 'cli.gguf');
  const ok = await run(process.execPath, [bin, 'convert', '--model', m.dir, '--out', out, '--type', 'q8_0']);
  assert.match(ok.stderr, /convert: 100%/);
  assert.match(ok.stderr, /convert: wrote .*cli\.gguf \(chatglm3, q8_0, 17 tensors, vocab 288/);
  assert.ok((await stat(out)).size > 0);

  const bad = await run(process.execPath, [bin, 'convert', '--model', path.join(dir, 'nope'), '--out', out]).then(
    () => assert.fail('expected a failure'),
    (e: { code: number; stderr: string }) => e,
  );
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /^chatglm: model directory not found: .*nope/);
  assert.equal(bad.stderr.trim().split('\n').length, 1);

  await writeFile(path.join(m.dir, 'tokenizer.model'), 'not a protobuf at all');
  await assert.rejects(convertToGguf({ modelDir: m.dir, out: path.join(dir, 'y.gguf'), type: 'f16' }), (e: unknown) => e instanceof ChatGLMError && /tokenizer\.model/.test(e.message));
});

test('GGUF tensor types: q5_0/q4_1/q5_1 and the K-quants come back in their own blocks; i-quants are refused by name', async (t) => {
  const { dir, cleanup } = await tempDir('gguf-conv-');
  t.after(cleanup);
  const H = 256;
  const emb = new Float32Array(H * 4).map((_, i) => Math.sin(i * 0.37) * 0.1);
  const base: [string, ReturnType<typeof gv.str>][] = [
    ['general.architecture', gv.str('chatglm')],
    ['chatglm.embedding_length', gv.u32(H)],
    ['chatglm.feed_forward_length', gv.u32(32)],
    ['chatglm.block_count', gv.u32(0)],
    ['chatglm.attention.head_count', gv.u32(2)],
  ];
  const cases = [
    ['q5_0', 'Q5_0', quantizeRows('q5_0', emb, 4, H)],
    ['q4_1', 'Q4_1', quantizeRows('q4_1', emb, 4, H)],
    ['q5_1', 'Q5_1', quantizeRows('q5_1', emb, 4, H)],
    ['q2_K', 'Q2_K', quantizeRowsK('q2_K', emb, 4, H)],
    ['q3_K', 'Q3_K', quantizeRowsK('q3_K', emb, 4, H)],
    ['q4_K', 'Q4_K', quantizeRowsK('q4_K', emb, 4, H)],
    ['q5_K', 'Q5_K', quantizeRowsK('q5_K', emb, 4, H)],
    ['q6_K', 'Q6_K', quantizeRowsK('q6_K', emb, 4, H)],
  ] as const;
  for (const [type, ggml, bytes] of cases) {
    const file = path.join(dir, `${type}.gguf`);
    const w = await GgufWriter.create(file, { metadata: base, tensors: [{ name: 'token_embd.weight', ne: [H, 4], type: ggmlTypeId(ggml) }] });
    await w.writeTensor('token_embd.weight', bytes);
    await w.finish();
    const ck = await openGgufCheckpoint(file);
    const got = await ck.source.read('transformer.embedding.word_embeddings.weight');
    assert.equal(got.info.dtype, ggml);
    assert.deepEqual(got.info.shape, [4, H]);
    assert.deepEqual(got.data, bytes, type);
    await ck.source.close();
  }
  const file = path.join(dir, 'iq2.gguf');
  const w = await GgufWriter.create(file, { metadata: base, tensors: [{ name: 'token_embd.weight', ne: [256, 1], type: ggmlTypeId('IQ2_XXS') }] });
  await w.writeTensor('token_embd.weight', new Uint8Array(66));
  await w.finish();
  await assert.rejects(openGgufCheckpoint(file), /token_embd\.weight is IQ2_XXS, which this engine cannot use; convert the model with `chatglm convert/);
});

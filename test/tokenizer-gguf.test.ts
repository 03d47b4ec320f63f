/**
 * The tokenizer built from a .gguf file's own vocabulary must behave exactly like the tokenizer
 * file the GGUF was converted from: tiny HF directories are written with the test fixtures'
 * tokenizer.model / rank file, converted with our converter, and the GGUF-built tokenizer is
 * compared with the one loaded from the original file (encode, decode, specials, prompt ids).
 * GLM-4 is also checked against golden ids from the real tiktoken library; the llama.cpp layout
 * (<bos>/<eos> names, no add_space_prefix key) is checked on a hand-built metadata object.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { convertToGguf } from '../src/convert/gguf-convert.js';
import { GgufWriter, gv } from '../src/convert/gguf-writer.js';
import { loadGgufTokenizer, loadChatModel } from '../src/api.js';
import { tokenizerFromGguf, type GgufVocabulary } from '../src/tokenizer/from-gguf.js';
import { loadTokenizerFile } from '../src/tokenizer/load.js';
import { ChatGLMTokenizer } from '../src/tokenizer/chatglm.js';
import { CHATGLM3_SPECIAL_TOKENS } from '../src/families/chatglm3.js';
import { TikTokenTokenizer } from '../src/tokenizer/tiktoken.js';
import { GLM4_SPECIAL_TOKENS } from '../src/families/glm4.js';
import { PieceType } from '../src/tokenizer/sentencepiece-model.js';
import type { Tokenizer } from '../src/tokenizer/types.js';
import { getChatFormat, FAMILIES, getFamily } from '../src/families/registry.js';
import { encodePieces } from '../src/chat/prompt-pieces.js';
import type { ChatMessage } from '../src/chat/types.js';
import { ChatGLMError } from '../src/errors.js';
import { repoRoot, tempDir } from './support/formats-tmp.js';
import { writeTinyHFModel } from './support/gguf-fixtures.js';
import { smallModelBytes, smallPieces } from './support/tokenizer-fixtures.js';
import { TIKTOKEN_GOLDEN_RANKS_BASE64, TIKTOKEN_GOLDEN_VECTORS } from './support/tokenizer-golden-tiktoken.js';

const SPEC = { hidden: 32, heads: 2, groups: 1, ffn: 48, layers: 1, paddedVocab: 288, dtype: 'F32', seed: 5 } as const;
const SP_SIZE = smallPieces().length; // the tokenizer fixture's SentencePiece vocabulary

const TEXTS = [
  '',
  ' ',
  'a',
  'abcd',
  'ab bc cd',
  'abc abc  abc   abc',
  '  leading and trailing  ',
  'aaaa bbbb\n\ncccc\tdddd',
  '\n',
  '\n    print(x)',
  '你好',
  '你好你好 你 好',
  'emoji 👋 and 🚀!',
  'Ünïcödé çhars ß ﬁ',
  '<|user|> [gMASK] sop <s> </s> <unk>',
  '<|u|>a<|u|>',
  '\u0000\u0001 control \u007f',
  'z'.repeat(40),
  'mixed: abc你好123 \r\n end',
];

/** Deterministic random strings over an alphabet that hits merges, byte fallback and spaces. */
function randomTexts(n: number, seed: number): string[] {
  const alphabet = ['a', 'b', 'c', 'd', ' ', '  ', '\n', '你', '好', 'x', 'é', '👋', '<|u|>', '\t'];
  let s = seed;
  const next = (): number => {
    s = (s * 1103515245 + 12345) >>> 0;
    return s >>> 8;
  };
  return Array.from({ length: n }, () => Array.from({ length: 1 + (next() % 12) }, () => alphabet[next() % alphabet.length]).join(''));
}

const MESSAGES: ChatMessage[] = [
  { role: 'system', content: 'You are a helpful assistant.' },
  { role: 'user', content: '你好 abc' },
  { role: 'assistant', content: 'cd ab\n  ok' },
  { role: 'user', content: '<|assistant|> sop\n你好' },
];

function assertSameTokenizer(got: Tokenizer, want: Tokenizer, specials: readonly string[], texts: string[], label: string): void {
  assert.equal(got.kind, want.kind, `${label}: kind`);
  assert.equal(got.vocabSize, want.vocabSize, `${label}: vocabSize`);
  for (const text of texts) assert.deepEqual(got.encode(text), want.encode(text), `${label}: encode ${JSON.stringify(text)}`);
  for (const name of specials) assert.equal(got.specialId(name), want.specialId(name), `${label}: specialId ${name}`);
  for (let id = 0; id < want.vocabSize; id++) {
    assert.equal(got.isSpecial(id), want.isSpecial(id), `${label}: isSpecial ${id}`);
    assert.equal(got.decode([id]), want.decode([id]), `${label}: decode [${id}]`);
  }
  // Whole sequences (pieces across ids, byte fallback joined) and a sequence with specials mixed in.
  for (const text of texts) {
    const ids = want.encode(text);
    assert.equal(got.decode(ids), want.decode(ids), `${label}: decode of ${JSON.stringify(text)}`);
  }
  const mixed = [...want.encode('ab 你好'), want.vocabSize - 1, ...want.encode('👋'), want.specialId(specials[1]!)!];
  assert.equal(got.decode(mixed), want.decode(mixed), `${label}: decode with specials`);
  assert.throws(() => got.decode([want.vocabSize]), ChatGLMError);
}

async function writeChatGLM3Gguf(dir: string, removeExtra: boolean): Promise<{ gguf: string; tokFile: string }> {
  const m = await writeTinyHFModel(path.join(dir, 'hf'), { ...SPEC });
  // The tokenizer area's fixture (tied merges, a user-defined piece) instead of gguf-fixtures' one.
  const tokFile = path.join(m.dir, 'tokenizer.model');
  await writeFile(tokFile, smallModelBytes([], { removeExtra }));
  const gguf = path.join(dir, 'm.gguf');
  const r = await convertToGguf({ modelDir: m.dir, out: gguf, type: 'f32' });
  assert.equal(r.family, 'chatglm3');
  return { gguf, tokFile };
}

test('ChatGLM3 GGUF from our converter: tokenizer equals the tokenizer.model one', async (t) => {
  const { dir, cleanup } = await tempDir('tok-gguf-');
  t.after(cleanup);
  const texts = [...TEXTS, ...randomTexts(300, 1)];
  for (const removeExtra of [false, true]) {
    const { gguf, tokFile } = await writeChatGLM3Gguf(path.join(dir, String(removeExtra)), removeExtra);
    const { tokenizer, family } = await loadGgufTokenizer(gguf);
    const want = (await loadTokenizerFile(tokFile, getFamily('chatglm3'))).tokenizer;
    assert.equal(family, 'chatglm3');
    assert.ok(tokenizer instanceof ChatGLMTokenizer);
    // Hand-checked anchors: the specials follow the SentencePiece pieces, padded rows are not ids.
    assert.equal(tokenizer.specialId('[gMASK]'), SP_SIZE + 1);
    assert.equal(tokenizer.specialId('<|user|>'), SP_SIZE + 6);
    assert.equal(tokenizer.specialId('<s>'), 1);
    assert.equal(tokenizer.vocabSize, SP_SIZE + 9);
    assertSameTokenizer(tokenizer, want, [...CHATGLM3_SPECIAL_TOKENS, '<unk>', '<s>', '</s>', '<|u|>'], texts, `removeExtra=${removeExtra}`);
    const format = getChatFormat('chatglm3');
    const pieces = format.render(MESSAGES).pieces;
    assert.deepEqual(encodePieces(pieces, tokenizer), encodePieces(pieces, want));
    assert.deepEqual(format.stopIds(tokenizer), format.stopIds(want));
  }
});

test('ChatGLM3 vocabulary in llama.cpp layout (<bos>/<eos> names, no space-prefix key) and a family override', async (t) => {
  const { dir, cleanup } = await tempDir('tok-gguf-');
  t.after(cleanup);
  const tokFile = path.join(dir, 'tokenizer.model');
  await writeFile(tokFile, smallModelBytes());
  const pieces = smallPieces();
  // As convert_hf_to_gguf.py set_vocab_chatglm3 writes it.
  const tokens = pieces.map((p, i) => (i === 1 ? '<bos>' : i === 2 ? '<eos>' : p.piece));
  const scores = pieces.map((p) => p.score);
  const types: number[] = pieces.map((p) => p.type);
  for (const s of CHATGLM3_SPECIAL_TOKENS) {
    tokens.push(s);
    scores.push(0);
    types.push(PieceType.CONTROL);
  }
  while (tokens.length < 288) {
    tokens.push(`[PAD${tokens.length}]`);
    scores.push(0);
    types.push(PieceType.UNUSED);
  }
  const vocab: GgufVocabulary = { model: 'llama', pre: 'chatglm-spm', tokens, scores, tokenTypes: types };
  const { tokenizer, family } = tokenizerFromGguf(vocab, { file: 'llama.gguf', families: FAMILIES });
  assert.equal(family.name, 'chatglm3');
  const want = (await loadTokenizerFile(tokFile, getFamily('chatglm3'))).tokenizer;
  assertSameTokenizer(tokenizer, want, [...CHATGLM3_SPECIAL_TOKENS, '<unk>', '<s>', '</s>', '<bos>', '<|u|>'], [...TEXTS, ...randomTexts(100, 2)], 'llama.cpp layout');

  // --format chatglm2 on a ChatGLM3 vocabulary: ChatGLM2's five specials only, as with tokenizer.model.
  const two = tokenizerFromGguf(vocab, { file: 'llama.gguf', families: FAMILIES, family: 'chatglm2' });
  assert.equal(two.family.name, 'chatglm2');
  const want2 = (await loadTokenizerFile(tokFile, getFamily('chatglm2'))).tokenizer;
  assertSameTokenizer(two.tokenizer, want2, [...CHATGLM3_SPECIAL_TOKENS, '<s>'], TEXTS, 'chatglm2 override');
  assert.throws(() => tokenizerFromGguf(vocab, { file: 'llama.gguf', families: FAMILIES, family: 'glm4' }), /GLM-4/);
});

test('GLM-4 GGUF ("gpt2" byte alphabet): tokenizer equals the rank file one and the real tiktoken golden ids', async (t) => {
  const { dir, cleanup } = await tempDir('tok-gguf-');
  t.after(cleanup);
  const rankText = Buffer.from(TIKTOKEN_GOLDEN_RANKS_BASE64, 'base64').toString('utf8');
  const nRanks = rankText.trim().split('\n').length;
  const padded = 1536;
  assert.ok(nRanks + GLM4_SPECIAL_TOKENS.length <= padded);
  const m = await writeTinyHFModel(path.join(dir, 'hf'), { ...SPEC, paddedVocab: padded, tokenizerPy: '' });
  const tokFile = path.join(m.dir, 'tokenizer.model');
  await writeFile(tokFile, rankText);
  await writeFile(path.join(m.dir, 'config.json'), JSON.stringify({ ...m.config, _name_or_path: 'THUDM/glm-4-9b-chat', pad_token_id: nRanks }));
  const gguf = path.join(dir, 'g4.gguf');
  const r = await convertToGguf({ modelDir: m.dir, out: gguf, type: 'f32' });
  assert.equal(r.family, 'glm4');

  const { tokenizer, family } = await loadGgufTokenizer(gguf);
  assert.equal(family, 'glm4');
  assert.ok(tokenizer instanceof TikTokenTokenizer);
  assert.equal(tokenizer.specialId('<|endoftext|>'), nRanks);
  assert.equal(tokenizer.specialId('[gMASK]'), nRanks + 2);
  assert.equal(tokenizer.vocabSize, nRanks + GLM4_SPECIAL_TOKENS.length);
  for (const v of TIKTOKEN_GOLDEN_VECTORS) assert.deepEqual(tokenizer.encode(v.text), v.ids, `golden ${JSON.stringify(v.text)}`);

  const want = (await loadTokenizerFile(tokFile, getFamily('glm4'))).tokenizer;
  assertSameTokenizer(tokenizer, want, GLM4_SPECIAL_TOKENS, [...TEXTS, ...randomTexts(200, 3)], 'glm4');
  const format = getChatFormat('glm4');
  const pieces = format.render(MESSAGES).pieces;
  assert.deepEqual(encodePieces(pieces, tokenizer), encodePieces(pieces, want));
  assert.deepEqual(format.stopIds(tokenizer), format.stopIds(want));
});

test('no or unsupported vocabulary: ChatGLMError that says to pass --tokenizer FILE', async (t) => {
  const { dir, cleanup } = await tempDir('tok-gguf-');
  t.after(cleanup);
  const expectTokenizerHint = (fn: () => unknown): void => {
    assert.throws(fn, (e: unknown) => e instanceof ChatGLMError && /x\.gguf: .*pass --tokenizer FILE/.test(e.message));
  };
  expectTokenizerHint(() => tokenizerFromGguf(undefined, { file: 'x.gguf', families: FAMILIES }));
  expectTokenizerHint(() => tokenizerFromGguf({ model: 'bert', tokens: ['a'] }, { file: 'x.gguf', families: FAMILIES }));
  expectTokenizerHint(() => tokenizerFromGguf({ model: 'llama', tokens: ['<unk>', 'a'], scores: [0, 0], tokenTypes: [2, 1] }, { file: 'x.gguf', families: FAMILIES }));
  expectTokenizerHint(() => tokenizerFromGguf({ model: 'llama', tokens: ['<unk>'] }, { file: 'x.gguf', families: FAMILIES }));
  expectTokenizerHint(() => tokenizerFromGguf({ model: 'gpt2', pre: 'llama-bpe', tokens: ['a'], tokenTypes: [1] }, { file: 'x.gguf', families: FAMILIES }));
  expectTokenizerHint(() => tokenizerFromGguf({ model: 'gpt2', tokens: ['a', 'b c'], tokenTypes: [1, 1] }, { file: 'x.gguf', families: FAMILIES }));

  // A real file without tokenizer.ggml.*: loadChatModel fails before reading weights.
  const file = path.join(dir, 'novocab.gguf');
  const w = await GgufWriter.create(file, { metadata: [['general.architecture', gv.str('chatglm')]], tensors: [] });
  await w.finish();
  await assert.rejects(loadChatModel(file, { backend: 'reference' }), (e: unknown) => e instanceof ChatGLMError && /novocab\.gguf: the file carries no vocabulary.*pass --tokenizer FILE/.test(e.message));
});

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(repoRoot, 'bin', 'chatglm.js'), ...args], { encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : 1, stdout, stderr });
    });
  });
}

test('CLI: chat, prompt and tokenize on a .gguf without --tokenizer', async (t) => {
  const { dir, cleanup } = await tempDir('tok-gguf-');
  t.after(cleanup);
  const { gguf, tokFile } = await writeChatGLM3Gguf(dir, false);
  const want = (await loadTokenizerFile(tokFile, getFamily('chatglm3'))).tokenizer;
  const messagesFile = path.join(dir, 'm.json');
  await writeFile(messagesFile, JSON.stringify(MESSAGES));

  const chat = await cli(['chat', '--model', gguf, '--messages', messagesFile, '--json', '--greedy', '--max-new-tokens', '4', '--backend', 'reference']);
  assert.equal(chat.code, 0, chat.stderr);
  const reply = JSON.parse(chat.stdout) as { role: string; content: string };
  assert.equal(reply.role, 'assistant');
  assert.equal(typeof reply.content, 'string');

  const prompt = await cli(['prompt', '--model', gguf, '--messages', messagesFile, '--json']);
  assert.equal(prompt.code, 0, prompt.stderr);
  const format = getChatFormat('chatglm3');
  assert.deepEqual((JSON.parse(prompt.stdout) as { ids: number[] }).ids, encodePieces(format.render(MESSAGES).pieces, want));

  const tok = await cli(['tokenize', '--model', gguf, 'abc 你好 👋']);
  assert.equal(tok.code, 0, tok.stderr);
  assert.deepEqual(JSON.parse(tok.stdout) as number[], want.encode('abc 你好 👋'));
});

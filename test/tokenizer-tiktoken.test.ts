import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ChatGLMError } from '../src/errors.js';
import { TikTokenTokenizer, loadTikToken, parseTikTokenRanks } from '../src/tokenizer/index.js';
import { GLM4_SPECIAL_TOKENS } from '../src/families/glm4.js';
import { smallRankFile } from './support/tokenizer-fixtures.js';
import { TIKTOKEN_GOLDEN_RANKS_BASE64, TIKTOKEN_GOLDEN_VECTORS } from './support/tokenizer-golden-tiktoken.js';

const tok = new TikTokenTokenizer(parseTikTokenRanks(smallRankFile(), 'small.tiktoken'), { file: 'small.tiktoken', specials: GLM4_SPECIAL_TOKENS });
const bytes = (s: string) => Array.from(Buffer.from(s, 'utf8'));

test('rank file loads; specials follow the last rank in GLM-4 order', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'tt-'));
  const file = path.join(dir, 'tokenizer.model');
  writeFileSync(file, smallRankFile());
  const t = await loadTikToken(file, { specials: GLM4_SPECIAL_TOKENS });
  assert.equal(t.specialStart, 269);
  assert.equal(t.vocabSize, 269 + 14);
  assert.equal(t.specialId('<|endoftext|>'), 269);
  assert.equal(t.specialId('[gMASK]'), 271);
  assert.equal(t.specialId('<sop>'), 273);
  assert.equal(t.specialId('<|user|>'), 276); // 151336 in glm-4-9b-chat
  assert.equal(t.specialId('<|end_of_video|>'), 282);
  assert.equal(GLM4_SPECIAL_TOKENS.length, 14);
  assert.ok(t.isSpecial(275) && !t.isSpecial(268));
});

test('pre-tokenizer splits like the GLM-4 (cl100k-style) regex', () => {
  assert.deepEqual(tok.splitPieces("Hello world's 123456 \n\n  x!!"), [
    'Hello',
    ' world',
    "'s",
    ' ',
    '123',
    '456',
    ' \n\n',
    ' ',
    ' x',
    '!!',
  ]);
  assert.deepEqual(tok.splitPieces("I'M you'Re"), ['I', "'M", ' you', "'Re"]);
  // Unicode White_Space, not JS \s: U+FEFF is not whitespace, U+0085 is.
  assert.deepEqual(tok.splitPieces('\uFEFF!'), ['\uFEFF!']);
  assert.deepEqual(tok.splitPieces('a\u0085\u0085b'), ['a', '\u0085', '\u0085b']);
  assert.deepEqual(tok.splitPieces('你好，世界'), ['你好', '，世界']);
});

test('byte-level BPE merges the lowest rank first, leftmost on ties (hand-checked)', () => {
  // " hello": he(256) -> ll(257) -> llo(258) -> hello(259); " hello" itself has no rank.
  assert.deepEqual(tok.encode(' hello'), [32, 259]);
  assert.deepEqual(tok.encode('hello'), [259]);
  // "abc": bc(260) ranks below ab(261).
  assert.deepEqual(tok.encode('abc'), [97, 260]);
  // "aaa": the two "aa" pairs tie; the leftmost merges.
  assert.deepEqual(tok.encode('aaa'), [262, 97]);
  assert.deepEqual(tok.encode('hello world'), [259, 267]);
  assert.deepEqual(tok.encode('你好'), [268]);
  assert.deepEqual(tok.encode('再'), bytes('再'));
  // Special names in text are ordinary text.
  assert.ok(tok.encode('<|user|>').every((id) => id < 256));
});

test('decode and the stream decoder reassemble UTF-8', () => {
  const text = 'hello world 😀 你好再见';
  const ids = tok.encode(text);
  assert.equal(tok.decode(ids), text);
  const d = tok.createStreamDecoder();
  let all = '';
  for (const id of ids) {
    const part = d.push(id);
    assert.ok(!part.includes('\uFFFD'));
    all += part;
  }
  assert.equal(all + d.flush(), text);
  const e = tok.createStreamDecoder();
  const [a, b, c, dd] = bytes('😀');
  assert.equal(e.push(a!) + e.push(b!) + e.push(c!), '');
  assert.equal(e.push(dd!), '😀');
  assert.equal(tok.decode([tok.specialId('<|user|>')!, 259]), '<|user|>hello');
  assert.throws(() => tok.decode([tok.vocabSize]), ChatGLMError);
});

test('bad rank files give clear errors', () => {
  assert.throws(() => parseTikTokenRanks('aGVsbG8= 1\nnot a line\n', 'bad.model'), /bad\.model: line 2 is not "base64 rank"/);
  assert.throws(() => parseTikTokenRanks('\n', 'empty.model'), /empty/);
  const noBytes = new TikTokenTokenizer(parseTikTokenRanks('aGk= 0\n', 'hi.model'), { file: 'hi.model' });
  assert.deepEqual(noBytes.encode('hi'), [0]);
  assert.throws(() => noBytes.encode('ho'), /hi\.model: byte 0x68 has no rank/);
});

test('golden: same ids as the real tiktoken (Rust via WASM) with cl100k ranks < 1500', () => {
  const ranks = Buffer.from(TIKTOKEN_GOLDEN_RANKS_BASE64, 'base64').toString('utf8');
  const t = new TikTokenTokenizer(parseTikTokenRanks(ranks, 'cl100k-1500'), { file: 'cl100k-1500' });
  assert.ok(TIKTOKEN_GOLDEN_VECTORS.length > 200);
  for (const v of TIKTOKEN_GOLDEN_VECTORS) {
    assert.deepEqual(t.encode(v.text), v.ids, JSON.stringify(v.text));
    assert.equal(t.decode(v.ids), v.text);
  }
});

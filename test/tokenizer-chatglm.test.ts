import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ChatGLMError } from '../src/errors.js';
import { ChatGLMTokenizer, SentencePieceTokenizer, TikTokenTokenizer, loadTokenizerForModel } from '../src/tokenizer/index.js';
import { pid, smallModelBytes, smallRankFile } from './support/tokenizer-fixtures.js';
import { FAMILIES, getFamily } from '../src/families/registry.js';

const S = '\u2581';
const sp = SentencePieceTokenizer.fromBytes(smallModelBytes(), 'small.model');
const n = sp.vocabSize;
const glm3 = new ChatGLMTokenizer(sp, getFamily('chatglm3'));
const glm2 = new ChatGLMTokenizer(sp, getFamily('chatglm2'));

test('ChatGLM specials are appended after the SentencePiece vocabulary in HF order', () => {
  assert.equal(glm3.vocabSize, n + 9);
  assert.equal(glm2.vocabSize, n + 5);
  const names3 = ['[MASK]', '[gMASK]', '[sMASK]', 'sop', 'eop', '<|system|>', '<|user|>', '<|assistant|>', '<|observation|>'];
  names3.forEach((name, i) => assert.equal(glm3.specialId(name), n + i, name));
  assert.equal(glm2.specialId('eop'), n + 4);
  assert.equal(glm2.specialId('<|user|>'), undefined);
  assert.equal(glm3.specialId('<s>'), 1);
  assert.equal(glm3.specialId('</s>'), 2);
  assert.ok(glm3.isSpecial(n + 6) && glm3.isSpecial(2));
  assert.ok(!glm3.isSpecial(pid('a')) && !glm3.isSpecial(n + 9));
});

test('encode never produces special ids from user text', () => {
  for (const text of ['<|user|>', '[gMASK]sop', '<|assistant|> hi <|observation|>', 'eop']) {
    const ids = glm3.encode(text);
    assert.ok(ids.every((id) => id < n), text);
    assert.equal(glm3.decode(ids), text);
  }
});

test('decode: ChatGLM3 shows special names (HF), ChatGLM2 drops them; <unk>/<s>/</s> vanish', () => {
  const [gmask, sop, user, assistant] = ['[gMASK]', 'sop', '<|user|>', '<|assistant|>'].map((x) => glm3.specialId(x)!);
  const body = [pid(`${S}a`)];
  // The special name is a visible piece, so the following ▁ keeps its space.
  assert.equal(glm3.decode([gmask!, sop!, user!, ...body, assistant!]), '[gMASK]sop<|user|> a<|assistant|>');
  // ChatGLM2: nothing visible precedes ▁a, so its dummy-prefix space is dropped.
  assert.equal(glm2.decode([n + 1, n + 3, ...body]), 'a');
  assert.equal(glm3.decode([0, 1, pid(`${S}a`), 2]), 'a');
  const d = glm3.createStreamDecoder();
  assert.equal(d.push(user!), '<|user|>');
  assert.equal(d.push(pid(`${S}a`)), ' a');
  assert.throws(() => glm3.decode([n + 9]), (e: unknown) => e instanceof ChatGLMError && /out of range/.test(e.message));
  assert.throws(() => glm2.decode([n + 5]), ChatGLMError);
});

function modelDir(files: Record<string, string | Uint8Array>): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'glmdir-'));
  for (const [name, content] of Object.entries(files)) writeFileSync(path.join(dir, name), content);
  return dir;
}

test('family detection from the model directory', async () => {
  const model = smallModelBytes();
  const cases: [Record<string, string | Uint8Array>, string][] = [
    [{ 'tokenizer.model': model }, 'chatglm2'],
    [{ 'tokenizer.model': model, 'tokenization_chatglm.py': 'role_special_tokens = ["<|system|>", "<|user|>"]' }, 'chatglm3'],
    [{ 'tokenizer.model': model, 'tokenization_chatglm.py': 'class ChatGLMTokenizer: pass' }, 'chatglm2'],
    [{ 'tokenizer.model': model, 'tokenizer_config.json': '{"name_or_path": "THUDM/ChatGLM3-6b"}' }, 'chatglm3'],
    [{ 'tokenizer.model': model, 'config.json': '{"_name_or_path": "THUDM/chatglm3-6b-32k"}' }, 'chatglm3'],
    [{ 'tokenizer.model': model, 'config.json': '{"_name_or_path": "THUDM/chatglm2-6b"}' }, 'chatglm2'],
    [{ 'tokenizer.model': smallRankFile() }, 'glm4'],
  ];
  for (const [files, family] of cases) {
    const r = await loadTokenizerForModel(modelDir(files), FAMILIES);
    assert.equal(r.family.name, family, JSON.stringify(Object.keys(files)));
    if (family === 'glm4') assert.ok(r.tokenizer instanceof TikTokenTokenizer);
    else {
      assert.ok(r.tokenizer instanceof ChatGLMTokenizer);
      assert.equal(r.tokenizer.family, family);
    }
  }
});

test('missing tokenizer.model says how to fix it; --tokenizer overrides', async () => {
  const empty = modelDir({ 'config.json': '{}' });
  await assert.rejects(loadTokenizerForModel(empty, FAMILIES), (e: unknown) => {
    assert.ok(e instanceof ChatGLMError);
    assert.equal(e.message, `tokenizer.model not found in ${empty}: pass --tokenizer FILE`);
    return true;
  });
  const other = modelDir({ 'tok.model': smallModelBytes() });
  const r = await loadTokenizerForModel(empty, FAMILIES, path.join(other, 'tok.model'));
  assert.equal(r.family.name, 'chatglm2');
  assert.deepEqual(r.tokenizer.encode('abc'), sp.encode('abc'));
});

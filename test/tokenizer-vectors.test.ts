/**
 * Parity with the official SentencePiece library on ../shared/tokenizer (328 strings and
 * ChatGLM3-style chat prompts). Skipped when ../shared is absent.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ChatGLMTokenizer, loadSentencePieceModel } from '../src/tokenizer/index.js';
import { getFamily } from '../src/families/registry.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const shared = path.resolve(repoRoot, '../shared');
const modelFile = path.join(shared, 'tokenizer/glm-like-bpe.model');
const vectorsFile = path.join(shared, 'tokenizer/glm-like-bpe.vectors.json');
const skip = !existsSync(modelFile) || !existsSync(vectorsFile);
const skipMsg = `needs ${shared}/tokenizer (the shared reference files); not present`;

interface Vectors {
  model_pieces: number;
  vectors: { text: string; ids: number[]; pieces: string[]; decoded: string }[];
  chat: { messages: { role: string; content: string; metadata?: string }[]; ids: number[] }[];
}

function load(): { v: Vectors } | undefined {
  if (skip) return undefined;
  return { v: JSON.parse(readFileSync(vectorsFile, 'utf8')) as Vectors };
}

test('glm-like-bpe: ids, pieces and decoded text equal the library for every vector', async (t) => {
  const data = load();
  if (!data) return t.skip(skipMsg);
  const sp = await loadSentencePieceModel(modelFile);
  assert.equal(sp.vocabSize, data.v.model_pieces);
  assert.ok(data.v.vectors.length >= 300);
  for (const v of data.v.vectors) {
    const label = JSON.stringify(v.text).slice(0, 80);
    assert.deepEqual(sp.encode(v.text), v.ids, label);
    assert.deepEqual(sp.encodeAsPieces(v.text), v.pieces, label);
    assert.equal(sp.decode(v.ids), v.decoded, label);
    const d = sp.createStreamDecoder();
    let streamed = '';
    for (const id of v.ids) streamed += d.push(id);
    assert.equal(streamed + d.flush(), v.decoded, label);
  }
});

test('glm-like-bpe: every chat vector with ChatGLM3 specials after the vocabulary', async (t) => {
  const data = load();
  if (!data) return t.skip(skipMsg);
  const tok = new ChatGLMTokenizer(await loadSentencePieceModel(modelFile), getFamily('chatglm3'));
  const id = (name: string) => {
    const i = tok.specialId(name);
    assert.ok(i !== undefined, name);
    return i;
  };
  assert.equal(id('[gMASK]'), data.v.model_pieces + 1);
  for (const c of data.v.chat) {
    const ids = [id('[gMASK]'), id('sop')];
    for (const m of c.messages) {
      ids.push(id(`<|${m.role}|>`), ...tok.encode(`${m.metadata ?? ''}\n`), ...tok.encode(m.content));
    }
    ids.push(id('<|assistant|>'));
    assert.deepEqual(ids, c.ids, JSON.stringify(c.messages).slice(0, 80));
  }
});

test('CLI tokenize/detokenize --jsonl agree with the library on every vector', (t) => {
  const data = load();
  if (!data) return t.skip(skipMsg);
  const bin = path.join(repoRoot, 'bin/chatglm.js');
  const input = data.v.vectors.map((v) => JSON.stringify(v.text)).join('\n') + '\n';
  const out = execFileSync(process.execPath, [bin, 'tokenize', '--tokenizer', modelFile, '--jsonl'], { input, encoding: 'utf8' });
  const lines = out.trimEnd().split('\n');
  assert.equal(lines.length, data.v.vectors.length);
  lines.forEach((l, i) => assert.deepEqual(JSON.parse(l), data.v.vectors[i]!.ids));
  const idsIn = data.v.vectors.map((v) => JSON.stringify(v.ids)).join('\n') + '\n';
  const dec = execFileSync(process.execPath, [bin, 'detokenize', '--tokenizer', modelFile, '--jsonl'], { input: idsIn, encoding: 'utf8' });
  const decLines = dec.trimEnd().split('\n');
  assert.equal(decLines.length, data.v.vectors.length);
  decLines.forEach((l, i) => assert.equal(JSON.parse(l), data.v.vectors[i]!.decoded));
  const one = execFileSync(process.execPath, [bin, 'tokenize', '--tokenizer', modelFile, data.v.vectors[0]!.text], { encoding: 'utf8' });
  assert.deepEqual(JSON.parse(one), data.v.vectors[0]!.ids);
});

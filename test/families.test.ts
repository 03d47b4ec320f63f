// The family registry: every family's write-back of a past tool call, checked against the text the
// original ChatGLM3 / GLM-4 models emit for a call (Python repr keyword arguments; raw JSON).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FAMILIES, FAMILY_NAMES, getFamily } from '../src/families/registry.js';
import { familyFromFiles, familyFromGguf, type ModelDirFiles } from '../src/tokenizer/family-facts.js';
import { ChatGLMError } from '../src/errors.js';

test('the registry names each family once and rejects unknown ones', () => {
  assert.deepEqual([...FAMILY_NAMES], ['chatglm2', 'chatglm3', 'glm4']);
  for (const f of FAMILIES) assert.equal(f.format.name, f.name);
  assert.throws(() => getFamily('glm5'), ChatGLMError);
});

test('the RoPE scaling each family gives the model layer: only ChatGLM2-32k interpolates positions', () => {
  assert.deepEqual(FAMILIES.map((f) => [f.name, f.ropeScaling]), [
    ['chatglm2', 'position'],
    ['chatglm3', 'base'],
    ['glm4', 'base'],
  ]);
});

test('each family recognises its own model directory; config.json first, newest family first', () => {
  const dir = (over: Partial<ModelDirFiles>): string => familyFromFiles(FAMILIES, { config: {}, tiktoken: false, ...over }).name;
  assert.equal(dir({}), 'chatglm2');
  assert.equal(dir({ tokenizationPy: 'role_special_tokens = ["<|system|>", "<|user|>"]' }), 'chatglm3');
  assert.equal(dir({ config: { _name_or_path: 'THUDM/chatglm3-6b' } }), 'chatglm3');
  // GLM-4's tokenizer_config.json lists <|user|> too: GLM-4 is asked before ChatGLM3.
  assert.equal(dir({ tokenizerConfig: '{"added_tokens_decoder": {"151329": "<|endoftext|>", "151336": "<|user|>"}}' }), 'glm4');
  assert.equal(dir({ tiktoken: true }), 'glm4');
  assert.equal(dir({ config: { padded_vocab_size: 151552 } }), 'glm4');
  // A telling name in config.json wins over the tokenizer files.
  assert.equal(dir({ config: { _name_or_path: 'THUDM/chatglm2-6b' }, tokenizationPy: '"<|user|>"' }), 'chatglm2');
});

test('each family recognises its GGUF vocabulary', () => {
  const gguf = (vocab: Parameters<typeof familyFromGguf>[1], rows = 100): string => familyFromGguf(FAMILIES, vocab, rows).name;
  assert.equal(gguf({ model: 'gpt2', tokens: ['a'] }), 'glm4');
  assert.equal(gguf({ model: 'llama', pre: 'chatglm-bpe', tokens: ['a'] }), 'glm4');
  assert.equal(gguf(undefined, 151552), 'glm4');
  assert.equal(gguf({ model: 'llama', tokens: ['<unk>', '[MASK]', '<|user|>'] }), 'chatglm3');
  assert.equal(gguf({ model: 'llama', tokens: ['<unk>', '[MASK]'] }), 'chatglm2');
  assert.equal(gguf(undefined), 'chatglm3');
});

test('a past tool call is written back the way each family writes it', () => {
  const args = { city: '北京', n: 2, ok: true };
  const json = '{"city": "北京", "n": 2, "ok": true}';
  assert.deepEqual(getFamily('chatglm3').toolCallMessage('weather', args, json), {
    role: 'assistant',
    metadata: 'weather',
    content: "```python\ntool_call(city='北京', n=2, ok=True)\n```",
  });
  assert.deepEqual(getFamily('glm4').toolCallMessage('weather', args, json), { role: 'assistant', metadata: 'weather', content: json });
  const code = { code: 'print(1)' };
  for (const f of FAMILIES) {
    assert.deepEqual(f.toolCallMessage('interpreter', code, '{"code": "print(1)"}'), { role: 'assistant', metadata: 'interpreter', content: '```python\nprint(1)\n```' });
  }
});

test('tool lists go before (GLM-4) or into (ChatGLM3) the caller system message', () => {
  const tools = [{ name: 'f', description: 'd', parameters: {} }];
  const g = getFamily('glm4').toolSystemMessages(tools, 'Be brief.');
  assert.equal(g.length, 2);
  assert.deepEqual(g[1], { role: 'system', content: 'Be brief.' });
  const c = getFamily('chatglm3').toolSystemMessages(tools, 'Be brief.');
  assert.equal(c.length, 1);
  assert.ok(c[0]!.content.startsWith('Be brief.\nAnswer the following questions as best as you can.'));
});

test('the protocol facts each family carries', () => {
  // ChatGLM2 has no tool protocol; ChatGLM3 writes calls as Python, GLM-4 as JSON (their chat templates).
  assert.deepEqual(FAMILIES.map((f) => [f.name, f.toolCalls, f.vocabulary]), [
    ['chatglm2', 'none', 'sentencepiece'],
    ['chatglm3', 'python', 'sentencepiece'],
    ['glm4', 'json', 'tiktoken'],
  ]);
  // tokenization_chatglm.py's special tokens, appended after the SentencePiece pieces.
  assert.deepEqual(getFamily('chatglm2').sentencePieceSpecials, ['[MASK]', '[gMASK]', '[sMASK]', 'sop', 'eop']);
  assert.deepEqual(getFamily('chatglm3').sentencePieceSpecials?.slice(5), ['<|system|>', '<|user|>', '<|assistant|>', '<|observation|>']);
  assert.ok(getFamily('chatglm3').interpreterSystemPrompt?.includes('/mnt/data/'));
  assert.equal(getFamily('glm4').interpreterSystemPrompt, undefined);
});

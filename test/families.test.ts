// The family registry: every family's write-back of a past tool call, checked against the text the
// original ChatGLM3 / GLM-4 models emit for a call (Python repr keyword arguments; raw JSON).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FAMILIES, FAMILY_NAMES, getFamily } from '../src/families/registry.js';
import { defaultRopeScaling } from '../src/model/config.js';
import { ChatGLMError } from '../src/errors.js';

test('the registry names each family once and rejects unknown ones', () => {
  assert.deepEqual([...FAMILY_NAMES], ['chatglm2', 'chatglm3', 'glm4']);
  for (const f of FAMILIES) assert.equal(f.format.name, f.name);
  assert.throws(() => getFamily('glm5'), ChatGLMError);
});

test('the RoPE default the model layer is given matches the family', () => {
  for (const f of FAMILIES) assert.equal(defaultRopeScaling(f.name), f.ropeScaling);
  assert.equal(getFamily('chatglm2').ropeScaling, 'position');
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

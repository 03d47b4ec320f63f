/**
 * Multi-turn conversations: the second turn prefills only its new tokens (counted by hand), the
 * answer with a reused cache equals the answer from a fresh cache, and the streamed text is what
 * the parser returns, per format.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChatSession } from '../src/chat/session.js';
import { chatglm2 } from '../src/chat/chatglm2.js';
import { chatglm3 } from '../src/chat/chatglm3.js';
import { glm4 } from '../src/chat/glm4.js';
import type { ChatMessage } from '../src/chat/types.js';
import { ByteTokenizer, GLM4_SPECIALS } from './support/chat-byte-tokenizer.js';
import { ScriptedModel } from './support/chat-scripted-model.js';
import { tinyModel } from './support/chat-tiny-model.js';

const tok = new ByteTokenizer();
const b = (s: string): number[] => tok.encode(s);
const U = tok.specialId('<|user|>')!;
const A = tok.specialId('<|assistant|>')!;

async function collect(it: AsyncGenerator<string, unknown, void>): Promise<{ streamed: string; reply: unknown }> {
  let streamed = '';
  for (;;) {
    const r = await it.next();
    if (r.done) return { streamed, reply: r.value };
    streamed += r.value;
  }
}

test('chatglm3: turn two prefills exactly <|user|> "\\n" question <|assistant|>', async () => {
  const model = new ScriptedModel([...b('\n'), ...b('Hello there'), U], tok.vocabSize);
  const session = new ChatSession({ model, tokenizer: tok, format: chatglm3, contextLength: 1000 });
  const history: ChatMessage[] = [
    { role: 'system', content: 'You are terse.' },
    { role: 'user', content: 'Hi' },
  ];
  const one = await session.reply(history, { greedy: true });
  assert.deepEqual(one.parsed, { type: 'text', content: 'Hello there', segments: [{ metadata: '', content: 'Hello there' }] });
  const prompt1 = one.promptIds.length;
  assert.equal(one.result.usage.prefill_tokens, prompt1);

  for (const seg of one.parsed.segments) history.push({ role: 'assistant', metadata: seg.metadata, content: seg.content });
  history.push({ role: 'user', content: 'And now?' });
  model.setScript([...b('\nOK'), U]);
  const fedBefore = model.fed.length;
  const two = await session.reply(history, { greedy: true });
  const expectedNew = [U, ...b('\n'), ...b('And now?'), A];
  assert.deepEqual(model.fed[fedBefore], expectedNew);
  assert.equal(two.result.usage.prefill_tokens, 1 + 1 + 8 + 1);
  assert.equal(two.result.usage.prompt_tokens, prompt1 + b('\nHello there').length + expectedNew.length);
  assert.equal(two.parsed.type === 'text' && two.parsed.content, 'OK');
});

test('a reused cache gives the same greedy answer as a fresh one (tiny random model)', async () => {
  const model = await tinyModel({}, 5);
  const engine = { model, tokenizer: tok, format: chatglm3, contextLength: 256 };
  const session = new ChatSession(engine);
  const history: ChatMessage[] = [{ role: 'user', content: 'abc' }];
  const one = await session.reply(history, { greedy: true, maxNewTokens: 10 });
  for (const seg of one.parsed.segments) history.push({ role: 'assistant', metadata: seg.metadata.trim(), content: seg.content });
  history.push({ role: 'user', content: 'xyz' });
  const two = await session.reply(history, { greedy: true, maxNewTokens: 10 });
  const fresh = await new ChatSession(engine).reply(history, { greedy: true, maxNewTokens: 10 });
  assert.deepEqual(two.result.ids, fresh.result.ids);
  assert.ok(two.result.usage.prefill_tokens < two.promptIds.length, `prefilled ${two.result.usage.prefill_tokens} of ${two.promptIds.length}`);
  assert.equal(fresh.result.usage.prefill_tokens, fresh.promptIds.length);
});

test('streamed text equals the parsed content; call segments are not streamed', async () => {
  const model = new ScriptedModel([...b('\n  Hi [[训练时间]] x  \n'), U], tok.vocabSize);
  const s = new ChatSession({ model, tokenizer: tok, format: chatglm3, contextLength: 1000 });
  const { streamed, reply } = await collect(s.stream([{ role: 'user', content: 'q' }], { greedy: true }));
  assert.equal(streamed, 'Hi 2023年 x');
  assert.equal((reply as { parsed: { content: string } }).parsed.content, 'Hi 2023年 x');

  model.setScript([...b("f\n```python\ntool_call(a=1)\n```"), tok.specialId('<|observation|>')!]);
  const call = await collect(new ChatSession({ model, tokenizer: tok, format: chatglm3, contextLength: 1000 }).stream([{ role: 'user', content: 'q' }], { greedy: true, tools: true }));
  assert.equal(call.streamed, '');
  assert.deepEqual((call.reply as { parsed: { arguments: unknown } }).parsed.arguments, { a: 1 });
});

test('chatglm2 streams plain text and stops on eos 2; glm4 parses a JSON tool call', async () => {
  const model = new ScriptedModel([...b(' 你好！'), 2], tok.vocabSize);
  const s = new ChatSession({ model, tokenizer: tok, format: chatglm2, contextLength: 1000 });
  const r = await collect(s.stream([{ role: 'user', content: 'hi' }], { greedy: true }));
  assert.equal(r.streamed, '你好！');
  assert.equal((r.reply as { result: { stopId: number } }).result.stopId, 2);

  const t4 = new ByteTokenizer(GLM4_SPECIALS);
  const m4 = new ScriptedModel([...t4.encode('get_weather\n{"city": "Paris"}'), t4.specialId('<|observation|>')!], t4.vocabSize);
  const s4 = new ChatSession({ model: m4, tokenizer: t4, format: glm4, contextLength: 1000 });
  const r4 = await s4.reply([{ role: 'user', content: 'weather?' }], { greedy: true, tools: true });
  assert.deepEqual(r4.parsed.type === 'tool_call' && r4.parsed.arguments, { city: 'Paris' });
});

test('a conversation longer than the context drops its oldest turns, keeping the system message', async () => {
  const model = new ScriptedModel([...b('\nok'), U], tok.vocabSize);
  const history: ChatMessage[] = [{ role: 'system', content: 'SYS' }];
  for (let i = 0; i < 10; i++) history.push({ role: 'user', content: `question number ${i}` }, { role: 'assistant', content: `answer ${i}` });
  history.push({ role: 'user', content: 'last' });
  const s = new ChatSession({ model, tokenizer: tok, format: chatglm3, contextLength: 120 });
  const r = await s.reply(history, { greedy: true, maxNewTokens: 10 });
  assert.ok(r.dropped > 0);
  assert.ok(r.promptIds.length + 10 <= 120);
  // The prompt still starts with [gMASK] sop <|system|> "\n" SYS and ends with the last question.
  assert.deepEqual(r.promptIds.slice(0, 7), [tok.specialId('[gMASK]'), tok.specialId('sop'), tok.specialId('<|system|>'), ...b('\n'), ...b('SYS')]);
  assert.deepEqual(r.promptIds.slice(-7), [U, ...b('\n'), ...b('last'), A]);
  await assert.rejects(s.reply(history, { greedy: true, maxNewTokens: 10, truncation: 'error' }), /context length/);
});

test('stop strings: neither the stream nor the parsed reply shows any part of the stop string', async () => {
  const model = new ScriptedModel([...b('\nFirst line. Observation: secret'), U], tok.vocabSize);
  const s = new ChatSession({ model, tokenizer: tok, format: chatglm3, contextLength: 1000 });
  const { streamed, reply } = await collect(s.stream([{ role: 'user', content: 'q' }], { greedy: true, stop: ['Observation:'] }));
  assert.equal(streamed, 'First line.');
  const r = reply as { parsed: { type: string; content: string }; result: { stopString?: string; finishReason: string } };
  assert.equal(r.parsed.content, 'First line.');
  assert.equal(r.result.stopString, 'Observation:');
  assert.equal(r.result.finishReason, 'stop');
});

/**
 * Streaming text: deltas never split a UTF-8 character, stop strings cut the text and hold back
 * what might start one, and the streamed deltas always add up to the final text.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generate, generateAll } from '../src/generate/generator.js';
import { TextStream } from '../src/generate/text-stream.js';
import { StopStringMatcher } from '../src/generate/stop-strings.js';
import { ByteTokenizer } from './support/chat-byte-tokenizer.js';
import { ScriptedModel } from './support/chat-scripted-model.js';

const tok = new ByteTokenizer();

test('text deltas are whole characters even when a character spans several ids (byte fallback)', () => {
  const text = 'a你好👋é!';
  const s = new TextStream(tok);
  const deltas = tok.encode(text).map((id) => s.push(id));
  deltas.push(s.flush());
  assert.equal(deltas.join(''), text);
  for (const d of deltas) assert.ok(!d.includes('\uFFFD'), JSON.stringify(deltas));
  // The 4-byte emoji arrives whole, in the delta of its last byte; bytes before it give ''.
  const emojiIds = tok.encode('👋').length;
  assert.equal(emojiIds, 4);
  const nonEmpty = deltas.filter((d) => d !== '');
  assert.deepEqual(nonEmpty, ['a', '你', '好', '👋', 'é', '!']);
});

test('stop strings: text before the match is released, a partial match is held back then released', () => {
  const m = new StopStringMatcher(['Observation:', '\n\n']);
  assert.deepEqual(m.push('Hello Obs'), { text: 'Hello ' });
  assert.deepEqual(m.push('erv'), { text: '' });
  assert.deepEqual(m.push('ing'), { text: 'Observing' });
  assert.deepEqual(m.push(' end\n'), { text: ' end' });
  assert.deepEqual(m.push('\nmore'), { text: '', stop: '\n\n' });
  const n = new StopStringMatcher(['STOP']);
  assert.deepEqual(n.push('abST'), { text: 'ab' });
  assert.equal(n.flush(), 'ST');
});

test('generation with a stop string: the string and what follows are not in the text or the stream', async () => {
  const script = [...tok.encode('Answer: 42. User: next'), 2];
  const model = new ScriptedModel(script, tok.vocabSize);
  const it = generate(model, tok.encode('Q'), { greedy: true, tokenizer: tok, stopStrings: ['User:'], maxNewTokens: 100 });
  let streamed = '';
  let result;
  for (;;) {
    const r = await it.next();
    if (r.done) {
      result = r.value;
      break;
    }
    streamed += r.value.text;
  }
  assert.equal(result.text, 'Answer: 42. ');
  assert.equal(streamed, result.text);
  assert.equal(result.finishReason, 'stop');
  assert.equal(result.stopString, 'User:');
});

test('the stop id is not decoded into the text; held-back text is released at the end', async () => {
  const model = new ScriptedModel([...tok.encode('Hi Us'), 2], tok.vocabSize);
  const steps: string[] = [];
  const r = await generateAll(model, tok.encode('Q'), { greedy: true, tokenizer: tok, stopIds: [2], stopStrings: ['User'] }, (s) => steps.push(s.text));
  assert.equal(r.text, 'Hi Us');
  assert.equal(steps.join(''), 'Hi Us');
  assert.equal(r.finishReason, 'stop');
  assert.equal(r.stopId, 2);
  assert.deepEqual(r.ids, tok.encode('Hi Us'));
});

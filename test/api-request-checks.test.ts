/**
 * createChatCompletion checks its request before running: unsupported fields and invalid values
 * are BAD_ARGUMENT errors that name the field; the conversion from request messages to ChatGLM
 * messages keeps a system message next to the tools; a reply that calls a tool nobody declared is
 * text, streamed as it is written.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChatModel, type ChatCompletionRequest } from '../src/api.js';
import { ChatGLMError } from '../src/errors.js';
import { chatglm3 } from '../src/chat/chatglm3.js';
import { glm4 } from '../src/chat/glm4.js';
import { requestToChatMessages } from '../src/api/request-messages.js';
import { ByteTokenizer } from './support/chat-byte-tokenizer.js';
import { ScriptedModel } from './support/chat-scripted-model.js';

function scripted(script: string, stopName = '<|user|>'): { chat: ChatModel; model: ScriptedModel; tok: ByteTokenizer } {
  const tok = new ByteTokenizer();
  const model = new ScriptedModel([...tok.encode(script), tok.specialId(stopName)!], tok.vocabSize);
  return { chat: new ChatModel({ model, tokenizer: tok, format: chatglm3, contextLength: 4096, name: 'scripted' }), model, tok };
}

const user = [{ role: 'user' as const, content: 'hi' }];

test('unsupported and invalid request fields are errors that name the field; nothing runs', async () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ n: 2 }, /^createChatCompletion: n is not supported/],
    [{ logprobs: true }, /^createChatCompletion: logprobs is not supported/],
    [{ top_logprobs: 3 }, /^createChatCompletion: top_logprobs is not supported/],
    [{ frequency_penalty: 0.5 }, /^createChatCompletion: frequency_penalty is not supported .*repetition_penalty/],
    [{ presence_penalty: -1 }, /^createChatCompletion: presence_penalty is not supported/],
    [{ presence_penalty: 'x' }, /^createChatCompletion: presence_penalty must be a number/],
    [{ max_tokens: -1 }, /^createChatCompletion: max_tokens must be an integer >= 1 .*got -1$/],
    [{ max_tokens: 0 }, /^createChatCompletion: max_tokens must be an integer >= 1/],
    [{ max_tokens: 2.5 }, /^createChatCompletion: max_tokens must be an integer >= 1 .*got 2.5$/],
    [{ max_tokens: Number.NaN }, /^createChatCompletion: max_tokens is NaN/],
    [{ seed: Number.NaN }, /^createChatCompletion: seed is NaN/],
    [{ seed: 1.5 }, /^createChatCompletion: seed must be an integer/],
    [{ stop: [null] }, /^createChatCompletion: stop\[0\] must be a string, got null/],
    [{ stop: ['ok', 3] }, /^createChatCompletion: stop\[1\] must be a string, got 3/],
    [{ stop: '' }, /^createChatCompletion: stop is an empty string/],
    [{ temperature: -0.1 }, /^createChatCompletion: temperature must be a number >= 0/],
    [{ top_p: 0 }, /^createChatCompletion: top_p must be a number in \(0, 1\]/],
    [{ top_k: 1.5 }, /^createChatCompletion: top_k must be an integer >= 0/],
    [{ repetition_penalty: 0 }, /^createChatCompletion: repetition_penalty must be a number > 0/],
    [{ stream: 'yes' }, /^createChatCompletion: stream must be true or false/],
    [{ messages: [{ role: 'user' }] }, /^createChatCompletion: messages\[0\]\.content is missing/],
    [{ messages: [{ role: 'user', content: null }] }, /^createChatCompletion: messages\[0\]\.content is missing/],
    [{ messages: [{ role: 'user', content: 5 }] }, /^createChatCompletion: messages\[0\]\.content must be a string/],
    [{ messages: [{ content: 'x' }] }, /^createChatCompletion: messages\[0\]\.role is missing/],
    [{ messages: [] }, /^createChatCompletion: messages must be a non-empty array/],
  ];
  for (const [extra, message] of cases) {
    const { chat, model } = scripted('ok');
    const request = { messages: user, ...extra } as unknown as ChatCompletionRequest;
    await assert.rejects(
      chat.createChatCompletion(request),
      (e: unknown) => e instanceof ChatGLMError && e.code === 'BAD_ARGUMENT' && message.test(e.message),
      JSON.stringify(extra),
    );
    assert.equal(model.fed.length, 0, `${JSON.stringify(extra)}: the model ran`);
  }
});

test('the neutral values of unsupported fields, and an assistant tool call without content, are accepted', async () => {
  const { chat } = scripted('fine');
  const r = await chat.createChatCompletion({
    messages: user,
    temperature: 0,
    ...({ n: 1, logprobs: false, frequency_penalty: 0, presence_penalty: 0, stop: ['zz'] } as object),
  });
  assert.equal(r.choices[0].message.content, 'fine');
  // null is "the default" for OpenAI's optional fields.
  const { chat: cn } = scripted('fine');
  const rn = await cn.createChatCompletion({
    messages: user,
    ...({ temperature: null, top_p: null, max_tokens: null, seed: null, stop: null, n: null, stream: null, frequency_penalty: null } as object),
  });
  assert.equal(rn.choices[0].message.content, 'fine');
  const { chat: c2 } = scripted('done');
  const call = { id: 'call_1', type: 'function' as const, function: { name: 'f', arguments: '{"a": 1}' } };
  const r2 = await c2.createChatCompletion({
    messages: [...user, { role: 'assistant', content: null, tool_calls: [call] }, { role: 'tool', content: '1', tool_call_id: 'call_1' }],
    tools: [{ type: 'function', function: { name: 'f' } }],
    temperature: 0,
  });
  assert.equal(r2.choices[0].message.content, 'done');
});

test('a system message is kept next to the tools (ChatGLM3: one system message; GLM-4: the tool block first)', () => {
  const tools = [{ name: 'f', description: 'd' }];
  const messages = [
    { role: 'system' as const, content: 'Be brief.' },
    { role: 'user' as const, content: 'q' },
  ];
  const c3 = requestToChatMessages(messages, tools, chatglm3);
  assert.deepEqual(c3, [
    { role: 'system', content: 'Be brief.\nAnswer the following questions as best as you can. You have access to the following tools:', tools },
    { role: 'user', content: 'q' },
  ]);
  const g4 = requestToChatMessages(messages, tools, glm4);
  assert.deepEqual(g4, [
    { role: 'system', content: '', tools },
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: 'q' },
  ]);
  // Without a system message: the tool system message alone, as before.
  assert.deepEqual(requestToChatMessages([messages[1]!], tools, chatglm3)[0], chatglm3.toolSystemMessage(tools));
});

test('a tool call when no tools were declared is plain text, streamed as written, finish_reason stop', async () => {
  const script = "get_weather\n```python\ntool_call(city='Paris')\n```";
  const { chat } = scripted(script, '<|observation|>');
  const r = await chat.createChatCompletion({ messages: user, temperature: 0 });
  assert.equal(r.choices[0].finish_reason, 'stop');
  assert.equal(r.choices[0].message.tool_calls, undefined);
  assert.equal(r.choices[0].message.content, script);

  const { chat: s } = scripted(script, '<|observation|>');
  let streamed = '';
  let sawToolCalls = false;
  for await (const c of await s.createChatCompletion({ messages: user, temperature: 0, stream: true })) {
    streamed += c.choices[0].delta.content ?? '';
    if (c.choices[0].delta.tool_calls !== undefined) sawToolCalls = true;
  }
  assert.equal(streamed, script);
  assert.equal(sawToolCalls, false);

  // With tools declared, the same reply is a tool call.
  const { chat: t } = scripted(script, '<|observation|>');
  const withTools = await t.createChatCompletion({ messages: user, temperature: 0, tools: [{ type: 'function', function: { name: 'get_weather' } }] });
  assert.equal(withTools.choices[0].finish_reason, 'tool_calls');
  assert.equal(withTools.choices[0].message.tool_calls![0]!.function.name, 'get_weather');
});

test('without tools, reply text streams before its first newline (only a possible "interpreter" header waits)', async () => {
  const tok = new ByteTokenizer();
  // A reply without the usual leading newline: "Hello there" then a newline much later.
  const model = new ScriptedModel([...tok.encode('Hello there, friend.\nSecond line.'), tok.specialId('<|user|>')!], tok.vocabSize);
  const chat = new ChatModel({ model, tokenizer: tok, format: chatglm3, contextLength: 4096, name: 'scripted' });
  const session = chat.createSession();
  const deltas: string[] = [];
  const it = session.stream([{ role: 'user', content: 'hi' }], { greedy: true, maxNewTokens: 64 });
  // Collect deltas together with how many ids the model had produced by then.
  for (;;) {
    const r = await it.next();
    if (r.done) {
      assert.equal(r.value.parsed.type, 'text');
      assert.equal(r.value.parsed.type === 'text' ? r.value.parsed.content : '', 'Hello there, friend.\nSecond line.');
      break;
    }
    deltas.push(r.value);
  }
  // The first visible text arrived before the newline was generated.
  const beforeNewline = deltas.findIndex((d) => d.includes('\n'));
  assert.ok(beforeNewline > 0, JSON.stringify(deltas));
  assert.ok(deltas.slice(0, beforeNewline).join('').startsWith('Hello'), JSON.stringify(deltas));
  assert.equal(deltas.join(''), 'Hello there, friend.\nSecond line.');
});

test('an interpreter reply without tools is still code to run', async () => {
  const { chat } = scripted('interpreter\n```python\nprint(1)\n```', '<|observation|>');
  const r = await chat.createChatCompletion({ messages: user, temperature: 0 });
  assert.equal(r.choices[0].message.tool_calls![0]!.function.name, 'interpreter');
});

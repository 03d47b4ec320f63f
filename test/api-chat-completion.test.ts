/**
 * The library API end to end on a tiny random ChatGLM3 directory written by the test (reference
 * backend), checked against an oracle built from the pieces directly: the prompt ids written out
 * per the ChatGLM3 layout, greedy decoding by a full forward pass per step, and the original
 * process_response rules. Tool calls and multi-turn cache reuse run on a scripted stand-in model
 * whose output the test chooses.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { loadChatModel, ChatModel, type ChatCompletionChunk } from '../src/api.js';
import { openModel } from '../src/model/open.js';
import { loadTokenizerFile } from '../src/tokenizer/load.js';
import { argmax } from '../src/generate/sampler.js';
import { chatglm3 } from '../src/chat/chatglm3.js';
import { ChatGLMError } from '../src/errors.js';
import type { Tokenizer } from '../src/tokenizer/types.js';
import { writeChatModelDir, SPECIAL } from './support/chat-model-dir.js';
import { ByteTokenizer } from './support/chat-byte-tokenizer.js';
import { ScriptedModel } from './support/chat-scripted-model.js';
import { FAMILIES, getFamily } from '../src/families/registry.js';

let dir = '';
let cleanup: () => Promise<void> = async () => {};
before(async () => {
  ({ dir, cleanup } = await writeChatModelDir(1));
});
after(async () => cleanup());

async function oracle(question: string, maxTokens: number): Promise<{ promptIds: number[]; ids: number[]; content: string; metadata: string; tok: Tokenizer }> {
  const { tokenizer: tok } = await loadTokenizerFile(path.join(dir, 'tokenizer.model'), getFamily('chatglm3'));
  const { model } = await openModel(dir, { families: FAMILIES, backend: 'reference' });
  // ChatGLM3 layout, written out: [gMASK] sop <|user|> encode("\n") encode(q) <|assistant|>.
  const promptIds = [SPECIAL.gMASK, SPECIAL.sop, SPECIAL.user, ...tok.encode('\n'), ...tok.encode(question), SPECIAL.assistant];
  const stops = new Set([2, SPECIAL.user, SPECIAL.observation]);
  const seq = [...promptIds];
  const ids: number[] = [];
  for (let i = 0; i < maxTokens; i++) {
    const id = argmax(model.forward([{ cache: model.newCache(seq.length), ids: seq }])[0]!);
    if (stops.has(id)) break;
    ids.push(id);
    seq.push(id);
  }
  // process_response: last <|assistant|> segment; first line metadata; text is stripped.
  const segs = tok.decode(ids).split('<|assistant|>');
  const last = segs[segs.length - 1]!;
  const nl = last.indexOf('\n');
  const metadata = nl < 0 ? '' : last.slice(0, nl);
  const content = nl < 0 ? last : last.slice(nl + 1);
  return { promptIds, ids, content: metadata.trim() === '' ? content.trim() : content, metadata: metadata.trim(), tok };
}

test('loadChatModel + createChatCompletion (greedy) match the oracle; usage counts the prompt as laid out by hand', async () => {
  const progress: number[] = [];
  const chat = await loadChatModel(dir, { backend: 'reference', onProgress: (p) => progress.push(p.loaded) });
  assert.equal(chat.family, 'chatglm3');
  assert.ok(progress.length > 0 && progress[progress.length - 1] === Math.max(...progress));
  const q = 'abc 你好';
  const want = await oracle(q, 24);
  const r = await chat.createChatCompletion({ messages: [{ role: 'user', content: q }], temperature: 0, max_tokens: 24 });
  assert.equal(r.object, 'chat.completion');
  assert.equal(r.usage.prompt_tokens, want.promptIds.length);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
  const m = r.choices[0].message;
  assert.equal(m.role, 'assistant');
  if (want.metadata === '') {
    assert.equal(m.content, want.content);
    assert.equal(r.choices[0].finish_reason, want.ids.length === 24 ? 'length' : 'stop');
  } else {
    assert.equal(m.tool_calls?.[0]?.function.name, want.metadata);
  }
  // Same prompt ids through the renderer.
  assert.deepEqual(chat.renderPrompt([{ role: 'user', content: q }]).ids, want.promptIds);
  // The low-level generate over ids gives the oracle's ids.
  const g = await chat.generate(want.promptIds, { greedy: true, maxNewTokens: 24, stopIds: chat.stopIds() });
  assert.deepEqual(g.ids, want.ids);
  chat.dispose();
});

test('stream: true yields OpenAI-shaped chunks whose content adds up to the non-streamed answer', async () => {
  const chat = await loadChatModel(dir, { backend: 'reference' });
  const req = { messages: [{ role: 'user' as const, content: 'hello' }], temperature: 0, max_tokens: 16 };
  const whole = await chat.createChatCompletion(req);
  const chunks: ChatCompletionChunk[] = [];
  for await (const c of await chat.createChatCompletion({ ...req, stream: true })) chunks.push(c);
  assert.deepEqual(chunks[0]!.choices[0].delta, { role: 'assistant', content: '' });
  assert.ok(chunks.every((c) => c.object === 'chat.completion.chunk' && c.id === chunks[0]!.id));
  const last = chunks[chunks.length - 1]!;
  assert.equal(last.choices[0].finish_reason, whole.choices[0].finish_reason);
  assert.deepEqual(last.usage?.completion_tokens, whole.usage.completion_tokens);
  if (whole.choices[0].message.tool_calls === undefined) {
    assert.equal(chunks.map((c) => c.choices[0].delta.content ?? '').join(''), whole.choices[0].message.content);
  }
});

test('sampling with a seed is reproducible through the API', async () => {
  const chat = await loadChatModel(dir, { backend: 'reference' });
  const req = { messages: [{ role: 'user' as const, content: 'hi' }], temperature: 1.2, top_p: 0.95, max_tokens: 12, seed: 1234 };
  const a = await chat.createChatCompletion(req);
  const b = await chat.createChatCompletion(req);
  assert.equal(a.seed, 1234);
  assert.deepEqual(a.choices[0].message, b.choices[0].message);
});

function scripted(script: string, stop: number): { chat: ChatModel; model: ScriptedModel; tok: ByteTokenizer } {
  const tok = new ByteTokenizer();
  const model = new ScriptedModel([...tok.encode(script), stop], tok.vocabSize);
  const chat = new ChatModel({ model, tokenizer: tok, format: chatglm3, contextLength: 4096, name: 'scripted' });
  return { chat, model, tok };
}

test('a tool call comes back as tool_calls; replaying it with the tool result prefills only the new tokens', async () => {
  const tok = new ByteTokenizer();
  const call = "get_weather\n```python\ntool_call(city='北京', days=(1, 2))\n```";
  const { chat, model } = scripted(call, tok.specialId('<|observation|>')!);
  const tools = [{ type: 'function' as const, function: { name: 'get_weather', parameters: { type: 'object' } } }];
  const messages = [{ role: 'user' as const, content: '北京天气' }];
  const r = await chat.createChatCompletion({ messages, tools, temperature: 0 });
  assert.equal(r.choices[0].finish_reason, 'tool_calls');
  const m = r.choices[0].message;
  assert.equal(m.content, null);
  assert.equal(m.tool_calls?.length, 1);
  assert.equal(m.tool_calls![0]!.function.name, 'get_weather');
  assert.deepEqual(JSON.parse(m.tool_calls![0]!.function.arguments), { city: '北京', days: [1, 2] });
  // The first prompt: the ChatGLM3 tool system prompt with the tools as given.
  const b = (s: string): number[] => tok.encode(s);
  const sysText = 'Answer the following questions as best as you can. You have access to the following tools:\n' + JSON.stringify(tools, null, 4);
  const U = tok.specialId('<|user|>')!;
  const A = tok.specialId('<|assistant|>')!;
  const O = tok.specialId('<|observation|>')!;
  const prompt1 = [tok.specialId('[gMASK]')!, tok.specialId('sop')!, tok.specialId('<|system|>')!, ...b('\n'), ...b(sysText), U, ...b('\n'), ...b('北京天气'), A];
  assert.deepEqual(model.fed.flat().slice(0, prompt1.length), prompt1);

  // Turn two: the call goes back verbatim, the tool result follows.
  model.setScript([...tok.encode('\n晴，25度。'), U]);
  const before = model.fed.length;
  const r2 = await chat.createChatCompletion({
    messages: [...messages, m as { role: 'assistant'; content: null; tool_calls: typeof m.tool_calls }, { role: 'tool', content: '{"weather": "晴"}', tool_call_id: m.tool_calls![0]!.id }],
    tools,
    temperature: 0,
  });
  assert.equal(r2.choices[0].message.content, '晴，25度。');
  assert.equal(r2.choices[0].finish_reason, 'stop');
  // Cached: prompt1 + the call's ids (the stop id was never fed). New: <|observation|> "\n" result <|assistant|>.
  const fedNow = model.fed.slice(before);
  const newIds = [O, ...b('\n'), ...b('{"weather": "晴"}'), A];
  assert.deepEqual(fedNow[0], newIds);
  assert.equal(r2.usage.prefill_tokens, newIds.length);
  assert.equal(r2.usage.prompt_tokens, prompt1.length + b(call).length + newIds.length);
});

test('interpreter replies become a tool call named interpreter with the code', async () => {
  const tok = new ByteTokenizer();
  const model = new ScriptedModel(
    [...tok.encode('\n好的。'), tok.specialId('<|assistant|>')!, ...tok.encode('interpreter\n```python\nprint(1)\n```'), tok.specialId('<|observation|>')!],
    tok.vocabSize,
  );
  const c = new ChatModel({ model, tokenizer: tok, format: chatglm3, contextLength: 4096, name: 's' });
  const r = await c.createChatCompletion({ messages: [{ role: 'user', content: 'run code' }], temperature: 0 });
  const m = r.choices[0].message;
  assert.equal(m.content, '好的。');
  assert.equal(m.tool_calls![0]!.function.name, 'interpreter');
  assert.deepEqual(JSON.parse(m.tool_calls![0]!.function.arguments), { code: 'print(1)' });
});

test('a malformed tool call is reported, not thrown', async () => {
  const tok = new ByteTokenizer();
  const { chat } = scripted("get_weather\n```python\ntool_call(city='北京)\n```", tok.specialId('<|observation|>')!);
  const r = await chat.createChatCompletion({ messages: [{ role: 'user', content: 'q' }], tools: [{ type: 'function', function: { name: 'get_weather' } }], temperature: 0 });
  const m = r.choices[0].message;
  assert.equal(m.tool_calls, undefined);
  assert.equal(m.invalid_tool_call?.name, 'get_weather');
  assert.match(m.invalid_tool_call!.error, /unterminated string/);
  assert.equal(r.choices[0].finish_reason, 'stop');
});

test('abort: an aborted request rejects with ABORTED; bad requests are ChatGLMErrors', async () => {
  const { chat } = scripted('\n' + 'x'.repeat(500), 2);
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(chat.createChatCompletion({ messages: [{ role: 'user', content: 'q' }], signal: ac.signal }), (e: unknown) => e instanceof ChatGLMError && e.code === 'ABORTED');
  // Aborting mid-stream ends the stream with ABORTED after some chunks.
  const ac2 = new AbortController();
  let n = 0;
  await assert.rejects(
    (async () => {
      for await (const c of await chat.createChatCompletion({ messages: [{ role: 'user', content: 'q' }], signal: ac2.signal, stream: true, max_tokens: 400 })) {
        void c;
        if (++n === 5) setImmediate(() => ac2.abort());
      }
    })(),
    (e: unknown) => e instanceof ChatGLMError && e.code === 'ABORTED',
  );
  assert.ok(n >= 5 && n < 50, `chunks before abort: ${n}`);
  await assert.rejects(chat.createChatCompletion({ messages: [] }), ChatGLMError);
  await assert.rejects(chat.createChatCompletion({ messages: [{ role: 'user', content: 'q' }, { role: 'assistant', content: 'a' }] }), ChatGLMError);
  await assert.rejects(chat.createChatCompletion({ messages: [{ role: 'wizard' as 'user', content: 'q' }] }), ChatGLMError);
});

test('a missing model directory is a clear FILE_NOT_FOUND-type error', async () => {
  await assert.rejects(loadChatModel(path.join(dir, 'nope')), (e: unknown) => e instanceof ChatGLMError && /nope/.test(e.message));
});

test('concurrent requests each get a correct answer (the second uses its own cache)', async () => {
  const chat = await loadChatModel(dir, { backend: 'reference' });
  const a = { messages: [{ role: 'user' as const, content: 'abc' }], temperature: 0, max_tokens: 10 };
  const b = { messages: [{ role: 'user' as const, content: '你好 world' }], temperature: 0, max_tokens: 10 };
  const sa = await chat.createChatCompletion(a);
  const sb = await chat.createChatCompletion(b);
  const [ca, cb] = await Promise.all([chat.createChatCompletion(a), chat.createChatCompletion(b)]);
  assert.deepEqual(ca.choices[0].message, sa.choices[0].message);
  assert.deepEqual(cb.choices[0].message, sb.choices[0].message);
  // A stream that is created but never read does not block the shared cache.
  await chat.createChatCompletion({ ...a, stream: true });
  const again = await chat.createChatCompletion(a);
  assert.ok(again.usage.prefill_tokens < again.usage.prompt_tokens, 'the shared cache was reused');
});

test('a malformed tool call in the messages is a ChatGLMError naming the message, not a TypeError', async () => {
  const tok = new ByteTokenizer();
  const { chat } = scripted('ok', tok.specialId('<|user|>')!);
  const bad = async (toolCalls: unknown): Promise<void> => {
    const messages = [
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: '', tool_calls: toolCalls },
      { role: 'tool', content: '1' },
    ] as unknown as Parameters<ChatModel['createChatCompletion']>[0]['messages'];
    await assert.rejects(chat.createChatCompletion({ messages }), (e: unknown) => e instanceof ChatGLMError && e.code === 'BAD_ARGUMENT' && e.message.startsWith('messages[1]: '));
  };
  await bad([{ id: 'call_1', type: 'function' }]);
  await bad([{ id: 'call_1', type: 'function', function: { name: 'f', arguments: { a: 1 } } }]);
  await bad([null]);
  await bad({ id: 'call_1' });
});

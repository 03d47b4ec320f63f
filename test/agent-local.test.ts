/**
 * The agent loop and tool_choice over the in-process model path (ChatModel + chat formats), with a
 * scripted stand-in model whose output the test chooses per round and a byte tokenizer whose ids
 * are computed by hand. Checks the prompts the model is fed: the tool section of each family
 * (ChatGLM3: instruction line + JSON list, json.dumps indent 4; GLM-4: its own tool section), the
 * observation turn, the forced call header of a named tool_choice, and no tools for "none".
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChatModel, type ChatCompletionTool } from '../src/api.js';
import { chatglm3 } from '../src/chat/chatglm3.js';
import { glm4 } from '../src/chat/glm4.js';
import { localCompleter, type ChatCompleter } from '../src/agent/completer.js';
import { runAgent, type AgentEvent, type RunAgentOptions } from '../src/agent/loop.js';
import { defineTool, type AnyTool } from '../src/agent/tool.js';
import { ChatGLMError } from '../src/errors.js';
import { ByteTokenizer, GLM4_SPECIALS } from './support/chat-byte-tokenizer.js';
import { ScriptedModel } from './support/chat-scripted-model.js';

const INSTRUCTION = 'Answer the following questions as best as you can. You have access to the following tools:';
const WEATHER_FN = {
  name: 'get_current_weather',
  description: 'Get the current weather in a given city',
  parameters: { type: 'object', properties: { location: { type: 'string' } }, required: ['location'] },
};
const OBSERVATION = '{"temperature": 22, "description": "sunny"}';

function setup(family: 'chatglm3' | 'glm4'): { tok: ByteTokenizer; model: ScriptedModel; chat: ChatModel; s: (name: string) => number; b: (t: string) => number[] } {
  const tok = family === 'glm4' ? new ByteTokenizer(GLM4_SPECIALS) : new ByteTokenizer();
  const model = new ScriptedModel([2], tok.vocabSize);
  const chat = new ChatModel({ model, tokenizer: tok, format: family === 'glm4' ? glm4 : chatglm3, contextLength: 8192, name: 'scripted' });
  return { tok, model, chat, s: (name) => tok.specialId(name)!, b: (t) => tok.encode(t) };
}

/** The local completer, with the stand-in model's output for each round set before the round. */
function perRound(chat: ChatModel, model: ScriptedModel, scripts: number[][]): ChatCompleter & { firstFeed: number[] } {
  const inner = localCompleter(chat);
  let round = 0;
  /** Per round, the index in model.fed of its first forward call. */
  const firstFeed: number[] = [];
  return {
    name: inner.name,
    family: inner.family!,
    firstFeed,
    complete(request) {
      firstFeed.push(model.fed.length);
      model.setScript(scripts[round++]!);
      return inner.complete(request);
    },
  };
}

function weather(args: unknown[]): AnyTool {
  return defineTool({ ...WEATHER_FN, run: (a) => (args.push(a), { temperature: 22, description: 'sunny' }) }) as unknown as AnyTool;
}

async function collect(options: RunAgentOptions): Promise<AgentEvent & { type: 'done' }> {
  let last: AgentEvent | undefined;
  for await (const ev of runAgent(options)) last = ev;
  assert.equal(last?.type, 'done');
  return last as AgentEvent & { type: 'done' };
}

test('ChatGLM3: tool list in the system prompt, the call runs, the observation turn is fed, the answer ends it', async () => {
  const { model, chat, s, b } = setup('chatglm3');
  const call = "get_current_weather\n```python\ntool_call(location='Paris')\n```";
  const completer = perRound(chat, model, [
    [...b(call), s('<|observation|>')],
    [...b('\nIt is 22 degrees.'), s('<|user|>')],
  ]);
  const args: unknown[] = [];
  const question = "What's the weather in Paris?";
  const d = await collect({ completer, messages: [{ role: 'user', content: question }], tools: [weather(args)] });
  assert.deepEqual(args, [{ location: 'Paris' }]);
  // json.dumps(tools, indent=4) of the bare function objects, after the instruction line.
  const system = `${INSTRUCTION}\n${JSON.stringify([WEATHER_FN], null, 4)}`;
  const prompt1 = [s('[gMASK]'), s('sop'), s('<|system|>'), ...b('\n'), ...b(system), s('<|user|>'), ...b('\n'), ...b(question), s('<|assistant|>')];
  assert.deepEqual(model.fed.flat().slice(0, prompt1.length), prompt1);
  // Round two reuses the cache (the call is replayed exactly): only the observation turn is new.
  const round2 = model.fed[completer.firstFeed[1]!]!;
  assert.deepEqual(round2, [s('<|observation|>'), ...b('\n'), ...b(OBSERVATION), s('<|assistant|>')]);
  assert.equal(d.stopReason, 'answer');
  assert.deepEqual(JSON.parse((d.messages[0] as { tool_calls: { function: { arguments: string } }[] }).tool_calls[0]!.function.arguments), { location: 'Paris' });
  assert.deepEqual(d.messages[1], { role: 'tool', tool_call_id: (d.messages[0] as { tool_calls: { id: string }[] }).tool_calls[0]!.id, content: OBSERVATION });
  assert.deepEqual(d.messages[2], { role: 'assistant', content: 'It is 22 degrees.' });
});

test('ChatGLM3: a call that does not parse is replayed as written and answered with the parse error', async () => {
  const { model, chat, s, b } = setup('chatglm3');
  const bad = "get_current_weather\n```python\ntool_call(location='Paris)\n```";
  const completer = perRound(chat, model, [
    [...b(bad), s('<|observation|>')],
    [...b('\nSorry.'), s('<|user|>')],
  ]);
  const args: unknown[] = [];
  const d = await collect({ completer, messages: [{ role: 'user', content: 'Paris?' }], tools: [weather(args)] });
  assert.deepEqual(args, []);
  const obs = (d.messages[1] as { content: string }).content;
  assert.match(JSON.parse(obs).error as string, /^get_current_weather: cannot parse the tool call arguments: unterminated string/);
  // The replayed call matched the cached ids: only the observation turn was prefilled.
  const round2 = model.fed[completer.firstFeed[1]!]!;
  assert.deepEqual(round2, [s('<|observation|>'), ...b('\n'), ...b(obs), s('<|assistant|>')]);
  assert.equal((d.messages[2] as { content: string }).content, 'Sorry.');
});

test('GLM-4: its tool section in the system prompt, a JSON call, the observation turn, the answer', async () => {
  const { model, chat, s, b } = setup('glm4');
  const fn = { name: 'get_weather', description: 'Weather of a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } };
  const got: unknown[] = [];
  const tool = defineTool({ ...fn, run: (a) => (got.push(a), { temperature: 22, description: 'sunny' }) }) as unknown as AnyTool;
  const completer = perRound(chat, model, [
    [...b('get_weather\n{"city": "Paris"}'), s('<|observation|>')],
    [...b('\n巴黎晴，22度。'), s('<|user|>')],
  ]);
  const d = await collect({ completer, messages: [{ role: 'user', content: '巴黎天气' }], tools: [tool] });
  assert.deepEqual(got, [{ city: 'Paris' }]);
  // GLM-4's template: self-introduction, "# 可用工具", then per function "## name", its JSON (indent 4) and the instruction.
  const system =
    '你是一个名为 ChatGLM 的人工智能助手。你是基于智谱AI训练的语言模型 GLM-4 模型开发的，你的任务是针对用户的问题和要求提供适当的答复和支持。' +
    `\n\n# 可用工具\n\n## get_weather\n\n${JSON.stringify(fn, null, 4)}\n在调用上述函数时，请使用 Json 格式表示调用的参数。`;
  const prompt1 = [s('[gMASK]'), s('<sop>'), s('<|system|>'), ...b('\n'), ...b(system), s('<|user|>'), ...b('\n'), ...b('巴黎天气'), s('<|assistant|>')];
  assert.deepEqual(model.fed.flat().slice(0, prompt1.length), prompt1);
  const round2 = model.fed[completer.firstFeed[1]!]!;
  assert.deepEqual(round2, [s('<|observation|>'), ...b('\n'), ...b(OBSERVATION), s('<|assistant|>')]);
  assert.equal((d.messages[2] as { content: string }).content, '巴黎晴，22度。');
});

test('runAgent({ model }) uses the in-process model directly', async () => {
  const { model, chat, s, b } = setup('chatglm3');
  model.setScript([...b('\nNo tool needed.'), s('<|user|>')]);
  const texts: string[] = [];
  let last: AgentEvent | undefined;
  for await (const ev of runAgent({ model: chat, messages: [{ role: 'user', content: 'hi' }], tools: [weather([])] })) {
    if (ev.type === 'text') texts.push(ev.delta);
    last = ev;
  }
  assert.equal(texts.join(''), 'No tool needed.');
  assert.equal(last?.type === 'done' && last.stopReason, 'answer');
  // toolChoice "none": the in-process model gets no tool list at all.
  const fresh = setup('chatglm3');
  fresh.model.setScript([...fresh.b('\nok'), fresh.s('<|user|>')]);
  for await (const ev of runAgent({ model: fresh.chat, messages: [{ role: 'user', content: 'hi' }], tools: [weather([])], toolChoice: 'none' })) void ev;
  assert.deepEqual(fresh.model.fed[0], [fresh.s('[gMASK]'), fresh.s('sop'), fresh.s('<|user|>'), ...fresh.b('\n'), ...fresh.b('hi'), fresh.s('<|assistant|>')]);
});

const OPENAI_WEATHER: ChatCompletionTool[] = [{ type: 'function', function: WEATHER_FN }];
const FORCE = { type: 'function' as const, function: { name: 'get_current_weather' } };

test('createChatCompletion tool_choice named, constrain: false (ChatGLM3): the reply starts with the call header and the tool_call( opening', async () => {
  const { model, chat, s, b } = setup('chatglm3');
  const generated = b("location='Paris')\n```");
  model.setScript([...generated, s('<|observation|>')]);
  const r = await chat.createChatCompletion({ messages: [{ role: 'user', content: 'Hello' }], tools: OPENAI_WEATHER, tool_choice: FORCE, constrain: false, temperature: 0 });
  // Everything fed except the generated ids fed back is the prompt.
  const fed = model.fed.flat();
  const prompt = fed.slice(0, fed.length - generated.length);
  assert.deepEqual(fed.slice(prompt.length), generated);
  const tail = [s('<|assistant|>'), ...b('get_current_weather\n'), ...b('```python\ntool_call(')];
  assert.deepEqual(prompt.slice(prompt.length - tail.length), tail);
  assert.equal(r.choices[0].finish_reason, 'tool_calls');
  assert.equal(r.choices[0].message.tool_calls![0]!.function.name, 'get_current_weather');
  assert.deepEqual(JSON.parse(r.choices[0].message.tool_calls![0]!.function.arguments), { location: 'Paris' });
  // The forced header counts as prompt.
  assert.equal(r.usage.prompt_tokens, prompt.length);
});

test('createChatCompletion tool_choice named, constrain: false (GLM-4, streamed): NAME\\n is forced, the JSON arguments follow', async () => {
  const { model, chat, s, b } = setup('glm4');
  model.setScript([...b('{"city": "Paris"}'), s('<|observation|>')]);
  const tools: ChatCompletionTool[] = [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object' } } }];
  const stream = await chat.createChatCompletion({ messages: [{ role: 'user', content: 'Paris' }], tools, tool_choice: { type: 'function', function: { name: 'get_weather' } }, constrain: false, temperature: 0, stream: true });
  const calls = [];
  for await (const c of stream) calls.push(...(c.choices[0].delta.tool_calls ?? []));
  const fed = model.fed.flat();
  const prompt = fed.slice(0, fed.length - b('{"city": "Paris"}').length);
  assert.deepEqual(prompt.slice(prompt.length - 1 - b('get_weather\n').length), [s('<|assistant|>'), ...b('get_weather\n')]);
  assert.equal(calls.length, 1);
  assert.equal(calls[0]!.function.name, 'get_weather');
  assert.deepEqual(JSON.parse(calls[0]!.function.arguments), { city: 'Paris' });
});

test('createChatCompletion tool_choice none leaves the tools out of the prompt; required without tools and unknown names are errors', async () => {
  const { model, chat, s, b, tok } = setup('chatglm3');
  model.setScript([...b('\nhello'), s('<|user|>')]);
  const r = await chat.createChatCompletion({ messages: [{ role: 'user', content: 'hi' }], tools: OPENAI_WEATHER, tool_choice: 'none', temperature: 0 });
  assert.equal(r.choices[0].message.content, 'hello');
  assert.deepEqual(model.fed[0], [s('[gMASK]'), s('sop'), s('<|user|>'), ...b('\n'), ...b('hi'), s('<|assistant|>')]);
  assert.doesNotMatch(tok.decode(model.fed.flat()), /get_current_weather/);
  await assert.rejects(
    chat.createChatCompletion({ messages: [{ role: 'user', content: 'hi' }], tool_choice: 'required' }),
    (e: unknown) => e instanceof ChatGLMError && e.code === 'BAD_ARGUMENT' && /"required" needs tools/.test(e.message),
  );
  await assert.rejects(chat.createChatCompletion({ messages: [{ role: 'user', content: 'hi' }], tools: OPENAI_WEATHER, tool_choice: { type: 'function', function: { name: 'x' } } }), /names the function "x", but the tools are: get_current_weather/);
  await assert.rejects(chat.createChatCompletion({ messages: [{ role: 'user', content: 'hi' }], tool_choice: FORCE }), /no tools are declared/);
  await assert.rejects(chat.createChatCompletion({ messages: [{ role: 'user', content: 'hi' }], tools: OPENAI_WEATHER, tool_choice: 'sometimes' as 'auto' }), /tool_choice must be/);
});

test('aborting while the in-process model writes ends the run as aborted, without a partial answer', async () => {
  const { model, chat, b } = setup('chatglm3');
  model.setScript([...b('\n' + 'word '.repeat(300)), 2]);
  const ac = new AbortController();
  let texts = 0;
  let last: AgentEvent | undefined;
  for await (const ev of runAgent({ model: chat, messages: [{ role: 'user', content: 'talk' }], signal: ac.signal, max_tokens: 1000 })) {
    if (ev.type === 'text' && ++texts === 3) ac.abort();
    last = ev;
  }
  assert.equal(last?.type, 'done');
  assert.equal(last?.type === 'done' && last.stopReason, 'aborted');
  assert.deepEqual(last?.type === 'done' && last.messages, []);
  assert.ok(texts < 100, `text events before the abort took effect: ${texts}`);
});

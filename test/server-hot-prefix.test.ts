/**
 * A prefix shared by conversations (a tools system prompt) is prefilled once per server: a new
 * conversation landing in a slot that does not hold it gets its keys/values copied from an idle
 * slot that does, and prefills only the rest. The real server on 127.0.0.1 with the bundled demo
 * model; the expected cached counts come from the prompts' own token ids, the expected answers
 * from a fresh server that never copied anything.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { loadChatModel, type ChatModel } from '../src/api.js';
import { startServer, type ChatGLMServer } from '../src/server/server.js';

let chat: ChatModel;

const TOOLS = ['get_current_weather', 'search_flights'].map((name) => ({
  type: 'function' as const,
  function: { name, description: `The ${name.replace(/_/g, ' ')} tool.`, parameters: { type: 'object', properties: { query: { type: 'string' } }, required: ['query'] } },
}));

interface Message {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

interface Reply {
  content: string;
  promptTokens: number;
  cached: number;
}

before(async () => {
  chat = await loadChatModel();
});

after(() => {
  chat?.dispose();
});

async function ask(s: ChatGLMServer, messages: Message[], maxTokens = 12): Promise<Reply> {
  const res = await fetch(`${s.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: chat.name, messages, tools: TOOLS, temperature: 0, max_tokens: maxTokens }),
  });
  assert.equal(res.status, 200, await res.clone().text());
  const body = (await res.json()) as {
    choices: { message: { content: string | null; tool_calls?: { function: unknown }[] } }[];
    usage: { prompt_tokens: number; prompt_tokens_details: { cached_tokens: number } };
  };
  const message = body.choices[0]!.message;
  // Tool call ids are random; the answer is the text and the calls' names and arguments.
  const calls = (message.tool_calls ?? []).map((t) => JSON.stringify(t.function)).join('\n');
  return { content: `${message.content ?? ''}${calls}`, promptTokens: body.usage.prompt_tokens, cached: body.usage.prompt_tokens_details.cached_tokens };
}

function promptIds(messages: Message[]): number[] {
  return chat.renderPrompt(chat.chatMessagesOf({ messages, tools: TOOLS })).ids;
}

function commonPrefix(a: readonly number[], b: readonly number[]): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
}

async function metric(s: ChatGLMServer, name: string): Promise<number> {
  const text = await (await fetch(`${s.url}/metrics`)).text();
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  assert.ok(m, `${name} missing from /metrics`);
  return Number(m[1]);
}

const LONG = 'Here is a long report about the weather, the markets and travel plans for next week. '.repeat(12);

test('a new conversation sharing the tools prompt prefills only its own suffix, with the same answer as alone', async () => {
  const s = await startServer({ model: chat, port: 0, parallel: 3 });
  const fresh = await startServer({ model: chat, port: 0, parallel: 1 });
  try {
    await s.whenReady();
    await fresh.whenReady();
    // Conversation A grows long in slot 0: two turns, the second with a long message.
    const a1: Message[] = [{ role: 'user', content: 'What is the weather in Tokyo?' }];
    const ra1 = await ask(s, a1);
    assert.equal(ra1.cached, 0);
    const a2: Message[] = [...a1, { role: 'assistant', content: ra1.content }, { role: 'user', content: LONG }];
    const ra2 = await ask(s, a2);
    assert.ok(ra2.cached >= ra1.promptTokens, `A's second turn continued its slot (${ra2.cached} cached)`);
    // The slot now holds far more than twice the shared prefix, so a new conversation is not sent there.
    const shared = commonPrefix(promptIds(a1), promptIds([{ role: 'user', content: 'Convert 100 euros to yen.' }]));
    assert.ok(shared >= 32 && 2 * shared < ra2.promptTokens, `shared prefix ${shared} of A's ${ra2.promptTokens}`);

    // Conversation B, also long, lands in the least recently used (empty) slot 1: the tools prompt is copied from slot 0.
    const b: Message[] = [{ role: 'user', content: `Search flights from Paris to Rome. ${LONG}` }];
    const rb = await ask(s, b);
    assert.equal(rb.cached, commonPrefix(promptIds(b), promptIds(a2)));
    assert.ok(rb.cached >= shared);

    // Conversation C lands in the empty slot 2: it prefills only what follows the shared prefix.
    const c: Message[] = [{ role: 'user', content: 'Convert 100 euros to yen.' }];
    const rc = await ask(s, c, 24);
    const idsC = promptIds(c);
    const expected = Math.max(commonPrefix(idsC, promptIds(a2)), commonPrefix(idsC, promptIds(b)));
    assert.equal(rc.promptTokens, idsC.length);
    assert.equal(rc.cached, expected);
    assert.ok(rc.promptTokens - rc.cached < idsC.length - shared + 1, `prefilled ${rc.promptTokens - rc.cached} of ${idsC.length}`);
    assert.equal(await metric(s, 'chatglm_prompt_tokens_shared_total'), rb.cached + rc.cached);

    // Same greedy answers as on a server that prefilled everything.
    const alone = await ask(fresh, c, 24);
    assert.equal(alone.cached, 0);
    assert.equal(rc.content, alone.content);
    assert.equal((await ask(fresh, b)).content, rb.content);

    // The source slot kept its conversation: A's next turn still continues there.
    const a3: Message[] = [...a2, { role: 'assistant', content: ra2.content }, { role: 'user', content: 'Thanks!' }];
    const ra3 = await ask(s, a3);
    assert.ok(ra3.cached >= ra2.promptTokens, `A's third turn reused ${ra3.cached} of ${ra2.promptTokens}`);
    assert.equal(ra3.content, (await ask(fresh, a3)).content);
  } finally {
    await s.close(0);
    await fresh.close(0);
  }
});

test('a prefix is never copied from a busy slot', async () => {
  const s = await startServer({ model: chat, port: 0, parallel: 2 });
  try {
    await s.whenReady();
    const prefix = `System notes for every request. ${LONG}`;
    // Request A holds slot 0 busy, generating until aborted (ignore_eos), its cache holding the prefix.
    const abort = new AbortController();
    const resA = await fetch(`${s.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: chat.name, prompt: `${prefix} First question?`, temperature: 0, max_tokens: 600, ignore_eos: true, stream: true }),
      signal: abort.signal,
    });
    assert.equal(resA.status, 200);
    const reader = resA.body!.getReader();
    const first = await reader.read();
    assert.equal(first.done, false, 'A streams');
    const health = (await (await fetch(`${s.url}/health`)).json()) as { slots_processing: number };
    assert.equal(health.slots_processing, 1, 'A is still generating');

    // B shares A's long prefix but lands in the empty slot 1 and prefills all of it.
    const resB = await fetch(`${s.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: chat.name, prompt: `${prefix} Second question?`, temperature: 0, max_tokens: 4 }),
    });
    assert.equal(resB.status, 200);
    const b = (await resB.json()) as { usage: { prompt_tokens: number; prompt_tokens_details: { cached_tokens: number } } };
    assert.ok(b.usage.prompt_tokens > 64);
    assert.equal(b.usage.prompt_tokens_details.cached_tokens, 0);
    assert.equal(await metric(s, 'chatglm_prompt_tokens_shared_total'), 0);
    const stillBusy = (await (await fetch(`${s.url}/health`)).json()) as { slots_processing: number };
    assert.equal(stillBusy.slots_processing, 1, 'A was busy all along');
    abort.abort();
    await reader.cancel().catch(() => undefined);
  } finally {
    await s.close(0);
  }
});

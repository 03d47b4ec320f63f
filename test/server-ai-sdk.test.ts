/**
 * `chatglm serve` with the Vercel AI SDK (`ai` + `@ai-sdk/openai-compatible`): generateText and
 * streamText run a tool round trip against the bundled demo model on 127.0.0.1.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { generateText, streamText, tool, stepCountIs } from 'ai';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { z } from 'zod';
import { loadChatModel, type ChatModel } from '../src/api.js';
import { startServer, type ChatGLMServer } from '../src/server/server.js';

let chat: ChatModel;
let server: ChatGLMServer;

before(async () => {
  chat = await loadChatModel();
  server = await startServer({ model: chat, port: 0, parallel: 2 });
  await server.whenReady();
});

after(async () => {
  await server?.close(0);
  chat?.dispose();
});

function weatherTool(calls: string[]) {
  return tool({
    description: 'Get the current weather in a given city',
    inputSchema: z.object({ location: z.string() }),
    execute: async ({ location }) => {
      calls.push(location);
      return { location, temperature: 27, unit: 'celsius', description: 'cloudy' };
    },
  });
}

function provider() {
  return createOpenAICompatible({ name: 'chatglm', baseURL: `${server.url}/v1`, includeUsage: true });
}

test('AI SDK generateText: the model calls the tool, gets its result, and answers with it', async () => {
  const calls: string[] = [];
  const result = await generateText({
    model: provider()(chat.name),
    prompt: "What's the weather like in Oslo?",
    tools: { get_current_weather: weatherTool(calls) },
    stopWhen: stepCountIs(3),
    temperature: 0,
    maxRetries: 0,
  });
  assert.deepEqual(calls, ['Oslo']);
  assert.equal(result.steps[0]!.finishReason, 'tool-calls');
  assert.match(result.text, /27/);
  assert.equal(result.finishReason, 'stop');
  assert.ok((result.totalUsage.inputTokens ?? 0) > 0);
});

test('AI SDK streamText: the same round trip streamed, text arrives in parts', async () => {
  const calls: string[] = [];
  const result = streamText({
    model: provider()(chat.name),
    prompt: "What's the weather like in Oslo?",
    tools: { get_current_weather: weatherTool(calls) },
    stopWhen: stepCountIs(3),
    temperature: 0,
    maxRetries: 0,
  });
  const parts: string[] = [];
  for await (const delta of result.textStream) parts.push(delta);
  assert.deepEqual(calls, ['Oslo']);
  assert.ok(parts.length > 1);
  assert.match(parts.join(''), /27/);
  const usage = await result.totalUsage;
  assert.ok((usage.outputTokens ?? 0) > 0);
});

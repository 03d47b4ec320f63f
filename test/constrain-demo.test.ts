/**
 * Constrained decoding end to end on the bundled demo model (a smaller run of
 * tools/constrain/eval.ts): with tools it never saw, every call names a declared tool with
 * arguments that validate (ajv); response_format json_schema samples parse and validate; request
 * errors are ChatGLMErrors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadChatModel } from '../src/api.js';
import { ChatGLMError } from '../src/errors.js';
import { runJsonEval, runToolEval } from '../tools/constrain/eval.js';
import { EVAL_TOOLS, toolPrompts } from '../tools/constrain/eval-set.js';

const model = await loadChatModel();
test.after(() => model.dispose());

test('demo model, unseen tools: constrained calls name a declared tool and validate; required always calls', async () => {
  // Every eighth prompt: weather, numbers, arithmetic, stocks, alarms; English and Chinese.
  const prompts = toolPrompts().filter((_, i) => i % 8 === 0);
  const constrained = await runToolEval(model, prompts, 'constrained');
  assert.equal(constrained.declared, constrained.calls, JSON.stringify(constrained.details));
  assert.equal(constrained.valid, constrained.calls, JSON.stringify(constrained.details));
  const required = await runToolEval(model, prompts, 'required');
  assert.equal(required.calls, prompts.length);
  assert.equal(required.declared, prompts.length);
  assert.equal(required.valid, prompts.length, JSON.stringify(required.details));
  // Without constraints the same model calls the tools it was trained on, which are not declared.
  const free = await runToolEval(model, prompts, 'unconstrained');
  assert.ok(free.calls > free.declared, JSON.stringify(free.details));
});

test('demo model, response_format json_schema: sampled outputs parse and validate', async () => {
  const r = await runJsonEval(model, 6);
  assert.equal(r.parsed, 6, JSON.stringify(r.outputs));
  assert.equal(r.valid, 6, JSON.stringify(r.outputs));
});

test('demo model: a named tool_choice calls that tool; streaming carries the constrained call', async () => {
  const tools = [EVAL_TOOLS.flights, EVAL_TOOLS.stock];
  const r = await model.createChatCompletion({
    messages: [{ role: 'user', content: 'Find flights from Paris to Berlin on 2024-05-01.' }],
    tools,
    tool_choice: { type: 'function', function: { name: 'get_stock_quote' } },
    temperature: 0,
  });
  assert.equal(r.choices[0].finish_reason, 'tool_calls');
  assert.equal(r.choices[0].message.tool_calls?.[0]?.function.name, 'get_stock_quote');
  assert.match(JSON.parse(r.choices[0].message.tool_calls![0]!.function.arguments).ticker, /^[A-Z]{1,5}$/);
  const stream = await model.createChatCompletion({ messages: [{ role: 'user', content: 'Quote for AMZN.' }], tools, tool_choice: 'required', temperature: 0, stream: true });
  const names: string[] = [];
  for await (const chunk of stream) for (const c of chunk.choices[0].delta.tool_calls ?? []) names.push(c.function.name);
  assert.equal(names.length, 1);
  assert.ok(['search_flights', 'get_stock_quote'].includes(names[0]!));
});

test('constraint request errors are ChatGLMErrors that say what to fix', async () => {
  const messages = [{ role: 'user' as const, content: 'hi' }];
  const code = (c: string) => (e: unknown) => e instanceof ChatGLMError && e.code === c;
  await assert.rejects(model.createChatCompletion({ messages, response_format: { type: 'xml' } as never }), code('BAD_ARGUMENT'));
  await assert.rejects(model.createChatCompletion({ messages, tool_choice: 'required' }), code('BAD_ARGUMENT'));
  await assert.rejects(
    model.createChatCompletion({ messages, tools: [EVAL_TOOLS.stock], tool_choice: { type: 'function', function: { name: 'nope' } } }),
    code('BAD_ARGUMENT'),
  );
  await assert.rejects(
    model.createChatCompletion({ messages, response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'string', not: { const: 'a' } } } } }),
    code('GRAMMAR'),
  );
});

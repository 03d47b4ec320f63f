/**
 * Constrained decoding: token bytes, the bitmask hook, JSON Schema grammars checked string by
 * string, and property tests that sample through the real generation loop with random logits on
 * small ChatGLM3 (SentencePiece) and GLM-4 (byte-level tiktoken) vocabularies: every sample parses
 * and validates (ajv), no step is a dead end, and greedy output the grammar accepts is unchanged.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { computeTokenBytes } from '../src/tokenizer/token-bytes.js';
import { applyTokenBitmask } from '../src/generate/logits-constraint.js';
import { generateAll } from '../src/generate/generator.js';
import { GrammarEngine } from '../src/grammar/engine.js';
import { GrammarConstraint } from '../src/grammar/grammar-constraint.js';
import { GrammarBuilder } from '../src/grammar/schema-to-ebnf.js';
import { loadXgrammar } from '../src/grammar/xgrammar.js';
import { replyGrammar, toolSpecs, type ToolSpec } from '../src/chat/reply-grammar.js';
import { chatglm3 } from '../src/chat/chatglm3.js';
import { glm4 } from '../src/chat/glm4.js';
import type { ChatFormat } from '../src/chat/types.js';
import type { Tokenizer } from '../src/tokenizer/types.js';
import type { JsonValue } from '../src/chat/python-literal.js';
import { ChatGLMError } from '../src/errors.js';
import { ScriptedModel } from './support/chat-scripted-model.js';
import { chatglm3SmallTokenizer, glm4SmallTokenizer, RandomLogitsModel, randomSchema, seeded, validator, SP_MERGED } from './support/grammar-fixtures.js';
import { getFamily } from '../src/families/registry.js';

const sp = chatglm3SmallTokenizer();
/** Samples per property test (GRAMMAR_PROPERTY_SAMPLES=200 for a longer run). */
const SAMPLES = Number(process.env['GRAMMAR_PROPERTY_SAMPLES'] ?? 20);
const tk = glm4SmallTokenizer();

test('token bytes: SentencePiece pieces with U+2581 as a space, byte pieces as their byte, specials none', () => {
  const bytes = computeTokenBytes(sp);
  assert.equal(bytes.length, sp.vocabSize);
  assert.equal(bytes[0], null); // <unk>
  assert.equal(bytes[1], null); // <s>
  assert.deepEqual(bytes[3 + 0x0a], Uint8Array.of(0x0a)); // <0x0A>
  assert.deepEqual(bytes[3 + 0xe4], Uint8Array.of(0xe4));
  assert.deepEqual(Buffer.from(bytes[259]!).toString('utf8'), ' tool'); // ▁tool
  assert.deepEqual(Buffer.from(bytes[259 + SP_MERGED.indexOf('你好')]!).toString('hex'), 'e4bda0e5a5bd');
  assert.equal(bytes[sp.specialId('<|assistant|>')!], null);
});

test('token bytes: tiktoken ranks as raw bytes, specials none', () => {
  const bytes = computeTokenBytes(tk);
  assert.deepEqual(bytes[0xe4], Uint8Array.of(0xe4));
  assert.deepEqual(Buffer.from(bytes[267]!).toString('utf8'), ' world');
  assert.equal(Buffer.from(bytes[268]!).toString('utf8'), '你好');
  assert.equal(bytes[tk.specialId('<|observation|>')!], null);
});

test('applyTokenBitmask keeps exactly the ids whose bit is set, and removes ids past the mask', () => {
  const logits = Float32Array.from({ length: 70 }, (_, i) => i);
  // Word 0: ids 0, 5, 31; word 1: all; ids 64.. lie past the mask.
  applyTokenBitmask(logits, Int32Array.of((1 << 0) | (1 << 5) | (1 << 31), -1));
  const kept = [...logits].flatMap((v, i) => (v === -Infinity ? [] : [i]));
  assert.deepEqual(kept, [0, 5, ...Array.from({ length: 33 }, (_, k) => 31 + k)]);
});

async function accepts(ebnf: string, s: string): Promise<boolean> {
  const xg = loadXgrammar();
  const g = await xg.Grammar.fromEBNF(ebnf, 'root');
  try {
    return await xg.Testings.isGrammarAcceptString(g, s);
  } finally {
    g.dispose();
  }
}

test('JSON Schema grammars accept and reject hand-picked strings', async () => {
  const cases: { schema: JsonValue; dialect: 'json' | 'python'; kwargs?: boolean; good: string[]; bad: string[] }[] = [
    { schema: { type: 'integer', minimum: -15, maximum: 230 }, dialect: 'json', good: ['-15', '0', '7', '99', '100', '230'], bad: ['-16', '231', '-0', '01', '1000'] },
    {
      schema: { type: 'object', properties: { a: { type: 'string', maxLength: 3 }, b: { type: 'boolean' }, c: { enum: ['x', 1, null] } }, required: ['b'] },
      dialect: 'json',
      good: ['{"b": true}', '{"a": "xy", "b": false, "c": null}', '{"b": true, "c": "x"}', '{"a": "", "b": false}'],
      bad: ['{}', '{"a": "abcd", "b": true}', '{"b": true, }', '{"b": True}', '{"b":true}'],
    },
    {
      schema: { type: 'object', properties: { city: { type: 'string' }, n: { type: 'integer' }, t: { type: 'array', items: { type: 'number' }, minItems: 1, maxItems: 2 } }, required: ['city'] },
      dialect: 'python',
      kwargs: true,
      good: ['city="a"', 'city="北京", n=-3', 'city="x", t=[1.5, 2]'],
      bad: ['n=3', 'city="x", t=[]', 'city="x", t=[1, 2, 3]', "city='x'"],
    },
    { schema: { type: ['string', 'null'] }, dialect: 'python', good: ['None', '"a\\"b"'], bad: ['null', '"a\nb"'] },
    { schema: { type: 'string', pattern: '^[A-Z]{3}-\\d+$' }, dialect: 'json', good: ['"ABC-12"'], bad: ['"AB-1"', '"ABC-"'] },
    { schema: { type: 'string', pattern: 'a.c' }, dialect: 'json', good: ['"xxabcyy"', '"a c"'], bad: ['"ab"'] },
    {
      schema: { $defs: { node: { type: 'object', properties: { v: { type: 'integer' }, next: { anyOf: [{ $ref: '#/$defs/node' }, { type: 'null' }] } }, required: ['v', 'next'] } }, $ref: '#/$defs/node' },
      dialect: 'json',
      good: ['{"v": 1, "next": {"v": 2, "next": null}}'],
      bad: ['{"v": 1}'],
    },
    { schema: { type: 'number', minimum: 0, maximum: 10 }, dialect: 'json', good: ['0', '3.25', '10', '10.0'], bad: ['10.5', '11', '-1'] },
  ];
  for (const c of cases) {
    const b = new GrammarBuilder(c.dialect);
    const ebnf = b.toEbnf(c.kwargs ? b.kwargsOf(c.schema) : b.valueOf(c.schema));
    for (const s of c.good) assert.equal(await accepts(ebnf, s), true, `${JSON.stringify(c.schema)} should accept ${s}`);
    for (const s of c.bad) assert.equal(await accepts(ebnf, s), false, `${JSON.stringify(c.schema)} should reject ${s}`);
  }
});

test('unsupported schema keywords are a GRAMMAR error, not a silent mismatch', () => {
  const bad: JsonValue[] = [{ not: { type: "string" } }, { type: "array", uniqueItems: true }, { type: "string", pattern: "(?=a)b" }, { type: "nope" }];
  for (const schema of bad) {
    assert.throws(() => new GrammarBuilder('json').valueOf(schema), (e: unknown) => e instanceof ChatGLMError && e.code === 'GRAMMAR');
  }
});

interface Sample {
  text: string;
  ids: number[];
  stopped: boolean;
  steps: number;
}

/** Samples one reply through generate() with the constraint; checks every step has an allowed token. */
async function sample(engine: GrammarEngine, ebnf: string, freeText: boolean, tokenizer: Tokenizer, format: ChatFormat, seed: number): Promise<Sample> {
  const stopIds = format.stopIds(tokenizer);
  const bonus = new Map(stopIds.map((id) => [id, 4] as const));
  const model = new RandomLogitsModel(tokenizer.vocabSize, seed, bonus);
  const compiled = await engine.compile(ebnf);
  const inner = await GrammarConstraint.create(engine, compiled, { stopIds, freeText });
  let steps = 0;
  const constraint = {
    async mask(logits: Float32Array) {
      await inner.mask(logits);
      assert.ok(logits.some((v) => v !== -Infinity), 'dead end: no token allowed');
      steps++;
    },
    accept: (id: number) => inner.accept(id),
  };
  try {
    const r = await generateAll(model, [1], { constraint, stopIds, maxNewTokens: 400, seed, temperature: 1, tokenizer });
    return { text: r.text, ids: r.ids, stopped: r.finishReason === 'stop', steps };
  } finally {
    inner.dispose();
  }
}

function objectSchema(rand: () => number): Record<string, unknown> {
  for (;;) {
    const s = randomSchema(rand);
    if (s['type'] === 'object') return s;
  }
}

for (const [label, tokenizer, format] of [
  ['ChatGLM3 (SentencePiece)', sp, chatglm3],
  ['GLM-4 (byte-level tiktoken)', tk, glm4],
] as const) {
  test(`property: random response schemas on ${label}: every sample ends, parses and validates`, async () => {
    const engine = await GrammarEngine.create(tokenizer);
    try {
      const rand = seeded(label.length * 7919);
      for (let i = 0; i < SAMPLES; i++) {
        const schema = randomSchema(rand);
        const g = replyGrammar({ family: getFamily(format.name), responseSchema: schema as JsonValue });
        const s = await sample(engine, g.ebnf, g.freeText, tokenizer, format, 1000 + i);
        assert.ok(s.stopped, `sample ${i} did not end: ${s.text}`);
        const parsed = format.parse([s.text], { tools: false });
        assert.equal(parsed.type, 'text');
        const value: unknown = JSON.parse(parsed.type === 'text' ? parsed.content : '');
        assert.ok(validator(schema)(value), `schema ${JSON.stringify(schema)}: ${JSON.stringify(value)} does not validate`);
      }
    } finally {
      engine.dispose();
    }
  });

  test(`property: random tool schemas on ${label}: every call names a declared tool and its arguments validate`, async () => {
    const engine = await GrammarEngine.create(tokenizer);
    try {
      const rand = seeded(label.length * 104729);
      for (let i = 0; i < SAMPLES; i++) {
        const tools: ToolSpec[] = [
          { name: 'random_number_generator', parameters: objectSchema(rand) as JsonValue },
          { name: 'search_flights', parameters: objectSchema(rand) as JsonValue },
        ];
        const g = replyGrammar({ family: getFamily(format.name), tools, requireToolCall: true });
        const s = await sample(engine, g.ebnf, g.freeText, tokenizer, format, 2000 + i);
        assert.ok(s.stopped, `sample ${i} did not end: ${s.text}`);
        const parsed = format.parse([s.text], { tools: true });
        assert.equal(parsed.type, 'tool_call', `sample ${i}: ${s.text}`);
        if (parsed.type !== 'tool_call') continue;
        const tool = tools.find((t) => t.name === parsed.name);
        assert.ok(tool, `undeclared tool ${parsed.name}`);
        assert.ok(validator(tool.parameters as object)(parsed.arguments), `${JSON.stringify(tool.parameters)}: ${JSON.stringify(parsed.arguments)} ids ${JSON.stringify(s.ids)}`);
      }
    } finally {
      engine.dispose();
    }
  });
}

test('greedy output that the grammar accepts is unchanged by the constraint; one it rejects is steered', async () => {
  const engine = await GrammarEngine.create(sp);
  try {
    const tools = toolSpecs([{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }]);
    const g = replyGrammar({ family: getFamily('chatglm3'), tools });
    const compiled = await engine.compile(g.ebnf);
    const stopIds = chatglm3.stopIds(sp);
    const obs = sp.specialId('<|observation|>')!;
    const run = async (script: number[], constrained: boolean): Promise<number[]> => {
      const model = new ScriptedModel([...script, obs], sp.vocabSize);
      const c = constrained ? await GrammarConstraint.create(engine, compiled, { stopIds, freeText: g.freeText }) : undefined;
      try {
        return (await generateAll(model, [1], { greedy: true, stopIds, maxNewTokens: 80, ...(c ? { constraint: c } : {}) })).ids;
      } finally {
        c?.dispose();
      }
    };
    // The call as ChatGLM3's template encodes it: metadata line and content encoded separately.
    const call = [...sp.encode('get_weather\n'), ...sp.encode('```python\ntool_call(city="Paris")\n```')];
    assert.deepEqual(await run(call, false), call);
    assert.deepEqual(await run(call, true), call);
    // Free text after an empty metadata line is not constrained (lazy activation).
    const text = [...sp.encode('\n'), ...sp.encode('Hello (not a call) {"x": 1')];
    assert.deepEqual(await run(text, true), text);
    // An undeclared tool name is steered to the declared one.
    const wrong = [...sp.encode('get_time\n'), ...sp.encode('```python\ntool_call(city="Paris")\n```')];
    // (The scripted model stops following its script once steered, so only the name is checked.)
    const steered = sp.decode(await run(wrong, true));
    assert.equal(steered.split('\n')[0]!.trim(), 'get_weather', steered);
  } finally {
    engine.dispose();
  }
});

/**
 * The tool layer without a model: the calculator's parser against values worked out by hand
 * (and the precedence rules of mathematics / Python's ** and %), the built-in tools against
 * known calendar facts, defineTool's schema checks, and the rule that no agent source evaluates
 * text as code.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { evaluateExpression } from '../src/agent/calculator.js';
import { builtinTools, currentTimeTool, randomNumberGeneratorTool, timeIn } from '../src/agent/builtin-tools.js';
import { defineTool } from '../src/agent/tool.js';
import { pythonJson, truncateObservation, TRUNCATION_MARK } from '../src/agent/tool-runner.js';
import { ChatGLMError } from '../src/errors.js';

const ctx = { signal: new AbortController().signal, callId: 'c1' };

test('calculator: arithmetic, precedence and functions give the hand-computed values', () => {
  const cases: [string, number][] = [
    ['4821 + 377', 5198],
    ['2 + 3 * 4', 14],
    ['(2 + 3) * 4', 20],
    ['10 / 4', 2.5],
    ['10 - 4 - 3', 3],
    ['100 / 10 / 5', 2],
    ['2^10', 1024],
    ['2 ** 10', 1024],
    ['-2^2', -4],
    ['(-2)^2', 4],
    ['2^3^2', 512],
    ['2^-1', 0.5],
    ['7 % 3', 1],
    ['-7 % 3', 2],
    ['7 % -3', -2],
    ['--3', 3],
    ['1e3 + 0.5', 1000.5],
    ['.5 * 4', 2],
    ['1_000 * 3', 3000],
    ['sqrt(16) + abs(-3)', 7],
    ['log(8, 2)', 3],
    ['max(1, 5, 3) - min(4, 2)', 3],
    ['floor(2.7) + ceil(2.1) + round(2.5)', 8],
    ['pow(3, 4)', 81],
    ['  ( ( 1 ) )  ', 1],
  ];
  for (const [expr, want] of cases) assert.equal(evaluateExpression(expr), want, expr);
  assert.ok(Math.abs(evaluateExpression('pi') - 3.141592653589793) < 1e-15);
  assert.ok(Math.abs(evaluateExpression('log(1000)') - 3) < 1e-12);
  assert.ok(Math.abs(evaluateExpression('sin(pi / 2)') - 1) < 1e-12);
  assert.ok(Math.abs(evaluateExpression('e^ln(5)') - 5) < 1e-12);
});

test('calculator: malformed or unsafe input is a ChatGLMError naming the problem, never evaluated', () => {
  const bad: [string, RegExp][] = [
    ['1 / 0', /division by zero/],
    ['5 % 0', /modulo by zero/],
    ['2 +', /ends early/],
    ['', /empty/],
    ['(1 + 2', /missing "\)"/],
    ['1 2', /unexpected "2"/],
    ['foo(1)', /unknown function "foo"/],
    ['process.exit(1)', /unknown name "process"/],
    ['constructor', /unknown name "constructor"/],
    ['__proto__', /unknown name "__proto__"/],
    ['toString(1)', /unknown function "toString"/],
    ['sqrt(1, 2)', /takes 1 argument/],
    ['sqrt(-1)', /not a number/],
    ['"1" + 1', /unexpected """/],
    ['('.repeat(500) + '1' + ')'.repeat(500), /nested too deeply/],
  ];
  for (const [expr, want] of bad) {
    assert.throws(() => evaluateExpression(expr), (e: unknown) => e instanceof ChatGLMError && e.code === 'BAD_ARGUMENT' && want.test(e.message), expr);
  }
});

test('no agent source evaluates text as code (no eval, no Function constructor)', () => {
  const dir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/agent');
  const files = readdirSync(dir).filter((f) => f.endsWith('.ts'));
  assert.ok(files.length >= 6);
  for (const f of files) {
    const src = readFileSync(path.join(dir, f), 'utf8');
    assert.doesNotMatch(src, /\beval\s*\(|new\s+Function\b|\bFunction\s*\(/, f);
  }
});

test('random_number_generator: ChatGLM3 arguments, inclusive range, same seed same number', async () => {
  const tool = randomNumberGeneratorTool();
  assert.equal(tool.validate({ seed: 42, range: [0, 100] }), undefined);
  assert.match(tool.validate({ seed: 42 }) ?? '', /must have required property 'range'/);
  assert.match(tool.validate({ seed: 1.5, range: [0, 1] }) ?? '', /arguments\/seed must be integer/);
  assert.match(tool.validate({ seed: 1, range: [0, 1, 2] }) ?? '', /must NOT have more than 2 items/);
  const a = await tool.run({ seed: 42, range: [0, 100] }, ctx);
  assert.equal(await tool.run({ seed: 42, range: [0, 100] }, ctx), a);
  const seen = new Set<number>();
  for (let seed = 0; seed < 200; seed++) {
    const v = (await tool.run({ seed, range: [3, 5] }, ctx)) as number;
    assert.ok(Number.isInteger(v) && v >= 3 && v <= 5, `seed ${seed}: ${v}`);
    seen.add(v);
  }
  assert.deepEqual([...seen].sort(), [3, 4, 5]);
  assert.throws(() => tool.run({ seed: 1, range: [5, 3] }, ctx), /is empty/);
});

test('get_current_time: the wall clock of an IANA zone at a known instant', async () => {
  // 2024-01-01 was a Monday; India is UTC+05:30 all year; New York is UTC-4 in July (EDT).
  assert.deepEqual(timeIn(new Date('2024-01-01T00:00:00Z'), 'Asia/Kolkata'), {
    timezone: 'Asia/Kolkata',
    datetime: '2024-01-01T05:30:00+05:30',
    weekday: 'Monday',
    utc_offset: '+05:30',
  });
  assert.equal(timeIn(new Date('2024-07-04T16:00:00Z'), 'America/New_York').datetime, '2024-07-04T12:00:00-04:00');
  assert.equal(timeIn(new Date('2024-07-04T16:00:00Z'), 'UTC').datetime, '2024-07-04T16:00:00+00:00');
  const tool = currentTimeTool({ now: () => new Date('2024-02-29T23:59:59Z') });
  assert.deepEqual(await tool.run({ timezone: 'Asia/Shanghai' }, ctx), {
    timezone: 'Asia/Shanghai',
    datetime: '2024-03-01T07:59:59+08:00',
    weekday: 'Friday',
    utc_offset: '+08:00',
  });
  assert.throws(() => timeIn(new Date(), 'Mars/Olympus'), (e: unknown) => e instanceof ChatGLMError && /unknown time zone "Mars\/Olympus"/.test(e.message));
});

test('builtinTools: by name; an unknown name lists the built-ins', () => {
  assert.deepEqual(
    builtinTools(['calculator', ' get_current_time ']).map((t) => t.name),
    ['calculator', 'get_current_time'],
  );
  assert.throws(() => builtinTools(['weather']), /unknown built-in tool "weather" \(built-ins: random_number_generator, calculator, get_current_time\)/);
});

test('defineTool: checks the name, run and schema when the tool is defined', () => {
  const run = (): number => 1;
  assert.throws(() => defineTool({ name: 'bad name', run }), (e: unknown) => e instanceof ChatGLMError && /tool name "bad name"/.test(e.message));
  assert.throws(() => defineTool({ name: 'x', run: 5 as unknown as typeof run }), /needs a run/);
  assert.throws(() => defineTool({ name: 'x', parameters: { type: 'objekt' }, run }), /not a valid JSON Schema/);
  assert.throws(() => defineTool({ name: 'x', timeoutMs: -1, run }), /timeoutMs/);
  const t = defineTool({ name: 'x', parameters: { type: 'object', properties: { n: { type: 'integer', minimum: 1 } }, required: ['n'], additionalProperties: false }, run });
  assert.equal(t.validate({ n: 3 }), undefined);
  assert.equal(t.validate({ n: 0 }), 'arguments/n must be >= 1');
  assert.equal(t.validate({ n: 1, m: 2 }), 'arguments must NOT have additional properties');
  // Default schema: any object.
  assert.equal(defineTool({ name: 'y', run }).validate({ anything: 1 }), undefined);
});

test('observations: json.dumps layout, and truncation that says so', () => {
  assert.equal(pythonJson({ temperature: 22, description: 'sunny', tags: ['a', 1, null, true], nested: { 城市: '北京' } }), '{"temperature": 22, "description": "sunny", "tags": ["a", 1, null, true], "nested": {"城市": "北京"}}');
  assert.equal(truncateObservation('abc', 3), 'abc');
  assert.equal(truncateObservation('abcd', 3), 'abc' + TRUNCATION_MARK);
  // A surrogate pair is not split.
  assert.equal(truncateObservation('ab😀cd', 3), 'ab' + TRUNCATION_MARK);
});

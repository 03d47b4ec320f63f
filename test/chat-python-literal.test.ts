/**
 * The safe parser for ChatGLM3's `tool_call(k=v, ...)`: what Python would evaluate to (values
 * written out by hand from Python semantics), and clear errors for anything that is not a literal.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePythonCall, parsePythonLiteral, PythonSyntaxError, toPythonLiteral } from '../src/chat/python-literal.js';

test('V15: seed=42, range=(0, 100) -> tuple as array', () => {
  assert.deepEqual(parsePythonCall('tool_call(seed=42, range=(0, 100))'), { name: 'tool_call', kwargs: { seed: 42, range: [0, 100] } });
});

test('strings: both quotes, triple quotes, escapes, raw and unicode prefixes, implicit concatenation', () => {
  assert.equal(parsePythonLiteral(`'北京'`), '北京');
  assert.equal(parsePythonLiteral(`"it's"`), "it's");
  assert.equal(parsePythonLiteral(`'it\\'s'`), "it's");
  assert.equal(parsePythonLiteral(`'a\\nb\\tc\\\\d'`), 'a\nb\tc\\d');
  assert.equal(parsePythonLiteral(`'\\x41\\u4e2d\\U0001F44B\\101'`), 'A中👋A');
  assert.equal(parsePythonLiteral(`'\\d'`), '\\d'); // unknown escapes stay as written
  assert.equal(parsePythonLiteral(`r'\\n'`), '\\n');
  assert.equal(parsePythonLiteral(`u'x'`), 'x');
  assert.equal(parsePythonLiteral(`'''a\n"b"'''`), 'a\n"b"');
  assert.equal(parsePythonLiteral(`'ab' "cd"`), 'abcd');
});

test('numbers, constants, containers and nesting', () => {
  assert.equal(parsePythonLiteral('-17'), -17);
  assert.equal(parsePythonLiteral('1_000'), 1000);
  assert.equal(parsePythonLiteral('0x1F'), 31);
  assert.equal(parsePythonLiteral('3.5e-2'), 0.035);
  assert.equal(parsePythonLiteral('.5'), 0.5);
  assert.equal(parsePythonLiteral('5.'), 5);
  assert.equal(parsePythonLiteral('True'), true);
  assert.equal(parsePythonLiteral('False'), false);
  assert.equal(parsePythonLiteral('None'), null);
  assert.deepEqual(parsePythonLiteral('()'), []);
  assert.deepEqual(parsePythonLiteral('(1,)'), [1]);
  assert.equal(parsePythonLiteral('(1)'), 1);
  assert.deepEqual(parsePythonLiteral("[1, 'a', [2, (3, 4)], {'k': {'n': None}},]"), [1, 'a', [2, [3, 4]], { k: { n: null } }]);
  assert.deepEqual(parsePythonLiteral("{1: 'one', True: 2}"), { '1': 'one', true: 2 });
  assert.deepEqual(parsePythonCall("tool_call(\n    city='上海',\n    days=3,\n)").kwargs, { city: '上海', days: 3 });
});

test('malformed or non-literal input is a PythonSyntaxError, never evaluated', () => {
  const bad = [
    "tool_call(city='北京)", // unbalanced quote
    'tool_call(city="a\nb")', // newline in a one-line string
    'tool_call(x=[1, 2)', // unbalanced bracket
    'tool_call(x=1', // missing )
    "tool_call('positional')",
    'tool_call(x=__import__("os").system("echo hi"))',
    'tool_call(x=open("/etc/passwd"))',
    'tool_call(x=1 + 2)',
    'tool_call(x=lambda: 1)',
    'tool_call(x=1) ; import os',
    'tool_call(x=1, x=2)',
    'tool_call(x=007)',
    'tool_call(x={[1]: 2})',
    'tool_call(x=' + '['.repeat(500) + ']'.repeat(500) + ')',
    '',
  ];
  for (const src of bad) assert.throws(() => parsePythonCall(src), PythonSyntaxError, src);
});

test('toPythonLiteral writes what the parser reads back (and what Python repr writes)', () => {
  const v = { city: "Xi'an", n: [1, 2.5, -3], ok: true, none: null, nested: { 'k"': 'a\nb\\' } };
  const py = toPythonLiteral(v);
  assert.equal(py, `{'city': "Xi'an", 'n': [1, 2.5, -3], 'ok': True, 'none': None, 'nested': {'k"': 'a\\nb\\\\'}}`);
  assert.deepEqual(parsePythonLiteral(py), v);
});

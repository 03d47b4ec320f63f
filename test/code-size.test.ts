// The size rules of the code: no file in src/ over 600 lines, no function over 100 lines unless a
// `// long-function:` comment right above it says why. Functions are found with the TypeScript
// parser, so arrow functions and methods count too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const srcDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src');
const MAX_FILE_LINES = 600;
const MAX_FUNCTION_LINES = 100;

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return e.name.endsWith('.ts') ? [p] : [];
  });
}

/** Functions of `text` longer than `max` lines, as "name (N lines)", with whether a reason is given. */
function longFunctions(file: string, text: string, max: number): { name: string; lines: number; explained: boolean }[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const found: { name: string; lines: number; explained: boolean }[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body !== undefined) {
      const first = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line;
      const last = sf.getLineAndCharacterOfPosition(node.end).line;
      if (last - first + 1 > max) {
        // The comment may sit above the function or above the statement that holds it (const f = () => ...).
        let leading = '';
        for (let n: ts.Node | undefined = node, up = 0; n !== undefined && up < 3; n = n.parent, up++) leading += text.slice(n.getFullStart(), n.getStart(sf));
        const name = node.name !== undefined ? node.name.getText(sf) : '<anonymous>';
        found.push({ name, lines: last - first + 1, explained: /\/\/ long-function: \S/.test(leading) });
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return found;
}

// src/web (the browser page, its own tsconfig and bundle) is held to the same rules.
const files = sources(srcDir).map((f) => ({ rel: path.relative(srcDir, f).split(path.sep).join('/'), text: readFileSync(f, 'utf8') }));

test(`no file in src/ is over ${MAX_FILE_LINES} lines`, () => {
  const long = files.map((f) => ({ rel: f.rel, lines: f.text.split('\n').length })).filter((f) => f.lines > MAX_FILE_LINES);
  assert.deepEqual(long.map((f) => `${f.rel} (${f.lines} lines)`), []);
});

test(`no function in src/ is over ${MAX_FUNCTION_LINES} lines without a reason`, () => {
  const unexplained = files.flatMap((f) => longFunctions(f.rel, f.text, MAX_FUNCTION_LINES).filter((l) => !l.explained).map((l) => `${f.rel}: ${l.name} (${l.lines} lines)`));
  assert.deepEqual(unexplained, []);
});

test('the function check finds long functions and reads their reason', () => {
  const body = Array.from({ length: 120 }, (_, i) => `  x += ${i};`).join('\n');
  const src = `function big(x: number) {\n${body}\n  return x;\n}\n// long-function: a table of cases.\nconst ok = (x: number) => {\n${body}\n  return x;\n};\n`;
  const got = longFunctions('t.ts', src, MAX_FUNCTION_LINES);
  assert.deepEqual(
    got.map((g) => [g.name, g.explained]),
    [
      ['big', false],
      ['<anonymous>', true],
    ],
  );
});

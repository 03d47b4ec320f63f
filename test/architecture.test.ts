// The layers of ../shared/DESIGN.md, checked on the import statements of src/: dependencies point
// downwards, the two backends stay apart, and no module imports itself back through others.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const srcDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return sources(p);
    return e.name.endsWith('.ts') ? [p] : [];
  });
}

/** Relative imports of a file (static, re-exports, dynamic), as src-relative .ts paths. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const found: string[] = [];
  const re = /(?:\bfrom\s*|\bimport\s*\(\s*|^\s*import\s+)['"](\.{1,2}\/[^'"]+)['"]/gm;
  for (const m of text.matchAll(re)) {
    const spec = m[1]!;
    const target = path.resolve(path.dirname(file), spec.replace(/\.js$/, '.ts'));
    found.push(path.relative(srcDir, target).split(path.sep).join('/'));
  }
  return found;
}

/** The layer a src-relative path belongs to: its top folder, or the file name for top-level files. */
function area(rel: string): string {
  const parts = rel.split('/');
  if (parts.length === 1) return parts[0]!.replace(/\.ts$/, '');
  // The two backends are kept apart: the reference backend is the oracle the native one is tested against.
  if (parts[0] === 'backend' && (parts[1] === 'native' || parts[1] === 'reference')) return `backend/${parts[1]}`;
  return parts[0]!;
}

const files = sources(srcDir).map((f) => path.relative(srcDir, f).split(path.sep).join('/'));
const graph = new Map(files.map((f) => [f, importsOf(path.join(srcDir, f))]));

// What each layer may import besides itself; errors.ts is the shared base every layer may use.
const BELOW_API = ['numeric', 'backend', 'backend/native', 'backend/reference', 'formats', 'tokenizer', 'model', 'families', 'chat', 'generate'];
const FORBIDDEN: Record<string, string[]> = {
  numeric: ['backend', 'backend/native', 'backend/reference', 'formats', 'tokenizer', 'model', 'families', 'chat', 'generate'],
  backend: ['formats', 'tokenizer', 'model', 'families', 'chat', 'generate'],
  'backend/native': ['formats', 'tokenizer', 'model', 'families', 'chat', 'generate', 'backend/reference'],
  'backend/reference': ['formats', 'tokenizer', 'model', 'families', 'chat', 'generate', 'backend/native'],
  formats: ['backend', 'backend/native', 'backend/reference', 'model', 'families', 'chat', 'generate'],
  tokenizer: ['backend', 'backend/native', 'backend/reference', 'model', 'families', 'chat', 'generate'],
  model: ['chat', 'families', 'generate'],
  // families/ builds on chat/ (each family names its format), so chat/ never reaches back up.
  chat: ['families'],
  // Families describe protocols and defaults; they never reach into the numeric or loading code.
  families: ['backend', 'backend/native', 'backend/reference', 'formats', 'model', 'generate'],
};
const ABOVE_API = ['api', 'agent', 'server', 'cli', 'convert', 'index'];

test('imports point down the layers of DESIGN.md', () => {
  const violations: string[] = [];
  for (const [file, imports] of graph) {
    const from = area(file);
    const banned = [...(FORBIDDEN[from] ?? []), ...(BELOW_API.includes(from) ? ABOVE_API : [])];
    for (const target of imports) {
      const to = area(target);
      if (to !== from && banned.includes(to)) violations.push(`${file} imports ${target} (${from} -> ${to})`);
    }
  }
  assert.deepEqual(violations, []);
});

test('every relative import names a file that exists', () => {
  const known = new Set(files);
  const missing = [...graph].flatMap(([file, imports]) => imports.filter((t) => !known.has(t)).map((t) => `${file} -> ${t}`));
  assert.deepEqual(missing, []);
});

test('no import cycles between modules', () => {
  // Tarjan's strongly connected components over the file graph: any component of two or more files is a cycle.
  let index = 0;
  const idx = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const visit = (v: string): void => {
    idx.set(v, index);
    low.set(v, index);
    index++;
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, idx.get(w)!));
      }
    }
    if (low.get(v) === idx.get(v)) {
      const comp: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1) cycles.push(comp.sort());
    }
  };
  for (const f of files) if (!idx.has(f)) visit(f);
  assert.deepEqual(cycles, []);
});

test('the checker sees the violations it is meant to catch', () => {
  // A guard against a regex that silently matches nothing: the real tree has hundreds of imports.
  const total = [...graph.values()].reduce((n, l) => n + l.length, 0);
  assert.ok(total > 200, `only ${total} imports found`);
  assert.equal(area('backend/native/index.ts'), 'backend/native');
  assert.ok(FORBIDDEN['backend/native']!.includes(area('backend/reference/rows.ts')));
});

// The sandboxed interpreter as a caller uses it: state across cells, printed output and the value of
// a last expression, errors, figures as PNG, the working directory, reset and close, and no Python
// process left when the Node process dies.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createCodeInterpreter, type CodeInterpreter } from '../src/index.js';
import { decodePng, sandboxSkipReason } from './support/interpreter-sandbox.js';

const skip = sandboxSkipReason();
const here = path.dirname(fileURLToPath(import.meta.url));
let ci: CodeInterpreter;
let workDir: string;

before(async () => {
  if (skip) return;
  workDir = mkdtempSync(path.join(tmpdir(), 'chatglm-interp-work-'));
  writeFileSync(path.join(workDir, 'input.csv'), 'a,b\n1,2\n3,4\n');
  // The default time limit: the first matplotlib import and figure take over a second here.
  ci = await createCodeInterpreter({ workDir });
});

after(async () => {
  if (skip) return;
  await ci.close();
  rmSync(workDir, { recursive: true, force: true });
});

test('variables persist across cells; prints and the last expression come back in order', { skip }, async () => {
  const first = await ci.run('x = 6 * 7\nprint("hello", x)');
  assert.deepEqual(first, { text: 'hello 42\n', images: [], timedOut: false, restarted: false });
  assert.equal((await ci.run('x + 1')).text, '43\n');
  assert.equal((await ci.run('def twice(v):\n    return [v, v]\ntwice(x)')).text, '[42, 42]\n');
  // A last expression that is None shows nothing, as in a notebook.
  assert.equal((await ci.run('None')).text, '');
  const mixed = await ci.run('import sys\nprint("a")\nprint("b", file=sys.stderr)\nprint("c")\n"d"');
  assert.equal(mixed.text, "a\nb\nc\n'd'\n");
});

test('runs started together execute one after the other', { skip }, async () => {
  const [a, b, c] = await Promise.all([ci.run('order = [1]'), ci.run('order.append(2)'), ci.run('order')]);
  assert.deepEqual([a.text, b.text, c.text], ['', '', '[1, 2]\n']);
  const bytes = await ci.run('import sys\nsys.stdout.buffer.write("é\\n".encode())');
  assert.equal(bytes.text, 'é\n3\n');
});

test('an exception comes back with its name, message and a traceback of the cell only', { skip }, async () => {
  const r = await ci.run('print("before")\ndef f():\n    return 1 / 0\nf()');
  assert.equal(r.text, 'before\n');
  assert.equal(r.error?.name, 'ZeroDivisionError');
  assert.equal(r.error?.message, 'division by zero');
  assert.match(r.error?.traceback ?? '', /^Traceback \(most recent call last\):\n {2}File "<cell-\d+>", line 4, in <module>\n/);
  assert.match(r.error?.traceback ?? '', /line 3, in f\n {4}return 1 \/ 0\n/);
  assert.doesNotMatch(r.error?.traceback ?? '', /runner\.py/);
  const syntax = await ci.run('def broken(:\n    pass');
  assert.equal(syntax.error?.name, 'SyntaxError');
  assert.match(syntax.error?.traceback ?? '', /def broken\(:/);
  // The state from before the errors is still there.
  assert.equal((await ci.run('x')).text, '42\n');
});

test('input() gets EOF rather than the interpreter\'s own requests', { skip }, async () => {
  const r = await ci.run('input()');
  assert.equal(r.error?.name, 'EOFError');
  assert.equal((await ci.run('x')).text, '42\n');
});

test('each figure a cell creates comes back as a PNG that decodes to the pixels drawn', { skip }, async () => {
  const r = await ci.run([
    'import matplotlib.pyplot as plt',
    'plt.figure(figsize=(2, 1), dpi=50, facecolor="red")',
    'plt.figure(figsize=(1, 1), dpi=40, facecolor=(0, 0, 1))',
    'print("drawn")',
  ].join('\n'));
  assert.equal(r.error, undefined, r.error?.traceback);
  assert.equal(r.text, 'drawn\n');
  assert.equal(r.images.length, 2);
  const expected = [
    { width: 100, height: 50, rgba: [255, 0, 0, 255] },
    { width: 40, height: 40, rgba: [0, 0, 255, 255] },
  ];
  r.images.forEach((image, i) => {
    assert.equal(image.mime, 'image/png');
    const png = decodePng(image.data);
    assert.equal(png.width, expected[i]!.width);
    assert.equal(png.height, expected[i]!.height);
    for (let p = 0; p < png.width * png.height; p++) {
      assert.deepEqual([...png.rgba.subarray(p * 4, p * 4 + 4)], expected[i]!.rgba, `pixel ${p} of figure ${i}`);
    }
  });
  // The figures were closed: the next cell starts with none.
  const next = await ci.run('plt.get_fignums()');
  assert.deepEqual([next.text, next.images.length], ['[]\n', 0]);
});

test('plt.show() hands the figure over, as in a notebook', { skip }, async () => {
  const r = await ci.run('plt.figure(figsize=(1, 1), dpi=30)\nplt.plot([1, 2, 3])\nplt.show()\nprint(plt.get_fignums())');
  assert.equal(r.error, undefined, r.error?.traceback);
  assert.equal(r.text, '[]\n');
  assert.equal(r.images.length, 1);
  const png = decodePng(r.images[0]!.data);
  assert.deepEqual([png.width, png.height], [30, 30]);
});

test('the working directory is /mnt/data: its files can be read, and written files reach the host', { skip }, async () => {
  assert.equal(ci.workDir, workDir);
  const r = await ci.run([
    'import os, csv',
    'print(os.getcwd())',
    'rows = list(csv.DictReader(open("input.csv")))',
    'print(sum(int(r["a"]) + int(r["b"]) for r in rows))',
    'plt.figure(figsize=(1, 1), dpi=20)',
    'plt.savefig("/mnt/data/saved.png")',
    'plt.close("all")',
  ].join('\n'));
  assert.equal(r.error, undefined, r.error?.traceback);
  assert.equal(r.text, '/mnt/data\n10\n');
  const saved = decodePng(new Uint8Array(readFileSync(path.join(workDir, 'saved.png'))));
  assert.deepEqual([saved.width, saved.height], [20, 20]);
});

test('output beyond maxOutputChars is cut with a notice', { skip }, async () => {
  const small = await createCodeInterpreter({ maxOutputChars: 100 });
  try {
    const r = await small.run('print("x" * 500)\nimport os\nos.write(1, b"raw")');
    assert.ok(r.text.startsWith('x'.repeat(100)));
    assert.doesNotMatch(r.text, /x{101}/);
    assert.match(r.text, /\[output cut/);
  } finally {
    await small.close();
  }
});

test('reset() forgets the variables and keeps the files; close() ends it and removes its own folder', { skip }, async () => {
  const own = await createCodeInterpreter({ timeoutMs: 5000 });
  const dir = own.workDir;
  assert.ok(existsSync(dir));
  await own.run('kept = 1\nopen("file.txt", "w").write("still here")');
  await own.reset();
  assert.equal((await own.run('kept')).error?.name, 'NameError');
  assert.equal((await own.run('print(open("file.txt").read())')).text, 'still here\n');
  await own.close();
  assert.equal(existsSync(dir), false);
  await assert.rejects(own.run('1'), (err: unknown) => (err as { code?: string }).code === 'SANDBOX');
});

test('a missing workDir is a BAD_ARGUMENT error', { skip }, async () => {
  await assert.rejects(
    createCodeInterpreter({ workDir: path.join(tmpdir(), 'chatglm-no-such-dir-for-sure') }),
    (err: unknown) => (err as { code?: string }).code === 'BAD_ARGUMENT',
  );
});

/** Pids of every descendant of `root`, from /proc. */
function descendants(root: number): Array<{ pid: number; comm: string }> {
  const children = new Map<number, number[]>();
  const comms = new Map<number, string>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue;
    }
    const close = stat.lastIndexOf(')');
    const comm = stat.slice(stat.indexOf('(') + 1, close);
    const ppid = Number(stat.slice(close + 2).split(' ')[1]);
    comms.set(Number(name), comm);
    children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
  }
  const out: Array<{ pid: number; comm: string }> = [];
  const queue = [root];
  while (queue.length > 0) {
    for (const child of children.get(queue.shift()!) ?? []) {
      out.push({ pid: child, comm: comms.get(child) ?? '' });
      queue.push(child);
    }
  }
  return out;
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

test('killing the Node process leaves no Python process behind', { skip }, async () => {
  const entry = pathToFileURL(path.resolve(here, '../src/index.js')).href;
  // The test owns the folder: the killed child cannot remove it.
  const childDir = mkdtempSync(path.join(tmpdir(), 'chatglm-interp-killed-'));
  // The child starts a cell that forks a second Python process, and both sleep.
  const script = `
    import { createCodeInterpreter } from ${JSON.stringify(entry)};
    const ci = await createCodeInterpreter({ timeoutMs: 120000, workDir: ${JSON.stringify(childDir)} });
    ci.run('import os, time\\nif os.fork() == 0:\\n    time.sleep(120)\\ntime.sleep(120)');
    setTimeout(() => console.log('READY'), 1000);
    setInterval(() => {}, 1000);
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        if (chunk.toString().includes('READY')) resolve();
      });
      child.on('exit', (code) => reject(new Error(`child exited early (${code})`)));
    });
    const tree = descendants(child.pid!);
    const pythons = tree.filter((p) => p.comm.startsWith('python3'));
    assert.ok(pythons.length >= 2, `expected two Python processes under the child, saw ${JSON.stringify(tree)}`);
    child.kill('SIGKILL');
    const deadline = Date.now() + 10_000;
    while (tree.some((p) => alive(p.pid)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(tree.filter((p) => alive(p.pid)), []);
  } finally {
    child.kill('SIGKILL');
    rmSync(childDir, { recursive: true, force: true });
  }
});

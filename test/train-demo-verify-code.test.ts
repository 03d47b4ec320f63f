// tools/train-demo/verify-code: the step that runs every training program of the demo model's data
// in the real code-interpreter sandbox. The expected outputs are Python's own (1+...+10 = 55, an
// undefined name raises NameError, a matplotlib figure is one image), not this script's.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sandboxSkipReason } from './support/interpreter-sandbox.js';

const skip = sandboxSkipReason();
const script = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../tools/train-demo/verify-code.js');

function run(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [script, ...args], { timeout: 120_000 }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout)));
  });
}

test('verify-code runs each program in the sandbox and records output, errors and figures; results are cached', { skip }, async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'verify-code-'));
  try {
    const sum = 'print(sum(range(1, 11)))';
    const broken = 'print(undefined_name)';
    const plot = 'import matplotlib.pyplot as plt\nplt.plot([0, 1], [1, 0])\nplt.show()';
    const programs = path.join(dir, 'programs.json');
    const results = path.join(dir, 'results.json');
    writeFileSync(programs, JSON.stringify([sum, broken, plot, sum]));
    const out = await run([programs, results]);
    assert.match(out, /ran 3 programs .* 1 failed; 0 cached/);
    const r = JSON.parse(readFileSync(results, 'utf8')) as Record<string, { ok: boolean; text: string; error: string; images: number }>;
    assert.deepEqual(r[sum], { ok: true, text: '55\n', error: '', images: 0 });
    assert.equal(r[broken]!.ok, false);
    assert.match(r[broken]!.error, /NameError/);
    assert.equal(r[plot]!.ok, true);
    assert.equal(r[plot]!.images, 1);
    // A second run finds every program in the results file and runs none.
    assert.match(await run([programs, results]), /ran 0 programs .* 0 failed; 3 cached/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * What `npm pack` ships: the product (compiled library and CLI, the addon's sources and build
 * script, the bundled model, the docs), not the tests, tools, training data or source maps.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

test('npm pack lists only the product', async (t) => {
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const out = await new Promise<string | undefined>((resolve) => {
    // --ignore-scripts: list the files as they are (the build already ran for the tests).
    execFile(npm, ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8', maxBuffer: 16 << 20 }, (err, stdout) => resolve(err ? undefined : stdout));
  });
  if (out === undefined) {
    t.skip('npm is not available to run npm pack');
    return;
  }
  const files = (JSON.parse(out) as { files: { path: string }[] }[])[0]!.files.map((f) => f.path);
  const allowed = [/^package\.json$/, /^README\.md$/, /^BENCHMARKS\.md$/, /^bin\/chatglm\.js$/, /^binding\.gyp$/, /^scripts\/build-native\.mjs$/, /^native\/[^/]+\.(c|h|inc)$/, /^models\/chatglm3-demo\/[^/]+$/, /^src\/agent\/interpreter\/runner\.py$/, /^examples\/[^/]+\.mjs$/, /^dist\/src\/.+\.(js|d\.ts)$/, /^dist\/src\/web\/(index\.html|app\.css)$/];
  const stray = files.filter((f) => !allowed.some((re) => re.test(f)));
  assert.deepEqual(stray, []);
  for (const needed of [
    'bin/chatglm.js',
    'dist/src/index.js',
    'dist/src/index.d.ts',
    'dist/src/cli/main.js',
    'native/addon.c',
    'binding.gyp',
    'scripts/build-native.mjs',
    'models/chatglm3-demo/model.safetensors',
    'models/chatglm3-demo/tokenizer.model',
    'models/chatglm3-demo/config.json',
    // The code interpreter's Python side, passed to the sandbox at run time.
    'src/agent/interpreter/runner.py',
    'README.md',
  ]) {
    assert.ok(files.includes(needed), `missing ${needed}`);
  }
});

/**
 * convert writes its temporary file exclusively under a random name in the target folder: a
 * symlink planted at the old predictable name `${out}.partial-${pid}` is never followed, nothing
 * is left behind on success, and an interrupted conversion removes its partial file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { convertToGguf } from '../src/convert/gguf-convert.js';
import { ChatGLMError } from '../src/errors.js';
import { readGgufHeader } from '../src/formats/gguf.js';
import { writeTinyHFModel } from './support/gguf-fixtures.js';
import { tempDir } from './support/formats-tmp.js';

const SPEC = { hidden: 64, heads: 2, groups: 1, ffn: 96, layers: 2, paddedVocab: 288, seed: 11, dtype: 'F32' } as const;

test('convert never follows a planted symlink and leaves no temporary file', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const m = await writeTinyHFModel(path.join(dir, 'hf'), SPEC);
    const outDir = path.join(dir, 'out');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(outDir);
    const out = path.join(outDir, 'model.gguf');
    const victim = path.join(dir, 'victim.txt');
    await writeFile(victim, 'precious');
    await symlink(victim, `${out}.partial-${process.pid}`);
    await convertToGguf({ modelDir: m.dir, out, type: 'f16' });
    assert.equal(await readFile(victim, 'utf8'), 'precious');
    assert.equal((await readGgufHeader(out)).tensors.length > 0, true);
    // Only the output and the planted link remain.
    assert.deepEqual((await readdir(outDir)).sort(), ['model.gguf', `model.gguf.partial-${process.pid}`]);
  } finally {
    await cleanup();
  }
});

test('an interrupted convert removes its partial file and writes nothing', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const m = await writeTinyHFModel(path.join(dir, 'hf'), SPEC);
    const out = path.join(dir, 'model.gguf');
    const ctl = new AbortController();
    await assert.rejects(
      convertToGguf({ modelDir: m.dir, out, type: 'f16', signal: ctl.signal, onProgress: (p) => (p.done === 2 ? ctl.abort() : undefined) }),
      (e: unknown) => e instanceof ChatGLMError && e.code === 'ABORTED',
    );
    assert.deepEqual((await readdir(dir)).filter((f) => f !== 'hf'), []);
  } finally {
    await cleanup();
  }
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

test('chatglm --help lists the commands', () => {
  const out = execFileSync(process.execPath, [path.join(root, 'bin/chatglm.js'), '--help'], { encoding: 'utf8' });
  for (const cmd of ['info', 'logits', 'tokenize', 'detokenize', 'generate', 'chat', 'prompt']) {
    assert.match(out, new RegExp(`\\b${cmd}\\b`));
  }
});

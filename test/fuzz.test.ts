/**
 * A few hundred fuzz cases (fixed seed, so the same inputs every run) through every reader, each
 * batch in a child process with a heap limit and a per-case timeout: every case must end in a
 * clean ChatGLMError or be accepted; no other exception, crash or hang. The seeds themselves must
 * be accepted, and every format must see both outcomes (so the mutations reach the readers).
 * Longer runs: `npm run fuzz -- --cases N --seconds S` (counts in the README).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatSummary, runFuzz } from '../tools/fuzz/run.js';

test('fuzz: 400 cases, seed 1: only clean errors or accepted inputs', { timeout: 240_000 }, async () => {
  const s = await runFuzz({ cases: 400, seconds: 200, seed: 1, batch: 200, timeoutMs: 30_000, heapMb: 512 });
  const report = formatSummary(s);
  assert.equal(s.cases, 400, report);
  assert.deepEqual(s.seedsRejected, [], report);
  assert.equal(s.other + s.crash + s.hang, 0, report);
  assert.equal(s.big, 0, report);
  for (const [format, [clean, accepted]] of Object.entries(s.byFormat)) {
    if (format !== 'toolcall') assert.ok(clean > 0 && accepted > 0, `${format}: ${clean} clean, ${accepted} accepted\n${report}`);
  }
  assert.equal(Object.keys(s.byFormat).length, 8, report);
});

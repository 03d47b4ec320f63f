// Each native context owns its thread pool, kernel choice and scratch buffer, and a Node-API addon
// loads in worker threads too. Two workers hammering it at once, each with a context of another
// thread count, must get exactly what one caller alone gets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { loadAddon } from '../src/backend/native/addon.js';
import { nativeSkipReason, randomF32, seeded } from './support/backend-native-fixtures.js';

const skip = nativeSkipReason();

// CommonJS worker source: loads the same addon file and checks every result against `expected`.
const WORKER = `
const { parentPort, workerData: d } = require('node:worker_threads');
const a = require(d.path);
const ctx = a.createContext(d.threads, '');
const out = new Float32Array(d.n * d.rows);
let mismatches = 0;
for (let it = 0; it < d.iters; it++) {
  out.fill(NaN); // a chunk computed into someone else's buffer must show
  a.matmul(ctx, 0, d.rows, d.cols, d.w, d.x, d.n, out, null);
  for (let i = 0; i < out.length; i++) if (out[i] !== d.expected[i]) { mismatches++; break; }
}
parentPort.postMessage(mismatches);
`;

test('concurrent use from two worker threads gives the single-caller results', { skip }, async () => {
  const load = loadAddon();
  assert.ok(load.addon !== undefined);
  const addon = load.addon;
  const rows = 192;
  const cols = 256;
  const n = 8;
  const rand = seeded(7);
  const w = randomF32(rand, rows * cols, 0.1);
  const x = randomF32(rand, n * cols);
  const ctx = addon.createContext(2, '');
  const expected = new Float32Array(n * rows);
  addon.matmul(ctx, 0, rows, cols, new Uint8Array(w.buffer), x, n, expected, null);
  // Anchor the reference result to a float64 oracle, so the comparison below means something.
  for (let i = 0; i < n; i++) {
    for (let r = 0; r < rows; r++) {
      let s = 0;
      for (let c = 0; c < cols; c++) s += x[i * cols + c]! * w[r * cols + c]!;
      assert.ok(Math.abs(expected[i * rows + r]! - s) <= 1e-4 * Math.max(1, Math.abs(s)), `row ${r} of token ${i}`);
    }
  }
  const run = (threads: number): Promise<number> =>
    new Promise((resolve, reject) => {
      const worker = new Worker(WORKER, {
        eval: true,
        workerData: { path: load.path, threads, rows, cols, n, iters: 400, w: new Uint8Array(w.buffer), x, expected },
      });
      worker.once('message', (m: number) => resolve(m));
      worker.once('error', reject);
    });
  const mismatches = await Promise.all([run(2), run(3)]);
  assert.deepEqual(mismatches, [0, 0]);
});

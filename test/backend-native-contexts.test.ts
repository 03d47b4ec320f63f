// Two native backends in one process (a server holding two models) each keep their own thread
// count, kernel variant and scratch: interleaved calls give each one what it gives alone, and
// disposing one leaves the other working.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nativeBackend, nativeIsas, nativeSkipReason, randomF32, seeded } from './support/backend-native-fixtures.js';
import { ReferenceBackend } from '../src/backend/reference/index.js';
import { quantizeRows } from '../src/numeric/ggml-quants.js';
import type { Backend, Matrix } from '../src/backend/types.js';

const skip = nativeSkipReason();

test('two backends with different threads and kernels run side by side', { skip }, () => {
  const isas = nativeIsas();
  const a = nativeBackend('scalar', 1);
  const b = nativeBackend(isas[isas.length - 1], 2);
  assert.equal(a.info.threads, 1);
  assert.equal(a.info.isa, 'scalar');
  assert.equal(b.info.threads, 2);
  assert.equal(b.info.isa, isas[isas.length - 1]);

  const rows = 72;
  const cols = 128;
  const rand = seeded(11);
  const wf = randomF32(rand, rows * cols, 0.2);
  const bytes = quantizeRows('q8_0', wf, rows, cols);
  const ref = new ReferenceBackend();
  const wr = ref.loadMatrix('q8_0', rows, cols, bytes);
  const wa = a.loadMatrix('q8_0', rows, cols, bytes);
  const wb = b.loadMatrix('q8_0', rows, cols, bytes);
  // A long matmul (many tokens, so the pool and the scratch are used) and a short one, alternating.
  const xs = [randomF32(rand, 37 * cols), randomF32(rand, 1 * cols)];
  const alone = (be: Backend, w: Matrix, x: Float32Array): Float32Array => {
    const out = new Float32Array((x.length / cols) * rows);
    be.matmul(w, x, x.length / cols, out);
    return out;
  };
  const soloA = xs.map((x) => alone(a, wa, x));
  const soloB = xs.map((x) => alone(b, wb, x));
  for (let it = 0; it < 20; it++) {
    const i = it % 2;
    assert.deepEqual(alone(a, wa, xs[i]!), soloA[i], `backend a, round ${it}`);
    assert.deepEqual(alone(b, wb, xs[1 - i]!), soloB[1 - i], `backend b, round ${it}`);
  }
  // Both agree with the reference backend (int8 activations: within a quantization step).
  for (let i = 0; i < 2; i++) {
    const want = alone(ref, wr, xs[i]!);
    for (let k = 0; k < want.length; k++) {
      assert.ok(Math.abs(soloA[i]![k]! - want[k]!) < 2e-2, `a vs reference at ${k}`);
      assert.ok(Math.abs(soloB[i]![k]! - want[k]!) < 2e-2, `b vs reference at ${k}`);
    }
  }
  a.dispose();
  assert.deepEqual(alone(b, wb, xs[0]!), soloB[0], 'b after a was disposed');
  // A disposed backend starts its pool again when used.
  assert.deepEqual(alone(a, wa, xs[0]!), soloA[0], 'a after its own dispose');
  b.dispose();
});

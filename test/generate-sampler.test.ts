/**
 * The sampler against distributions computed by hand, the order of its steps, and the seeded RNG.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  applyRepetitionPenalty,
  argmax,
  candidateDistribution,
  drawFrom,
  sampleToken,
  validateSampling,
} from '../src/generate/sampler.js';
import { createRng } from '../src/generate/rng.js';
import { ChatGLMError } from '../src/errors.js';

const close = (a: number, b: number, tol = 1e-9): void => assert.ok(Math.abs(a - b) <= tol, `${a} != ${b}`);

test('repetition penalty: positive logits of seen ids divided, negative multiplied, each id once', () => {
  const out = applyRepetitionPenalty(Float32Array.from([2, 1, 0, -1, -3]), [0, 3, 3, 0], 2);
  assert.deepEqual([...out], [1, 1, 0, -2, -3]);
});

test('full pipeline by hand: penalty 2, temperature 0.5, top-k 3, top-p 0.9', () => {
  // logits [2, 1, 0, -1, -3], seen {0, 3} -> [1, 1, 0, -2, -3] -> /0.5 -> [2, 2, 0, -4, -6]
  // top-k 3 keeps ids 0, 1, 2; softmax: e^2/(2e^2+1) = 0.46831, 0.46831, 1/(2e^2+1) = 0.06338
  // top-p 0.9: id 2 alone holds 0.06338 <= 0.1 of the mass -> dropped; renormalised 0.5, 0.5.
  const logits = Float32Array.from([2, 1, 0, -1, -3]);
  const d = candidateDistribution(logits, [0, 3], { repetitionPenalty: 2, temperature: 0.5, topK: 3, topP: 0.9 });
  assert.deepEqual(d.ids, [0, 1]);
  close(d.probs[0]!, 0.5);
  close(d.probs[1]!, 0.5);
  // With top-p 0.95 the tail (0.06338) exceeds 0.05 and stays.
  const e = candidateDistribution(logits, [0, 3], { repetitionPenalty: 2, temperature: 0.5, topK: 3, topP: 0.95 });
  const e2 = Math.exp(2);
  assert.deepEqual(e.ids, [0, 1, 2]);
  close(e.probs[0]!, e2 / (2 * e2 + 1));
  close(e.probs[2]!, 1 / (2 * e2 + 1));
});

test('top-k runs before top-p (the order changes the result)', () => {
  // probs 0.4, 0.3, 0.2, 0.1. top-k 2 -> 4/7, 3/7; then top-p 0.5 drops 3/7 (<= 0.5) -> only id 0.
  // (top-p first would keep 0.4 and 0.3, and top-k 2 would then keep both.)
  const logits = Float32Array.from([0.4, 0.3, 0.2, 0.1].map(Math.log));
  const d = candidateDistribution(logits, [], { topK: 2, topP: 0.5 });
  assert.deepEqual(d.ids, [0]);
  close(d.probs[0]!, 1);
});

test('repetition penalty runs before top-k (it can change which token survives)', () => {
  const logits = Float32Array.from([3, 2.5, 0]);
  const d = candidateDistribution(logits, [0], { repetitionPenalty: 2, topK: 1 });
  assert.deepEqual(d.ids, [1]);
  // Greedy also sees the penalty.
  assert.equal(sampleToken(logits, [0], { greedy: true, repetitionPenalty: 2 }, createRng(1)), 1);
  assert.equal(sampleToken(logits, [0], { greedy: true }, createRng(1)), 0);
});

test('top-k keeps ties at the k-th value; temperature 1 is a plain softmax', () => {
  const d = candidateDistribution(Float32Array.from([1, 3, 1, 0]), [], { topK: 2 });
  assert.deepEqual(d.ids, [1, 0, 2]);
  const s = Math.exp(3) + 2 * Math.exp(1);
  close(d.probs[0]!, Math.exp(3) / s);
  close(d.probs[1]!, Math.exp(1) / s);
});

test('temperature near 0 is greedy; argmax takes the lowest index on ties', () => {
  assert.equal(argmax([1, 5, 5, 2]), 1);
  const rng = createRng(3);
  for (let i = 0; i < 20; i++) assert.equal(sampleToken(Float32Array.from([0, 1, 0.99]), [], { temperature: 0 }, rng), 1);
});

test('inverse-CDF draw follows the cumulative probabilities', () => {
  const d = { ids: [7, 3, 9], probs: [0.5, 0.3, 0.2] };
  assert.equal(drawFrom(d, 0), 7);
  assert.equal(drawFrom(d, 0.4999), 7);
  assert.equal(drawFrom(d, 0.5), 3);
  assert.equal(drawFrom(d, 0.7999), 3);
  assert.equal(drawFrom(d, 0.8), 9);
  assert.equal(drawFrom(d, 0.99999), 9);
});

test('seeded sampling: same seed same draws; frequencies match the hand-computed distribution', () => {
  const logits = Float32Array.from([2, 2, 0, -4, -6]); // softmax: 0.4683, 0.4683, 0.0634, ...
  const opts = { temperature: 1, topK: 3 };
  const draw = (seed: number, n: number): number[] => {
    const rng = createRng(seed);
    return Array.from({ length: n }, () => sampleToken(logits, [], opts, rng));
  };
  assert.deepEqual(draw(42, 50), draw(42, 50));
  assert.notDeepEqual(draw(42, 50), draw(43, 50));
  const n = 20000;
  const counts = [0, 0, 0, 0, 0];
  for (const id of draw(5, n)) counts[id]!++;
  const e2 = Math.exp(2);
  const want = [e2, e2, 1].map((x) => x / (2 * e2 + 1));
  for (let i = 0; i < 3; i++) assert.ok(Math.abs(counts[i]! / n - want[i]!) < 0.015, `id ${i}: ${counts[i]! / n} vs ${want[i]}`);
  assert.equal(counts[3]! + counts[4]!, 0);
});

test('the RNG is uniform in [0, 1) and seeds differ', () => {
  const r = createRng(0);
  let sum = 0;
  const buckets = new Array(10).fill(0);
  for (let i = 0; i < 20000; i++) {
    const u = r.next();
    assert.ok(u >= 0 && u < 1);
    sum += u;
    buckets[Math.floor(u * 10)]++;
  }
  close(sum / 20000, 0.5, 0.01);
  for (const b of buckets) assert.ok(Math.abs(b - 2000) < 200);
  assert.notEqual(createRng(1).next(), createRng(2).next());
  assert.notEqual(createRng(1).next(), createRng(2 ** 32 + 1).next());
});

test('bad sampling settings are ChatGLMErrors', () => {
  for (const o of [{ temperature: -1 }, { topP: 0 }, { topP: 1.5 }, { topK: 1.5 }, { repetitionPenalty: 0 }]) {
    assert.throws(() => validateSampling(o), ChatGLMError);
  }
});

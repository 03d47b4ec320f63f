/**
 * The native backend's single ops hand array-size mistakes back as ChatGLMError (BAD_ARGUMENT),
 * like layer() does, instead of the addon's raw RangeError/TypeError.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChatGLMError } from '../src/errors.js';
import { nativeBackend, nativeIsas, nativeSkipReason } from './support/backend-native-fixtures.js';

const skip = nativeSkipReason();

test('native single ops: arrays too short for the shapes are BAD_ARGUMENT ChatGLMErrors', (t) => {
  if (skip !== undefined) return t.skip(skip);
  const be = nativeBackend(nativeIsas()[0]!);
  const isBad = (e: unknown): boolean => e instanceof ChatGLMError && e.code === 'BAD_ARGUMENT' && /^native \w+: /.test(e.message);
  const w = be.loadMatrix('f32', 4, 8, new Uint8Array(4 * 8 * 4));
  assert.throws(() => be.matmul(w, new Float32Array(3), 1, new Float32Array(4)), isBad);
  assert.throws(() => be.rmsnorm(new Float32Array(8), new Float32Array(2), 1, 8, 1e-5, new Float32Array(8)), isBad);
  assert.throws(() => be.swiglu(new Float32Array(4), 1, 8, new Float32Array(8)), isBad);
  assert.throws(() => be.add(new Float32Array(2), new Float32Array(8), 8), isBad);
  assert.throws(() => be.rope(new Float32Array(4), 1, 2, 8, 8, new Float32Array(1), 10000), isBad);
  assert.throws(() => be.embedding(w, [1], new Float32Array(2)), isBad);
  // The same calls with arrays that fit run.
  be.matmul(w, new Float32Array(8), 1, new Float32Array(4));
  be.add(new Float32Array(8), new Float32Array(8), 8);
});

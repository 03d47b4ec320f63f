/**
 * Generation through the KV cache against an oracle that re-runs the whole sequence through a
 * fresh cache at every step (no state carried between steps), on tiny random checkpoints with the
 * reference backend.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generate, generateAll } from '../src/generate/generator.js';
import { CachedSequence } from '../src/generate/sequence.js';
import { argmax } from '../src/generate/sampler.js';
import { ChatGLMError } from '../src/errors.js';
import { tinyModel } from './support/chat-tiny-model.js';
import type { GLMModel } from '../src/model/glm.js';

/** Greedy decoding by a full forward pass over prompt + generated ids at every step. */
function oracleGreedy(model: GLMModel, prompt: number[], steps: number): { ids: number[]; logits: Float32Array[] } {
  const seq = [...prompt];
  const ids: number[] = [];
  const logits: Float32Array[] = [];
  for (let i = 0; i < steps; i++) {
    const l = model.forward([{ cache: model.newCache(seq.length), ids: seq }])[0]!;
    logits.push(l);
    const id = argmax(l);
    ids.push(id);
    seq.push(id);
  }
  return { ids, logits };
}

const PROMPT = [260, 261, 100, 37, 200, 5, 77, 150, 9, 33];

for (const cfg of [
  { name: 'MQA 2 groups', over: {} },
  { name: 'GQA 4 groups, head_dim 16, rope_ratio 50', over: { heads: 8, groups: 4, headDim: 16, hidden: 64, ropeRatio: 50 } },
]) {
  test(`greedy through the KV cache == greedy by full re-forward, 40 steps (${cfg.name})`, async () => {
    const model = await tinyModel(cfg.over, 99);
    const steps = 40;
    const oracle = oracleGreedy(model, PROMPT, steps);
    const seen: Float32Array[] = [];
    // Capture the logits generate() samples from by wrapping forward.
    const spy = {
      config: model.config,
      newCache: (c?: number) => model.newCache(c),
      forward: (inputs: Parameters<GLMModel['forward']>[0]) => {
        const out = model.forward(inputs);
        seen.push(out[0]!);
        return out;
      },
    };
    const r = await generateAll(spy, PROMPT, { greedy: true, maxNewTokens: steps, prefillChunk: 4 });
    assert.deepEqual(r.ids, oracle.ids);
    assert.equal(r.finishReason, 'length');
    // The test means something only if the model does not just repeat one token.
    assert.ok(new Set(oracle.ids).size >= 5, `greedy ids too uniform: ${oracle.ids.join(',')}`);
    // forward calls: 3 prefill chunks (4+4+2 ids) then one per generated token except the last.
    assert.equal(seen.length, 3 + steps - 1);
    // And the logits themselves agree, not only their argmax.
    for (let i = 0; i < steps; i++) {
      const got = seen[2 + i]!;
      const want = oracle.logits[i]!;
      let maxAbs = 0;
      let maxDiff = 0;
      for (let j = 0; j < want.length; j++) {
        maxAbs = Math.max(maxAbs, Math.abs(want[j]!));
        maxDiff = Math.max(maxDiff, Math.abs(want[j]! - got[j]!));
      }
      assert.ok(maxDiff <= 1e-4 * maxAbs, `step ${i}: logits differ by ${maxDiff} (max |logit| ${maxAbs})`);
    }
  });
}

test('a stop id ends generation and is not part of the result; usage counts it', async () => {
  const model = await tinyModel({}, 99);
  const oracle = oracleGreedy(model, PROMPT, 12).ids;
  const k = 7;
  const stop = oracle[k]!;
  const first = oracle.indexOf(stop);
  const r = await generateAll(model, PROMPT, { greedy: true, maxNewTokens: 50, stopIds: [stop] });
  assert.equal(r.finishReason, 'stop');
  assert.equal(r.stopId, stop);
  assert.deepEqual(r.ids, oracle.slice(0, first));
  assert.equal(r.usage.completion_tokens, first + 1);
  assert.equal(r.usage.prompt_tokens, PROMPT.length);
  assert.equal(r.usage.prefill_tokens, PROMPT.length);
});

test('max_new_tokens and max_length bound the output', async () => {
  const model = await tinyModel({}, 99);
  const a = await generateAll(model, PROMPT, { greedy: true, maxNewTokens: 5 });
  assert.equal(a.ids.length, 5);
  assert.equal(a.finishReason, 'length');
  const b = await generateAll(model, PROMPT, { greedy: true, maxNewTokens: 50, maxLength: PROMPT.length + 3 });
  assert.equal(b.ids.length, 3);
});

test('the context length is never exceeded: a long generation stops at it, an oversize prompt fails', async () => {
  const model = await tinyModel({}, 99);
  const r = await generateAll(model, PROMPT, { greedy: true, maxNewTokens: 1000, contextLength: 16 });
  assert.equal(PROMPT.length + r.ids.length, 16);
  assert.equal(r.finishReason, 'length');
  await assert.rejects(
    generateAll(model, PROMPT, { greedy: true, contextLength: PROMPT.length }),
    (e: unknown) => e instanceof ChatGLMError && e.code === 'CONTEXT_OVERFLOW' && /context/.test(e.message),
  );
});

test('a seed reproduces a sampled run exactly; another seed gives another run', async () => {
  const model = await tinyModel({}, 99);
  const opts = { temperature: 1.5, topK: 50, topP: 0.95, maxNewTokens: 24 };
  const a = await generateAll(model, PROMPT, { ...opts, seed: 7 });
  const b = await generateAll(model, PROMPT, { ...opts, seed: 7 });
  const c = await generateAll(model, PROMPT, { ...opts, seed: 8 });
  assert.deepEqual(a.ids, b.ids);
  assert.equal(a.seed, 7);
  assert.notDeepEqual(a.ids, c.ids);
});

test('AbortSignal: a timer firing during generation stops it after the current step', async () => {
  const model = await tinyModel({}, 99);
  const ac = new AbortController();
  let steps = 0;
  const it = generate(model, PROMPT, { greedy: true, maxNewTokens: 200, signal: ac.signal });
  // Abort from the event loop (as a Ctrl-C handler would), not from inside the loop.
  let fired = false;
  for (;;) {
    const r = await it.next();
    if (r.done) {
      assert.equal(r.value.finishReason, 'abort');
      assert.equal(r.value.ids.length, steps);
      break;
    }
    steps++;
    if (steps === 3) setImmediate(() => {
      fired = true;
      ac.abort();
    });
  }
  assert.ok(fired);
  assert.ok(steps >= 3 && steps <= 5, `stopped after ${steps} steps`);
});

test('an already-aborted signal runs no forward step', async () => {
  const model = await tinyModel({}, 99);
  let calls = 0;
  const spy = { config: model.config, newCache: (c?: number) => model.newCache(c), forward: (x: Parameters<GLMModel['forward']>[0]) => (calls++, model.forward(x)) };
  const r = await generateAll(spy, PROMPT, { greedy: true, signal: AbortSignal.abort() });
  assert.equal(r.finishReason, 'abort');
  assert.equal(calls, 0);
  assert.deepEqual(r.ids, []);
});

test('a cached sequence reuses the common prefix: only the new ids are prefilled, and the result equals a fresh run', async () => {
  const model = await tinyModel({}, 99);
  const seq = new CachedSequence(model.newCache(128));
  const first = await generateAll(model, PROMPT, { greedy: true, maxNewTokens: 6, sequence: seq });
  const next = [...PROMPT, ...first.ids, 270 - 3, 40, 41];
  let prefilled = 0;
  const spy = {
    config: model.config,
    newCache: (c?: number) => model.newCache(c),
    forward: (x: Parameters<GLMModel['forward']>[0]) => {
      prefilled += x[0]!.ids.length;
      return model.forward(x);
    },
  };
  const second = await generateAll(spy, next, { greedy: true, maxNewTokens: 1, sequence: seq });
  // The last generated id of turn one was never fed back; it and the 3 new ids are the new part.
  assert.equal(second.usage.prefill_tokens, 4);
  assert.equal(prefilled, 4);
  const fresh = await generateAll(model, next, { greedy: true, maxNewTokens: 1 });
  assert.deepEqual(second.ids, fresh.ids);
  // The same prompt again: everything but the last id comes from the cache.
  const again = await generateAll(model, next, { greedy: true, maxNewTokens: 1, sequence: seq });
  assert.equal(again.usage.prefill_tokens, 1);
  assert.deepEqual(again.ids, fresh.ids);
});

test('abort during a chunked prefill stops before the next chunk; the sequence stays usable', async () => {
  const model = await tinyModel({}, 99);
  const ac = new AbortController();
  let calls = 0;
  const spy = {
    config: model.config,
    newCache: (c?: number) => model.newCache(c),
    forward: (x: Parameters<GLMModel['forward']>[0]) => {
      calls++;
      if (calls === 1) setImmediate(() => ac.abort());
      return model.forward(x);
    },
  };
  const seq = new CachedSequence(model.newCache(64));
  const r = await generateAll(spy, PROMPT, { greedy: true, prefillChunk: 3, signal: ac.signal, sequence: seq });
  assert.equal(r.finishReason, 'abort');
  assert.equal(calls, 1);
  assert.deepEqual(seq.ids, PROMPT.slice(0, 3));
  // The next call continues from the 3 cached ids and gives the fresh-cache answer.
  const again = await generateAll(model, PROMPT, { greedy: true, maxNewTokens: 5, sequence: seq });
  assert.equal(again.usage.prefill_tokens, PROMPT.length - 3);
  const fresh = await generateAll(model, PROMPT, { greedy: true, maxNewTokens: 5 });
  assert.deepEqual(again.ids, fresh.ids);
});

test('vocabLimit: ids at or above it (output-layer padding) are never generated', async () => {
  const model = await tinyModel({}, 99);
  const free = await generateAll(model, PROMPT, { greedy: true, maxNewTokens: 20 });
  // Forbid the most frequent greedy id's range: everything from the smallest generated id up.
  const limit = Math.min(...free.ids);
  const r = await generateAll(model, PROMPT, { greedy: true, maxNewTokens: 20, vocabLimit: limit });
  assert.ok(r.ids.every((id) => id < limit), r.ids.join(','));
  const s = await generateAll(model, PROMPT, { temperature: 5, seed: 3, maxNewTokens: 50, vocabLimit: 10 });
  assert.ok(s.ids.every((id) => id < 10), s.ids.join(','));
});

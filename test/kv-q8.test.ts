/**
 * The q8_0 KV cache: the native cache stores exactly the blocks the reference's rounding gives
 * (bit-equal values), native attention over q8_0 tiles equals the reference's within f32
 * arithmetic, the model's logits with a q8_0 cache stay within a stated tolerance of the f16
 * cache's (tiny random model: 1%; the bundled demo model on a tools prompt: 5%, same argmax at 95%), its memory is 34/64 of f16, and a
 * prompt cache file of a q8_0 cache round-trips.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ReferenceBackend } from '../src/backend/reference/index.js';
import { NativeKVCache } from '../src/backend/native/kv-cache.js';
import type { AttentionParams, Backend, KVCache } from '../src/backend/types.js';
import type { KVType } from '../src/backend/kv-type.js';
import { f16BitsToF32 } from '../src/numeric/half.js';
import { parseGLMConfig } from '../src/model/config.js';
import { GLMModel } from '../src/model/glm.js';
import { loadWeights } from '../src/model/load.js';
import { loadChatModel } from '../src/api.js';
import { argmax } from '../src/generate/sampler.js';
import { CachedSequence } from '../src/generate/sequence.js';
import { loadPromptCache, savePromptCache } from '../src/generate/prompt-cache.js';
import { ChatGLMError } from '../src/errors.js';
import { configJson, MemorySource, randomWeights, type TinyConfig } from './support/model-fixtures.js';
import { nativeBackend, nativeIsas, nativeSkipReason, randomF32, relError, seeded } from './support/backend-native-fixtures.js';

const skip = nativeSkipReason();

/** The values a native q8_0 cache array holds, decoded (34-byte blocks: f16 scale, 32 int8). */
function decodeQ8(bytes: Uint8Array, values: number): Float32Array {
  const out = new Float32Array(values);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let b = 0; b < values / 32; b++) {
    const d = f16BitsToF32(dv.getUint16(b * 34, true));
    for (let i = 0; i < 32; i++) out[b * 32 + i] = Math.fround(d * dv.getInt8(b * 34 + 2 + i));
  }
  return out;
}

function runAttention(be: Backend, kvType: KVType, steps: number[], params: AttentionParams, seed: number): { outs: Float32Array[]; cache: KVCache } {
  const rand = seeded(seed);
  const cache = be.createKVCache(1, params.nGroups, params.headDim, 512, kvType);
  const outs = steps.map((n) => {
    const q = randomF32(rand, n * params.nHeads * params.headDim, 1.5);
    const k = randomF32(rand, n * params.nGroups * params.headDim, 1.5);
    const v = randomF32(rand, n * params.nGroups * params.headDim, 1.5);
    const out = new Float32Array(q.length);
    be.attention(q, k, v, out, [{ cache, rowStart: 0, nTokens: n, startPos: cache.length }], params);
    cache.length += n;
    return out;
  });
  return { outs, cache };
}

test('q8_0 KV: native cache bytes decode to the reference rounding; attention equals the reference on every kernel table', (t) => {
  if (skip !== undefined) return t.skip(skip);
  const ref = new ReferenceBackend();
  for (const [nHeads, nGroups, headDim] of [[32, 2, 128], [4, 1, 64], [6, 3, 32]] as const) {
    const params: AttentionParams = { layer: 0, nHeads, nGroups, headDim, scale: 1 / Math.sqrt(headDim) };
    const steps = [33, 1, 7, 150];
    const want = runAttention(ref, 'q8_0', steps, params, headDim + nHeads);
    const refValues = (want.cache as unknown as { keysOf(l: number): Float32Array }).keysOf(0);
    for (const isa of nativeIsas()) {
      const be = nativeBackend(isa, 2);
      const got = runAttention(be, 'q8_0', steps, params, headDim + nHeads);
      const nc = got.cache as NativeKVCache;
      assert.equal(nc.kvType, 'q8_0');
      const total = nc.length * nGroups * headDim;
      const stored = decodeQ8(nc.keysOf(0) as Uint8Array, total);
      assert.deepEqual(Array.from(stored), Array.from(refValues.subarray(0, total)), `${isa}: stored keys`);
      got.outs.forEach((o, i) => {
        const err = relError(o, want.outs[i]!);
        assert.ok(err < 1e-5, `${isa} heads ${nHeads}/${nGroups} hd ${headDim} step ${i}: rel error ${err}`);
      });
      be.dispose();
    }
  }
});

test('q8_0 KV: memory is 34/64 of f16; head sizes that are not a multiple of 32 are refused', (t) => {
  if (skip !== undefined) return t.skip(skip);
  const f16 = new NativeKVCache(28, 2, 128, 32768);
  const q8 = new NativeKVCache(28, 2, 128, 32768, 'q8_0');
  f16.reserve(1000);
  q8.reserve(1000);
  assert.equal(q8.bytes / f16.bytes, 34 / 64);
  assert.equal(f16.bytes, 1000 * 28 * 2 * 2 * 128 * 2);
  assert.throws(() => new NativeKVCache(2, 2, 40, 64, 'q8_0'), (e: unknown) => e instanceof ChatGLMError && /multiple of 32/.test(e.message));
  assert.throws(() => new ReferenceBackend().createKVCache(2, 2, 48, 64, 'q8_0'), ChatGLMError);
});

const TINY: TinyConfig = { hidden: 64, layers: 2, heads: 4, headDim: 64, groups: 2, ffn: 48, vocab: 53, seqLength: 512 };

async function tinyOn(backend: Backend): Promise<GLMModel> {
  const config = parseGLMConfig(configJson(TINY), 'config.json');
  return new GLMModel(config, await loadWeights(MemorySource.fromF32('tiny', randomWeights(TINY, 77)), config, backend), backend);
}

/** Prefill of `prefill` ids then single-id steps; all logits rows. */
function logitsOf(m: GLMModel, ids: number[], prefill: number): Float32Array[] {
  const cache = m.newCache(ids.length);
  const out: Float32Array[] = [m.forward([{ cache, ids: ids.slice(0, prefill) }])[0]!];
  for (let i = prefill; i < ids.length; i++) out.push(m.forward([{ cache, ids: [ids[i]!] }])[0]!);
  return out;
}

function worst(a: Float32Array[], b: Float32Array[]): number {
  return Math.max(...a.map((x, i) => relError(x, b[i]!)));
}

// The stated tolerance on random weights: q8_0 keys/values move the logits by under 1% of their largest magnitude.
const Q8_TOLERANCE = 1e-2;

test('q8_0 KV: tiny model logits within the stated tolerance of f16 KV, native equal to the reference oracle', async (t) => {
  if (skip !== undefined) return t.skip(skip);
  const rand = seeded(9);
  const ids = Array.from({ length: 90 }, () => Math.floor(rand() * TINY.vocab));
  const nat = await tinyOn(nativeBackend(undefined, 2));
  const ref = await tinyOn(new ReferenceBackend());
  const f16 = logitsOf(nat, ids, 70);
  nat.kvType = 'q8_0';
  ref.kvType = 'q8_0';
  const q8 = logitsOf(nat, ids, 70);
  const q8ref = logitsOf(ref, ids, 70);
  const drift = worst(q8, f16);
  const vsOracle = worst(q8, q8ref);
  t.diagnostic(`q8_0 vs f16 KV: ${drift.toExponential(2)}; native q8_0 vs reference q8_0: ${vsOracle.toExponential(2)}`);
  assert.ok(drift > 0, 'the q8_0 cache is in use');
  assert.ok(drift < Q8_TOLERANCE, `q8_0 vs f16: ${drift}`);
  assert.ok(vsOracle < 1e-4, `native vs reference q8_0: ${vsOracle}`);
});

test('q8_0 KV: demo model logits on a tools prompt within the stated tolerance of f16 KV', async (t) => {
  if (skip !== undefined) return t.skip(skip);
  const chat = await loadChatModel(undefined, { backend: 'native', threads: 2 });
  try {
    const tools = [{ name: 'get_current_weather', description: 'Get the current weather', parameters: { type: 'object', properties: { location: { type: 'string' } } } }];
    const ids = chat.renderPrompt([chat.format.toolSystemMessage(tools), { role: 'user', content: 'What is the weather in Paris? And tell me a random number please.' }]).ids;
    const m = chat.model as GLMModel;
    const all = (): Float32Array => m.forward([{ cache: m.newCache(ids.length), ids, allLogits: true }])[0]!;
    const f16 = all();
    m.kvType = 'q8_0';
    const q8 = all();
    const V = m.config.vocabSize;
    let drift = 0;
    let agree = 0;
    for (let p = 0; p < ids.length; p++) {
      const a = f16.subarray(p * V, (p + 1) * V);
      const b = q8.subarray(p * V, (p + 1) * V);
      drift = Math.max(drift, relError(b, a));
      if (argmax(a) === argmax(b)) agree++;
    }
    t.diagnostic(`demo model, ${ids.length} positions: q8_0 vs f16 KV worst ${drift.toExponential(2)}, argmax agrees at ${agree}`);
    // This small trained model has larger key outliers than random weights: its stated tolerance
    // is 5% of the largest logit per position, and the same next token at >= 95% of positions.
    assert.ok(drift > 0 && drift < 5e-2, `q8_0 vs f16: ${drift}`);
    assert.ok(agree >= 0.95 * ids.length, `argmax agrees at ${agree} of ${ids.length}`);
  } finally {
    chat.dispose();
  }
});

test('q8_0 KV: a prompt cache file round-trips with bit-identical logits', async (t) => {
  if (skip !== undefined) return t.skip(skip);
  const m = await tinyOn(nativeBackend(undefined, 2));
  m.kvType = 'q8_0';
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'chatglm-kvq8-'));
  try {
    const file = path.join(dir, 'q8.kvc');
    const rand = seeded(12);
    const ids = Array.from({ length: 40 }, () => Math.floor(rand() * TINY.vocab));
    const a = new CachedSequence(m.newCache(64));
    m.forward([{ cache: a.cache, ids: ids.slice(0, 30) }]);
    a.appended(ids.slice(0, 30));
    const want = m.forward([{ cache: a.cache, ids: ids.slice(30) }])[0]!;
    a.appended(ids.slice(30));
    await savePromptCache(file, a, 'tiny', 30);
    const b = new CachedSequence(m.newCache(64));
    assert.deepEqual(await loadPromptCache(file, b, 'tiny'), { restored: 30 });
    assert.deepEqual(Array.from(m.forward([{ cache: b.cache, ids: ids.slice(30) }])[0]!), Array.from(want));
    // An f16 cache of the same model does not take the file.
    m.kvType = 'f16';
    const r = await loadPromptCache(file, new CachedSequence(m.newCache(64)), 'tiny');
    assert.equal(r.restored, 0);
    assert.match(r.notice ?? '', /layout/);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('--kv-type on the CLI and kvType in loadChatModel', async () => {
  const bin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bin/chatglm.js');
  const ok = spawnSync(process.execPath, [bin, 'generate', '--prompt', 'Hello there', '--greedy', '--max-new-tokens', '3', '--json', '--kv-type', 'q8_0'], { encoding: 'utf8' });
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal((JSON.parse(ok.stdout) as { ids: number[] }).ids.length, 3);
  const bad = spawnSync(process.execPath, [bin, 'generate', '--prompt', 'Hello', '--kv-type', 'q4'], { encoding: 'utf8' });
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /--kv-type must be f16 or q8_0/);
  const chat = await loadChatModel(undefined, { backend: 'reference', kvType: 'q8_0' });
  try {
    assert.equal((chat.model as GLMModel).kvType, 'q8_0');
    assert.equal((chat.model.newCache(8) as unknown as { kvType: string }).kvType, 'q8_0');
  } finally {
    chat.dispose();
  }
});

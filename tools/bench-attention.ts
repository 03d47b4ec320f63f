/**
 * Attention alone on the native backend, at a real model's head shape and a long context: the time
 * of one layer's attention for a decode step (1 token) and for a block of prompt tokens in the
 * middle of a long prompt (whose per-token cost is the average over the whole prompt, as the work
 * grows linearly with the position), each multiplied by the layer count. No model file: the cache
 * is filled with random keys and values (through attention calls with one query head per group,
 * which write the same cache rows for less work). For BENCHMARKS.md; not a test.
 *
 * usage: node dist/tools/bench-attention.js [--shape 6b|1.7b] [--context 8192] [--kv f16|q8_0]
 *        [--threads 2] [--reps 5] [--prefill-block 256] [--no-prefill]
 */
import { createBackend } from '../src/backend/select.js';
import type { AttentionParams, Backend, KVCache } from '../src/backend/types.js';

const SHAPES: Record<string, { heads: number; groups: number; headDim: number; layers: number }> = {
  '1.7b': { heads: 16, groups: 2, headDim: 128, layers: 28 },
  '6b': { heads: 32, groups: 2, headDim: 128, layers: 28 },
};

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1]! : dflt;
}

function random(n: number, seed: { s: number }): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    seed.s = (Math.imul(seed.s, 1664525) + 1013904223) >>> 0;
    a[i] = (seed.s / 4294967296 - 0.5) * 2;
  }
  return a;
}

/** Fills positions [cache.length, upTo) with random rows, one cheap attention call per chunk. */
function fill(be: Backend, cache: KVCache, upTo: number, groups: number, headDim: number, seed: { s: number }): void {
  const chunk = 512;
  while (cache.length < upTo) {
    const n = Math.min(chunk, upTo - cache.length);
    const kv = random(n * groups * headDim, seed);
    const q = random(n * groups * headDim, seed);
    const params: AttentionParams = { layer: 0, nHeads: groups, nGroups: groups, headDim, scale: 1 / Math.sqrt(headDim) };
    be.attention(q, kv, kv, new Float32Array(q.length), [{ cache, rowStart: 0, nTokens: n, startPos: cache.length }], params);
    cache.length += n;
  }
}

/**
 * Median wall ms of `reps` attention calls of nTokens query rows at startPos (the cache rows are
 * rewritten, length unchanged), and the process CPU ms per call (all threads; on a shared machine
 * the steadier figure, as waiting for a core does not count).
 */
function time(be: Backend, cache: KVCache, startPos: number, nTokens: number, reps: number, seed: { s: number }): { wall: number; cpu: number } {
  const { heads, groups, headDim } = shape;
  const q = random(nTokens * heads * headDim, seed);
  const kv = random(nTokens * groups * headDim, seed);
  const out = new Float32Array(q.length);
  const params: AttentionParams = { layer: 0, nHeads: heads, nGroups: groups, headDim, scale: 1 / Math.sqrt(headDim) };
  const ms: number[] = [];
  be.attention(q, kv, kv, out, [{ cache, rowStart: 0, nTokens, startPos }], params); // warms the scratch and the pool
  const c0 = process.cpuUsage();
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    be.attention(q, kv, kv, out, [{ cache, rowStart: 0, nTokens, startPos }], params);
    ms.push(performance.now() - t0);
  }
  const c = process.cpuUsage(c0);
  ms.sort((a, b) => a - b);
  return { wall: ms[ms.length >> 1]!, cpu: (c.user + c.system) / 1000 / reps };
}

const shapeName = arg('shape', '6b');
const shape = SHAPES[shapeName]!;
if (shape === undefined) throw new Error(`unknown shape ${shapeName} (1.7b, 6b)`);

async function main(): Promise<void> {
  const context = Number(arg('context', '8192'));
  const kv = arg('kv', 'f16') as 'f16' | 'q8_0';
  const threads = Number(arg('threads', '2'));
  const reps = Number(arg('reps', '5'));
  const block = Number(arg('prefill-block', '256'));
  const be = await createBackend('native', { threads });
  const cache = be.createKVCache(1, shape.groups, shape.headDim, context + block, kv);
  const seed = { s: 12345 };
  fill(be, cache, context, shape.groups, shape.headDim, seed);
  const L = shape.layers;
  const dec = time(be, cache, context - 1, 1, reps, seed);
  process.stdout.write(
    `${shapeName} (${shape.heads} heads, ${shape.groups} KV groups, head dim ${shape.headDim}, ${L} layers), kv ${kv}, ${threads} threads\n` +
      `decode at position ${context - 1}: ${(dec.wall * L).toFixed(1)} ms/token wall (median of ${reps}), ` +
      `${(dec.cpu * L).toFixed(1)} ms/token CPU (attention only)\n`,
  );
  if (!process.argv.includes('--no-prefill')) {
    // Tokens [mid, mid + block) of a context-token prompt: their per-token cost is the prompt's average.
    const mid = Math.max(0, (context >> 1) - (block >> 1));
    const pre = time(be, cache, mid, block, Math.max(1, reps >> 1), seed);
    process.stdout.write(
      `prefill of a ${context}-token prompt, average per token (block of ${block} at ${mid}): ` +
        `${((pre.wall / block) * L).toFixed(2)} ms/token wall, ${((pre.cpu / block) * L).toFixed(2)} ms/token CPU (attention only)\n`,
    );
  }
  be.dispose?.();
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});

/**
 * Per-op profile of the batched decode step (what one tick of `chatglm serve` runs): S streams,
 * each prefilled alone (not timed), then `gen` steps of ONE forward over all S streams. Every
 * Backend method is wrapped with a timer (wall time and process CPU time, which includes the
 * pool's workers). For BENCHMARKS.md; not a test.
 *
 * usage: node dist/tools/bench-batch-profile.js MODEL.gguf [--streams 1,4] [--gen 16] [--prompt 32]
 *                                                         [--threads N] [--unfused]
 *
 * --unfused hides the backend's fused single-sequence `layer` and batched `layers` ops, so the
 * model calls the separate ops and each one is timed (the wrapper costs a little per call).
 */
import { createBackend } from '../src/backend/select.js';
import { profiledBackend, type OpTime } from './profiled-backend.js';
import { openModel } from '../src/model/open.js';
import { FAMILIES } from '../src/families/registry.js';
import type { GLMModel } from '../src/model/glm.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

const unfused = process.argv.includes('--unfused');

function argmax(l: Float32Array): number {
  let best = 0;
  for (let i = 1; i < l.length; i++) if (l[i]! > l[best]!) best = i;
  return best;
}

async function main(): Promise<void> {
  const file = process.argv[2];
  if (file === undefined || file.startsWith('--')) throw new Error('usage: bench-batch-profile MODEL [--streams 1,4] [--gen 16] [--prompt 32] [--threads N] [--unfused]');
  const streams = arg('streams', '1,4').split(',').map(Number);
  const gen = Number(arg('gen', '16'));
  const promptTokens = Number(arg('prompt', '32'));
  const th = arg('threads', '');
  const table = new Map<string, OpTime>();
  let on = false;
  const inner = await createBackend('native', th === '' ? {} : { threads: Number(th) });
  const be = profiledBackend(inner, table, { hide: unfused ? ['layer', 'batchLayer'] : [], enabled: () => on });
  const { model } = await openModel(file, { families: FAMILIES, backend: be });
  const glm = model as GLMModel;
  const vocab = glm.config.vocabSize;
  const prompt = (s: number): number[] => Array.from({ length: promptTokens }, (_, i) => (i * 7919 + s * 104729 + 13) % vocab);
  // Page the weights in once.
  glm.forward([{ cache: glm.newCache(promptTokens + 1), ids: prompt(0) }]);
  for (const S of streams) {
    table.clear();
    const caches = Array.from({ length: S }, () => glm.newCache(promptTokens + gen + 1));
    const next = caches.map((cache, s) => argmax(glm.forward([{ cache, ids: prompt(s) }])[0]!));
    on = true;
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    let argmaxMs = 0;
    for (let step = 0; step < gen; step++) {
      const logits = glm.forward(caches.map((cache, s) => ({ cache, ids: [next[s]!] })));
      const a0 = performance.now();
      logits.forEach((l, s) => (next[s] = argmax(l)));
      argmaxMs += performance.now() - a0;
    }
    const wall = performance.now() - t0;
    const cu = process.cpuUsage(c0);
    on = false;
    const cpu = (cu.user + cu.system) / 1000;
    process.stdout.write(
      `\n${S} stream(s), ${gen} steps: wall ${wall.toFixed(0)} ms (${(wall / gen).toFixed(2)} ms/step, ${((S * gen) / (wall / 1000)).toFixed(1)} tok/s), cpu ${cpu.toFixed(0)} ms\n`,
    );
    const rows = [...table.entries()].sort((a, b) => b[1].wall - a[1].wall);
    let opsWall = 0;
    for (const [k, a] of rows) {
      opsWall += a.wall;
      process.stdout.write(
        `  ${k.padEnd(22)} calls ${String(a.calls).padStart(5)}  wall ${(a.wall / gen).toFixed(2).padStart(7)} ms/step (${((a.wall / wall) * 100).toFixed(1).padStart(5)}%)  cpu ${(a.cpu / gen).toFixed(2).padStart(7)} ms/step\n`,
      );
    }
    process.stdout.write(`  ${'argmax (JS)'.padEnd(22)}              wall ${(argmaxMs / gen).toFixed(2).padStart(7)} ms/step\n`);
    process.stdout.write(`  ${'(outside backend ops)'.padEnd(22)}              wall ${((wall - opsWall - argmaxMs) / gen).toFixed(2).padStart(7)} ms/step\n`);
  }
  inner.dispose?.();
}

main().catch((err: unknown) => {
  process.stderr.write(`bench-batch-profile: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});

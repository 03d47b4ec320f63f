/**
 * Per-op profile of the native backend on a model: wraps every Backend method with a timer and
 * runs one prompt and a few decode steps, then prints where the time went (wall time and process
 * CPU time, which includes the pool's workers). For BENCHMARKS.md; not a test.
 *
 * usage: node dist/tools/bench-profile.js MODEL.gguf [PROMPT_TOKENS=128] [GEN_TOKENS=16] [THREADS] [--fused]
 *
 * By default the backend's fused `layer` op is hidden, so the model calls the separate ops and each
 * one is timed (the timing wrapper costs a little per call); with --fused the model uses `layer` as
 * it normally does and the profile shows one row for all layers.
 */
import { createBackend } from '../src/backend/select.js';
import { profiledBackend, type OpTime } from './profiled-backend.js';
import { openModel } from '../src/model/open.js';
import { FAMILIES } from '../src/families/registry.js';

const fused = process.argv.includes('--fused');

async function main(): Promise<void> {
  const [file, p, g, th] = process.argv.slice(2).filter((a) => a !== '--fused');
  if (file === undefined) throw new Error('usage: bench-profile MODEL [PROMPT] [GEN] [THREADS]');
  const promptTokens = Number(p ?? 128);
  const genTokens = Number(g ?? 16);
  const table = new Map<string, OpTime>();
  let phase = 'prefill';
  const inner = await createBackend('native', th === undefined ? {} : { threads: Number(th) });
  const be = profiledBackend(inner, table, { hide: fused ? [] : ['layer'], label: () => phase });
  const { model } = await openModel(file, { families: FAMILIES, backend: be });
  const cache = model.newCache(promptTokens + genTokens + 1);
  const prompt = Array.from({ length: promptTokens }, (_, i) => 300 + ((i * 7919) % 50000));
  const phases: Record<string, { wall: number; cpu: number }> = {};
  const timed = (name: string, f: () => void): void => {
    phase = name;
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    f();
    const c = process.cpuUsage(c0);
    phases[name] = { wall: performance.now() - t0, cpu: (c.user + c.system) / 1000 };
  };
  let next = 0;
  timed('prefill', () => {
    const l = model.forward([{ cache, ids: prompt }])[0]!;
    next = l.indexOf(Math.max(...l));
  });
  timed('decode', () => {
    for (let i = 0; i < genTokens; i++) {
      const l = model.forward([{ cache, ids: [next] }])[0]!;
      let b = 0;
      for (let j = 1; j < l.length; j++) if (l[j]! > l[b]!) b = j;
      next = b;
    }
  });
  for (const [name, ph] of Object.entries(phases)) {
    process.stdout.write(`\n${name}: wall ${ph.wall.toFixed(0)} ms, cpu ${ph.cpu.toFixed(0)} ms\n`);
    const rows = [...table.entries()].filter(([k]) => k.startsWith(`${name} `)).sort((a, b) => b[1].wall - a[1].wall);
    let opsWall = 0;
    for (const [k, a] of rows) {
      opsWall += a.wall;
      process.stdout.write(
        `  ${k.slice(name.length + 1).padEnd(22)} calls ${String(a.calls).padStart(5)}  wall ${a.wall.toFixed(1).padStart(8)} ms (${((a.wall / ph.wall) * 100).toFixed(1).padStart(5)}%)  cpu ${a.cpu.toFixed(1).padStart(8)} ms\n`,
      );
    }
    process.stdout.write(`  ${'(outside backend ops)'.padEnd(22)}             wall ${(ph.wall - opsWall).toFixed(1).padStart(8)} ms (${(((ph.wall - opsWall) / ph.wall) * 100).toFixed(1).padStart(5)}%)\n`);
  }
  inner.dispose?.();
}

main().catch((err: unknown) => {
  process.stderr.write(`bench-profile: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});

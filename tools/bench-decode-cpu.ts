/**
 * Decode speed of one model file on the native backend, timed two ways: wall clock, and this
 * process's CPU time (user + system). With --threads 1 on a shared core the CPU-time figure counts
 * only the cycles our thread got, so before/after comparisons of a kernel stay meaningful while
 * other jobs take turns on the core (memory-bandwidth contention still shows). The native addon
 * is the one $CHATGLM_NATIVE_ADDON names, or the built one. Not a test.
 *
 *   taskset -c 0 node dist/tools/bench-decode-cpu.js MODEL.gguf [tokens=32] [rounds=3] [threads=1]
 */
import { createBackend } from '../src/backend/select.js';
import { openModel } from '../src/model/open.js';
import { FAMILIES } from '../src/families/registry.js';
import { argmax } from '../src/generate/sampler.js';

async function main(): Promise<void> {
  const [file, tokensArg, roundsArg, threadsArg] = process.argv.slice(2);
  if (file === undefined) throw new Error('usage: bench-decode-cpu MODEL.gguf [tokens] [rounds] [threads]');
  const tokens = Number(tokensArg ?? 32), rounds = Number(roundsArg ?? 3), threads = Number(threadsArg ?? 1);
  const backend = await createBackend('native', { threads });
  const { model } = await openModel(file, { families: FAMILIES, backend });
  const wall: number[] = [];
  const cpu: number[] = [];
  for (let r = -1; r < rounds; r++) {
    const cache = model.newCache(tokens + 8);
    let next = argmax(model.forward([{ cache, ids: [300, 1000, 2000, 3000] }])[0]!);
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    for (let i = 0; i < tokens; i++) next = argmax(model.forward([{ cache, ids: [next] }])[0]!);
    const t1 = performance.now();
    const c1 = process.cpuUsage(c0);
    if (r < 0) continue; // untimed: pages the weights in, starts the threads
    wall.push(tokens / ((t1 - t0) / 1000));
    cpu.push(tokens / ((c1.user + c1.system) / 1e6 / threads));
  }
  const best = (a: number[]): number => Math.max(...a);
  console.log(
    JSON.stringify({ file, threads, tokens, wall_tok_s: wall.map((x) => +x.toFixed(2)), cpu_tok_s: cpu.map((x) => +x.toFixed(2)), best_wall: +best(wall).toFixed(2), best_cpu: +best(cpu).toFixed(2) }),
  );
  backend.dispose?.();
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});

/**
 * The int8 dot-product ceiling (native/int8_peak.c) and what a prefill of a GLM shape asks of it:
 * shared by tools/bench-int8-peak.ts and tools/bench.ts, which reports prefill as a fraction of it.
 */
import type { NativeAddon } from '../src/backend/native/addon.js';
import type { SynthShape } from './bench-synth.js';

export interface PeakRow {
  kind: string;
  threads: number;
  /** Best of the runs, in int8 ops per second (a multiply-accumulate counts 2) of wall time. */
  ops: number;
  runs: number[];
  /**
   * Best of the runs per second of process CPU time per thread: what the loop does while it has
   * the core. On a shared machine this is the ceiling to compare CPU-time figures with.
   */
  opsCpu: number;
}

/** Iterations per run: about 0.1-0.3 s on a 4 GHz core for every loop (10 instructions an iteration). */
const ITERS = 50_000_000;

/** Best of `runs` runs of one loop on `threads` threads (the best, so a descheduled run does not count). */
export function measurePeak(addon: NativeAddon, kind: string, threads: number, runs = 3): PeakRow {
  const xs: number[] = [];
  let opsCpu = 0;
  for (let r = 0; r < runs; r++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    const rate = addon.int8Peak(kind, threads, ITERS);
    const wall = (performance.now() - t0) / 1000;
    const c = process.cpuUsage(c0);
    xs.push(rate);
    // the loop's ops (rate x its own wall time, about the call's) over the CPU seconds per thread
    opsCpu = Math.max(opsCpu, (rate * wall) / ((c.user + c.system) / 1e6 / threads));
  }
  return { kind, threads, ops: Math.max(...xs), runs: xs, opsCpu };
}

/**
 * int8 ops per prompt token of a prefill: 2 x the weights of every layer's four matmuls (QKV,
 * dense, gate+up, down). The embedding is a lookup and the output head runs for the last token
 * only, so neither counts; attention (f32, grows with the context) is not int8 work either.
 */
export function prefillOpsPerToken(s: SynthShape): number {
  const hd = s.hidden / s.heads;
  const qkv = (s.heads + 2 * s.groups) * hd * s.hidden;
  const dense = s.hidden * s.hidden;
  const up = 2 * s.ffn * s.hidden;
  const down = s.hidden * s.ffn;
  return 2 * s.layers * (qkv + dense + up + down);
}

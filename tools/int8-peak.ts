/**
 * The int8 dot-product ceiling (native/int8_peak.c) and what a prefill of a GLM shape asks of it:
 * shared by tools/bench-int8-peak.ts and tools/bench.ts, which reports prefill as a fraction of it.
 */
import type { NativeAddon } from '../src/backend/native/addon.js';
import type { SynthShape } from './bench-synth.js';

export interface PeakRow {
  kind: string;
  threads: number;
  /** Best of the runs, in int8 ops per second (a multiply-accumulate counts 2). */
  ops: number;
  runs: number[];
}

/** Iterations per run: about 0.1-0.3 s on a 4 GHz core for every loop (10 instructions an iteration). */
const ITERS = 50_000_000;

/** Best of `runs` runs of one loop on `threads` threads (the best, so a descheduled run does not count). */
export function measurePeak(addon: NativeAddon, kind: string, threads: number, runs = 3): PeakRow {
  const xs: number[] = [];
  for (let r = 0; r < runs; r++) xs.push(addon.int8Peak(kind, threads, ITERS));
  return { kind, threads, ops: Math.max(...xs), runs: xs };
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

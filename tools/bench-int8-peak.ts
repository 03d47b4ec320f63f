/**
 * The machine's int8 dot-product peak per ISA loop and thread count: register-only loops of one
 * instruction (AVX-512 VNNI vpdpbusd on 512- and 256-bit registers, AVX-VNNI, AVX2 maddubs+madd,
 * NEON SDOT on aarch64), no memory traffic. This is the ceiling prefill (int8 matmuls) can reach;
 * tools/bench.ts reports prefill as a fraction of it. Not a test.
 *
 * usage: node dist/tools/bench-int8-peak.js [--threads 1,2] [--runs 3] [--json FILE]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadAddon } from '../src/backend/native/addon.js';
import { SHAPES } from './bench-synth.js';
import { measurePeak, prefillOpsPerToken, type PeakRow } from './int8-peak.js';

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1]! : dflt;
}

function main(): void {
  const load = loadAddon();
  if (load.addon === undefined) throw new Error(`the native addon is not built: ${load.reason}`);
  const addon = load.addon;
  const threads = arg('threads', Array.from({ length: os.availableParallelism() }, (_, i) => i + 1).join(','))
    .split(',')
    .map(Number);
  const runs = Number(arg('runs', '3'));
  const rows: Array<PeakRow & { load: number }> = [];
  for (const kind of addon.int8PeakKinds()) {
    for (const t of threads) {
      const l = os.loadavg()[0]!;
      // one untimed run first, so a core waking from idle does not count
      addon.int8Peak(kind, t, 5_000_000);
      rows.push({ ...measurePeak(addon, kind, t, runs), load: Number(l.toFixed(2)) });
    }
  }
  const lines = [
    `int8 dot-product peak, ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${new Date().toISOString()}; best of ${runs} runs (min-max in brackets); load = 1-minute load average before the row`,
    '',
    '| loop | threads | load | int8 GOPS | GOPS per CPU second per thread | 1.7B-shape prefill tok/s at 100% | 6B-shape prefill tok/s at 100% |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    const g = (x: number): string => (x / 1e9).toFixed(0);
    lines.push(
      `| ${r.kind} | ${r.threads} | ${r.load.toFixed(1)} | ${g(r.ops)} (${g(Math.min(...r.runs))}-${g(Math.max(...r.runs))}) | ${g(r.opsCpu)} | ${(r.ops / prefillOpsPerToken(SHAPES['1.7b']!)).toFixed(0)} | ${(r.ops / prefillOpsPerToken(SHAPES['6b']!)).toFixed(0)} |`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  const json = arg('json', '');
  if (json !== '') {
    mkdirSync(path.dirname(json), { recursive: true });
    writeFileSync(json, `${JSON.stringify({ date: new Date().toISOString(), cpu: os.cpus()[0]?.model, rows }, null, 2)}\n`);
  }
}

main();

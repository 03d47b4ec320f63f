/**
 * The quantized matmul at prefill sizes against the int8 peak: one q4_0/q8_0/k-quant matrix of a GLM shape
 * times n tokens, per kernel table (ISA), as int8 GOPS and as a fraction of the same thread count's
 * peak of the widest int8 loop (tools/bench-int8-peak). Random weights and activations; the
 * weights go through the addon's repack as a model's do. Not a test.
 *
 * usage: node dist/tools/bench-prefill-gemm.js [--threads 1] [--tokens 16,64,512] [--shape 13696x2048]
 *        [--types q4_0,q8_0,q4_k,q5_k,q6_k,q4_1,q5_0,q5_1] [--isas avx2,avx512vnni] [--runs 3]
 * Types other than q4_0 / q8_0 stay in ggml's layout, as a model's do.
 * Wall time and process CPU time are both shown: on a shared machine CPU time is the kernel's cost.
 */
import { randomFillSync } from 'node:crypto';
import os from 'node:os';
import { loadAddon } from '../src/backend/native/addon.js';
import { f32ToF16Bits } from '../src/numeric/half.js';
import { measurePeak } from './int8-peak.js';

function arg(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1]! : dflt;
}

// block: bytes per block of `elems` weights; scales: byte offsets of the block's f16 scales (set to small
// values so the random blocks stay finite); repack: the addon's x8 layout (q4_0 / q8_0 only).
interface TypeInfo {
  id: number;
  block: number;
  elems: number;
  scales: number[];
  repack: boolean;
}
const TYPE_ID: Record<string, TypeInfo> = {
  q8_0: { id: 3, block: 34, elems: 32, scales: [0], repack: true },
  q4_0: { id: 4, block: 18, elems: 32, scales: [0], repack: true },
  q4_k: { id: 7, block: 144, elems: 256, scales: [0, 2], repack: false },
  q5_k: { id: 8, block: 176, elems: 256, scales: [0, 2], repack: false },
  q6_k: { id: 9, block: 210, elems: 256, scales: [208], repack: false },
  q4_1: { id: 10, block: 20, elems: 32, scales: [0, 2], repack: false },
  q5_0: { id: 11, block: 22, elems: 32, scales: [0], repack: false },
  q5_1: { id: 12, block: 24, elems: 32, scales: [0, 2], repack: false },
};

function main(): void {
  const load = loadAddon();
  if (load.addon === undefined) throw new Error(`the native addon is not built: ${load.reason}`);
  const addon = load.addon;
  const threads = Number(arg('threads', '1'));
  const tokens = arg('tokens', '16,64,512').split(',').map(Number);
  const [rows, cols] = arg('shape', '13696x2048').split('x').map(Number) as [number, number];
  const types = arg('types', 'q4_0,q8_0').split(',');
  const runs = Number(arg('runs', '3'));
  const isas = arg('isas', addon.isas().filter((i) => i !== 'scalar').join(',')).split(',');
  const kind = addon.int8PeakKinds()[0]!;
  addon.int8Peak(kind, threads, 5_000_000);
  const peak = measurePeak(addon, kind, threads).opsCpu;
  const lines = [
    `${os.cpus()[0]?.model ?? 'CPU'}; ${threads} thread(s); peak (${kind}, per CPU second) ${(peak / 1e9).toFixed(0)} GOPS; matrix ${rows}x${cols}; best of ${runs}; load ${os.loadavg()[0]!.toFixed(1)}`,
    '',
    '| type | kernels | tokens | ms wall | ms cpu | GOPS (by cpu time) | % of peak |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const type of types) {
    const t = TYPE_ID[type];
    if (t === undefined) throw new Error(`--types: ${Object.keys(TYPE_ID).join(', ')}, not ${type}`);
    const nb = cols / t.elems;
    const src = new Uint8Array(rows * nb * t.block);
    randomFillSync(src);
    for (let b = 0; b < rows * nb; b++)
      for (const at of t.scales) {
        const d = f32ToF16Bits(0.001 + 0.01 * (src[b * t.block + at]! / 255));
        src[b * t.block + at] = d & 0xff;
        src[b * t.block + at + 1] = d >> 8;
      }
    const w = t.repack ? new Uint8Array(src.length) : src;
    if (t.repack) addon.repack(t.id, rows, cols, src, w);
    for (const isa of isas) {
      const ctx = addon.createContext(threads, isa);
      for (const n of tokens) {
        const x = new Float32Array(n * cols).map(() => Math.random() * 2 - 1);
        const out = new Float32Array(n * rows);
        addon.matmul(ctx, t.id, rows, cols, w, x, n, out, null);
        let bestWall = Infinity;
        let bestCpu = Infinity;
        for (let r = 0; r < runs; r++) {
          const c0 = process.cpuUsage();
          const t0 = performance.now();
          addon.matmul(ctx, t.id, rows, cols, w, x, n, out, null);
          const wall = performance.now() - t0;
          const c = process.cpuUsage(c0);
          bestWall = Math.min(bestWall, wall);
          bestCpu = Math.min(bestCpu, (c.user + c.system) / 1000);
        }
        const ops = 2 * rows * cols * n;
        // CPU time covers every thread; divide by the threads to compare with the peak of as many
        const gops = ops / ((bestCpu / threads) * 1e6);
        lines.push(`| ${type} | ${isa} | ${n} | ${bestWall.toFixed(1)} | ${bestCpu.toFixed(1)} | ${gops.toFixed(0)} | ${((gops * 1e9 * 100) / peak).toFixed(0)}% |`);
      }
      addon.release(ctx);
    }
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

main();

/**
 * `npm run bench`: the engine against llama.cpp on the same synthetic GGUF files.
 *
 * For each shape (ChatGLM3-6B and a 1.7B-shape model of the same family) and type (q4_0, q8_0):
 * writes a random-weight GGUF (cached in .bench/models), runs `chatglm bench` (native backend) and
 * llama.cpp (node-llama-cpp 3.21.1, installed on demand into .bench/llama, never a dependency of
 * this package) in separate child processes one after the other, and prints prefill tok/s,
 * decode tok/s, TTFT, peak RSS, the decode weight-streaming rate in GB/s next to this machine's
 * memory read bandwidth measured in the same run, and the ratios. Not a test.
 *
 * Options: --shapes 1.7b,6b  --types q4_0,q8_0 (also q4_k_m, q5_k_m: llama.cpp's mixes)  --threads N  --prompt-tokens 128  --gen-tokens 64
 *          --runs 3  --no-llama  --llama-threads N[,M]  --llama-flash off,on  --llama-batch 512[,2048]
 *          --json FILE  --warmup 1 (untimed runs per engine; 0 for 8k-token prompts)  --kv-type f16|q8_0 (our engine only)
 * Each engine does --warmup (default one) untimed runs in its process before the timed ones; every row shows
 * the median and the min-max of its runs, and the 1-minute load average when the row started.
 * llama.cpp runs at every combination of --llama-threads, --llama-flash (flash attention) and
 * --llama-batch, so the comparison is with its best settings.
 * llama.cpp runs with the same thread count by default; --threads and --llama-threads take comma
 * lists (on a shared machine llama.cpp's spin barriers make it much faster with fewer threads), and
 * the ratios compare each engine's best run, so sharing the machine cannot flatter either.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadAddon } from '../src/backend/native/addon.js';
import { SHAPES, decodeWeightBytes, writeSyntheticModel, type SynthType } from './bench-synth.js';
import { measurePeak, prefillOpsPerToken } from './int8-peak.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const NLC_VERSION = '3.21.1';

interface Figures {
  prefill_tok_s: number;
  decode_tok_s: number;
  ttft_ms: number;
  peak_rss_mb: number;
  /** Each timed run (min and max come from these). */
  runs?: { prefill_tok_s: number[]; decode_tok_s: number[]; ttft_ms: number[] };
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

function lastJson(stdout: string): Figures {
  const line = stdout.trim().split('\n').filter((l) => l.startsWith('{')).pop();
  if (line === undefined) throw new Error(`no JSON in output: ${stdout.slice(-500)}`);
  return JSON.parse(line) as Figures;
}

function run(cmd: string, args: string[], what: string): Figures | undefined {
  const r = spawnSync(cmd, args, { cwd: root, encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) {
    process.stderr.write(`${what} failed (exit ${r.status ?? r.signal}):\n${(r.stderr ?? '').slice(-2000)}\n`);
    return undefined;
  }
  return lastJson(r.stdout);
}

function ensureLlama(): string | undefined {
  const dir = path.join(root, '.bench', 'llama');
  const pkg = path.join(dir, 'node_modules', 'node-llama-cpp', 'package.json');
  if (existsSync(pkg)) return dir;
  mkdirSync(dir, { recursive: true });
  if (!existsSync(path.join(dir, 'package.json'))) writeFileSync(path.join(dir, 'package.json'), '{"name":"bench-llama","private":true}\n');
  process.stderr.write(`installing node-llama-cpp@${NLC_VERSION} into ${dir} (benchmark only)...\n`);
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const r = spawnSync(npm, ['install', '--no-audit', '--no-fund', `node-llama-cpp@${NLC_VERSION}`], { cwd: dir, stdio: 'inherit' });
  return r.status === 0 && existsSync(pkg) ? dir : undefined;
}

const fmt = (x: number, d = 1): string => (Number.isFinite(x) ? x.toFixed(d) : '-');

async function main(): Promise<void> {
  const shapes = arg('shapes', '1.7b,6b').split(',');
  const types = arg('types', 'q4_0,q8_0').split(',') as SynthType[];
  // Comma lists run each engine at several thread counts; ratios take each engine's best run.
  const ourThreads = arg('threads', String(os.availableParallelism())).split(',').map(Number);
  const threads = ourThreads[0]!;
  const promptTokens = arg('prompt-tokens', '128');
  const genTokens = arg('gen-tokens', '64');
  const runs = arg('runs', '3');
  // Long prompts (8k tokens: minutes per run) can skip the warm-up run; both engines then skip it.
  const warmup = arg('warmup', '1');
  const kvType = process.argv.includes('--kv-type') ? arg('kv-type', 'f16') : undefined;
  const withLlama = !process.argv.includes('--no-llama');
  const llamaThreads = arg('llama-threads', String(threads)).split(',').map(Number);
  const llamaFlash = arg('llama-flash', 'off,on').split(',');
  const llamaBatch = arg('llama-batch', '512').split(',');
  const modelsDir = path.join(root, '.bench', 'models');

  const load = loadAddon();
  if (load.addon === undefined) throw new Error(`the native addon is not built: ${load.reason}`);
  const probe = load.addon.createContext(threads, '');
  const info = load.addon.info(probe);
  const bandwidth = load.addon.membw(probe, 1024, 5);
  load.addon.release(probe);
  // The int8 ceiling prefill is reported against: the widest loop on as many threads as ours.
  const peakKind = load.addon.int8PeakKinds()[0];
  const peak = peakKind !== undefined ? measurePeak(load.addon, peakKind, threads) : undefined;
  process.stderr.write(`native kernels: ${info.isa}, ${info.threads} threads; memory read bandwidth ${bandwidth.toFixed(1)} GB/s\n`);
  const llamaDir = withLlama ? ensureLlama() : undefined;

  const rows: Record<string, unknown>[] = [];
  for (const shape of shapes) {
    for (const type of types) {
      process.stderr.write(`== ${SHAPES[shape]?.name ?? shape} ${type}\n`);
      const file = await writeSyntheticModel(modelsDir, shape, type, (s) => process.stderr.write(`${s}\n`));
      const fileGB = statSync(file).size / 1e9;
      const weightGB = decodeWeightBytes(SHAPES[shape]!, type) / 1e9;
      const oursRuns: Array<Figures & { threads: number; load: number; settings?: string }> = [];
      for (const ot of ourThreads) {
        const common = ['--prompt-tokens', promptTokens, '--gen-tokens', genTokens, '--threads', String(ot), '--runs', runs, '--warmup', warmup];
        if (kvType !== undefined) common.push('--kv-type', kvType);
        const load = os.loadavg()[0];
        const f = run(process.execPath, [path.join(root, 'bin', 'chatglm.js'), 'bench', '--model', file, '--backend', 'native', '--json', ...common], 'chatglm bench');
        if (f !== undefined) oursRuns.push({ ...f, threads: ot, load: Number(load.toFixed(2)) });
      }
      const llamaRuns: Array<Figures & { threads: number; load: number; settings?: string }> = [];
      if (llamaDir !== undefined) {
        for (const lt of llamaThreads) {
          for (const fa of llamaFlash) {
            for (const batch of llamaBatch) {
              const load = os.loadavg()[0];
              const f = run(process.execPath, [path.join(root, 'dist', 'tools', 'bench-llama.js'), llamaDir, file, promptTokens, genTokens, String(lt), runs, fa, batch, warmup], 'llama.cpp');
              if (f !== undefined) llamaRuns.push({ ...f, threads: lt, load: Number(load.toFixed(2)), settings: `fa ${fa}, batch ${batch}` });
            }
          }
        }
      }
      const ourDecode = oursRuns.length > 0 ? Math.max(...oursRuns.map((f) => f.decode_tok_s)) : undefined;
      const ourPrefill = oursRuns.length > 0 ? Math.max(...oursRuns.map((f) => f.prefill_tok_s)) : undefined;
      const bestDecode = llamaRuns.length > 0 ? Math.max(...llamaRuns.map((f) => f.decode_tok_s)) : undefined;
      const bestPrefill = llamaRuns.length > 0 ? Math.max(...llamaRuns.map((f) => f.prefill_tok_s)) : undefined;
      const row = {
        model: `${SHAPES[shape]!.name} ${type}`,
        shape,
        file_gb: Number(fileGB.toFixed(2)),
        weights_gb: Number(weightGB.toFixed(3)),
        ours: oursRuns,
        llama: llamaRuns,
        decode_ratio: ourDecode && bestDecode ? Number((ourDecode / bestDecode).toFixed(2)) : undefined,
        prefill_ratio: ourPrefill && bestPrefill ? Number((ourPrefill / bestPrefill).toFixed(2)) : undefined,
      };
      rows.push(row);
      process.stderr.write(`${JSON.stringify(row)}\n`);
    }
  }

  const out = {
    date: new Date().toISOString(),
    cpu: os.cpus()[0]?.model ?? 'unknown',
    threads,
    isa: info.isa,
    bandwidth_gb_s: Number(bandwidth.toFixed(2)),
    int8_peak: peak !== undefined ? { kind: peak.kind, threads: peak.threads, gops: Number((peak.ops / 1e9).toFixed(1)) } : undefined,
    load_avg_start: os.loadavg().map((x) => Number(x.toFixed(2))),
    prompt_tokens: Number(promptTokens),
    gen_tokens: Number(genTokens),
    rows,
  };
  const jsonFile = arg('json', path.join(root, 'bench-out', 'inference.json'));
  mkdirSync(path.dirname(jsonFile), { recursive: true });
  writeFileSync(jsonFile, `${JSON.stringify(out, null, 2)}\n`);

  const lines = [
    `memory read bandwidth: ${bandwidth.toFixed(1)} GB/s (${threads} threads); kernels: ${info.isa}` +
      (peak !== undefined ? `; int8 peak ${(peak.ops / 1e9).toFixed(0)} GOPS (${peak.kind}, ${threads} threads; tools/bench-int8-peak)` : ''),
    '',
    `median of ${runs} run(s) after ${warmup === '1' ? 'a warm-up run' : `${warmup} warm-up runs`} (min-max in brackets); load avg = 1-minute load average when the row started`,
    '',
    '| model | file | engine (threads) | load avg | prefill tok/s | prefill % of int8 peak | decode tok/s | TTFT ms | peak RSS MiB | decode GB/s (% of bw) |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  type F = Figures & { threads: number; load: number; settings?: string };
  const spread = (median: number, xs: number[] | undefined, d: number): string =>
    xs !== undefined && xs.length > 1 ? `${fmt(median, d)} (${fmt(Math.min(...xs), d)}-${fmt(Math.max(...xs), d)})` : fmt(median, d);
  for (const r of rows as Array<{ model: string; shape: string; file_gb: number; weights_gb: number; ours: F[]; llama: F[]; decode_ratio?: number; prefill_ratio?: number }>) {
    const opsPerToken = prefillOpsPerToken(SHAPES[r.shape]!);
    const ofPeak = (tokS: number): string => (peak !== undefined ? `${fmt((tokS * opsPerToken * 100) / peak.ops, 0)}%` : '');
    const entries: Array<[string, F]> = [];
    for (const f of r.ours) entries.push(['chatglm.ts', f]);
    for (const f of r.llama) entries.push(['llama.cpp', f]);
    for (const [name, f] of entries) {
      const gbs = f.decode_tok_s * r.weights_gb;
      lines.push(
        `| ${r.model} | ${fmt(r.file_gb, 2)} GB | ${name} (${f.threads}${f.settings !== undefined ? `, ${f.settings}` : ''}) | ${fmt(f.load, 1)} | ${spread(f.prefill_tok_s, f.runs?.prefill_tok_s, 1)} | ${ofPeak(f.prefill_tok_s)} | ${spread(f.decode_tok_s, f.runs?.decode_tok_s, 2)} | ${fmt(f.ttft_ms, 0)} | ${fmt(f.peak_rss_mb, 0)} | ${fmt(gbs)} (${fmt((gbs / bandwidth) * 100, 0)}%) |`,
      );
    }
    if (r.decode_ratio !== undefined) lines.push(`| ${r.model} | | best vs best | | ${fmt(r.prefill_ratio ?? NaN, 2)}x | | ${fmt(r.decode_ratio, 2)}x | | | |`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});

/**
 * The fuzz runner: mutates small valid files of every format the project reads (see seeds.ts and
 * mutate.ts) and runs each through its reader (targets.ts) in child processes with a heap limit
 * and a per-case timeout, then reports how each case ended:
 *   clean     rejected with a ChatGLMError (what a bad file should get)
 *   accepted  read without error
 *   other     any other exception (a bug: a raw JS error reached the caller)
 *   crash     the worker died (fatal heap exhaustion, abort, a signal)
 *   hang      the case ran past the timeout and was killed
 * and flags cases slower than 5 s or whose worker grew past 500 MiB. Local files only.
 *
 *   npm run fuzz -- --cases 2000 --seconds 600 [--seed 1] [--batch 100] [--timeout-ms 10000]
 *                   [--heap-mb 512] [--save DIR]
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fuzzCase } from './cases.js';
import { buildSeeds, type Seed } from './seeds.js';
import type { CaseReport } from './worker.js';

export interface FuzzOptions {
  cases: number;
  /** Stop starting cases after this many seconds. */
  seconds: number;
  seed: number;
  /** Cases per worker process (spawning costs ~0.3 s; a crash or hang only loses the rest of a batch). */
  batch: number;
  timeoutMs: number;
  heapMb: number;
  /** Where to write the inputs of findings (crash, hang, other, slow, big). */
  saveDir?: string;
  onProgress?: (done: number, summary: FuzzSummary) => void;
}

export interface Finding {
  index: number;
  format: string;
  seed: string;
  kind: 'other' | 'crash' | 'hang' | 'slow' | 'big';
  detail: string;
}

export interface FuzzSummary {
  cases: number;
  clean: number;
  accepted: number;
  other: number;
  crash: number;
  hang: number;
  slow: number;
  big: number;
  /** Per format: [clean, accepted, other + crash + hang]. */
  byFormat: Record<string, [number, number, number]>;
  /** The seeds themselves (cases 0..n-1) that were not accepted: the harness would be fuzzing nothing. */
  seedsRejected: string[];
  maxMs: number;
  maxPeakMiB: number;
  findings: Finding[];
  seconds: number;
}

export const SLOW_MS = 5000;
export const BIG_MIB = 500;

const WORKER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'worker.js');

interface BatchResult {
  /** The next case to run. */
  next: number;
  stopped: boolean;
}

function runBatch(o: FuzzOptions, from: number, to: number, deadline: number, tmp: string, seeds: readonly Seed[], s: FuzzSummary): Promise<BatchResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [`--max-old-space-size=${o.heapMb}`, '--stack-size=984', WORKER, String(o.seed), String(from), String(to), String(deadline), tmp], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let current: number | undefined;
    let lastDone = from - 1;
    let timer: NodeJS.Timeout | undefined;
    let hung = false;
    let stderr = '';
    let buf = '';
    const arm = (): void => {
      if (timer !== undefined) clearTimeout(timer);
      timer = setTimeout(() => {
        hung = true;
        child.kill('SIGKILL');
      }, o.timeoutMs);
    };
    const record = (index: number, r: CaseReport): void => {
      const c = fuzzCase(seeds, o.seed, index);
      s.cases++;
      s[r.outcome]++;
      const f = (s.byFormat[c.format] ??= [0, 0, 0]);
      if (r.outcome === 'clean') f[0]++;
      else if (r.outcome === 'accepted') f[1]++;
      else f[2]++;
      if (index < seeds.length && r.outcome !== 'accepted') s.seedsRejected.push(`${c.seedName}: ${r.detail ?? r.outcome}`);
      s.maxMs = Math.max(s.maxMs, r.ms);
      const grew = r.peakMiB > s.maxPeakMiB;
      s.maxPeakMiB = Math.max(s.maxPeakMiB, r.peakMiB);
      if (r.outcome === 'other') finding(index, 'other', r.detail ?? '');
      if (r.ms > SLOW_MS) {
        s.slow++;
        finding(index, 'slow', `${r.ms} ms`);
      }
      if (grew && r.peakMiB > BIG_MIB) {
        s.big++;
        finding(index, 'big', `worker peak ${r.peakMiB} MiB`);
      }
    };
    const finding = (index: number, kind: Finding['kind'], detail: string): void => {
      const c = fuzzCase(seeds, o.seed, index);
      s.findings.push({ index, format: c.format, seed: c.seedName, kind, detail });
      if (o.saveDir !== undefined) {
        const dir = o.saveDir;
        void mkdir(dir, { recursive: true }).then(() => writeFile(path.join(dir, `case-${index}-${kind}.${c.format}`), c.data));
      }
    };
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.startsWith('S ')) {
          current = Number(line.slice(2));
          arm();
        } else if (line.startsWith('D ')) {
          const sp = line.indexOf(' ', 2);
          const index = Number(line.slice(2, sp));
          record(index, JSON.parse(line.slice(sp + 1)) as CaseReport);
          lastDone = index;
          current = undefined;
          if (timer !== undefined) clearTimeout(timer);
          o.onProgress?.(s.cases, s);
        } else if (line.startsWith('X ')) {
          stderr += line.slice(2) + '\n';
        }
      }
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-2000);
    });
    child.on('close', (code, signal) => {
      if (timer !== undefined) clearTimeout(timer);
      if (current !== undefined) {
        // The worker died (or was killed) inside a case: that case is the finding.
        s.cases++;
        const kind = hung ? 'hang' : 'crash';
        s[kind]++;
        const c = fuzzCase(seeds, o.seed, current);
        (s.byFormat[c.format] ??= [0, 0, 0])[2]++;
        const tail = stderr.trim().split('\n').filter((l) => l.trim() !== '').slice(-3).join(' | ');
        finding(current, kind, hung ? `killed after ${o.timeoutMs} ms` : `exit ${code ?? ''} ${signal ?? ''}: ${tail.slice(0, 400)}`);
        o.onProgress?.(s.cases, s);
        resolve({ next: current + 1, stopped: false });
        return;
      }
      if (code !== 0) {
        // Failed outside any case (e.g. building the seeds): report it and stop.
        s.findings.push({ index: -1, format: '-', seed: '-', kind: 'crash', detail: `worker exit ${code ?? signal}: ${stderr.slice(-400)}` });
        s.crash++;
        resolve({ next: to, stopped: true });
        return;
      }
      resolve({ next: lastDone + 1, stopped: lastDone + 1 < to });
    });
  });
}

export async function runFuzz(o: FuzzOptions): Promise<FuzzSummary> {
  const started = Date.now();
  const deadline = started + o.seconds * 1000;
  const seeds = await buildSeeds();
  const s: FuzzSummary = {
    cases: 0, clean: 0, accepted: 0, other: 0, crash: 0, hang: 0, slow: 0, big: 0,
    byFormat: {}, seedsRejected: [], maxMs: 0, maxPeakMiB: 0, findings: [], seconds: 0,
  };
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'chatglm-fuzz-'));
  try {
    let next = 0;
    while (next < o.cases && Date.now() < deadline) {
      const r = await runBatch(o, next, Math.min(o.cases, next + o.batch), deadline, tmp, seeds, s);
      if (r.stopped && Date.now() >= deadline) break;
      next = r.next;
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  s.seconds = (Date.now() - started) / 1000;
  return s;
}

export function formatSummary(s: FuzzSummary): string {
  const lines = [
    `${s.cases} cases in ${s.seconds.toFixed(1)} s: ${s.clean} clean errors, ${s.accepted} accepted, ${s.other} other exceptions, ${s.crash} crashes, ${s.hang} hangs; ` +
      `${s.slow} over ${SLOW_MS / 1000} s, ${s.big} over ${BIG_MIB} MiB (slowest case ${s.maxMs} ms, worker peak ${s.maxPeakMiB} MiB)`,
    ...Object.entries(s.byFormat).map(([f, [c, a, bad]]) => `  ${f.padEnd(13)} clean ${c}, accepted ${a}, findings ${bad}`),
  ];
  if (s.seedsRejected.length > 0) lines.push(`seeds not accepted: ${s.seedsRejected.join('; ')}`);
  for (const f of s.findings.slice(0, 40)) lines.push(`  ${f.kind} #${f.index} (${f.seed}): ${f.detail}`);
  return lines.join('\n');
}

function parseArgs(argv: readonly string[]): FuzzOptions {
  const o: FuzzOptions = { cases: 500, seconds: 120, seed: 1, batch: 100, timeoutMs: 10_000, heapMb: 512 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const v = argv[i + 1];
    const num = (): number => {
      const n = Number(v);
      if (!Number.isFinite(n) || n < 0) throw new Error(`${a} needs a number, got ${String(v)}`);
      i++;
      return n;
    };
    if (a === '--cases') o.cases = num();
    else if (a === '--seconds') o.seconds = num();
    else if (a === '--seed') o.seed = num();
    else if (a === '--batch') o.batch = Math.max(1, num());
    else if (a === '--timeout-ms') o.timeoutMs = num();
    else if (a === '--heap-mb') o.heapMb = num();
    else if (a === '--save') {
      o.saveDir = v;
      i++;
    } else throw new Error(`unknown option ${a} (use --cases, --seconds, --seed, --batch, --timeout-ms, --heap-mb, --save)`);
  }
  return o;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  let options: FuzzOptions;
  try {
    options = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`fuzz: ${(err as Error).message}\n`);
    process.exit(2);
  }
  let last = 0;
  options.onProgress = (done, s) => {
    if (Date.now() - last > 5000) {
      last = Date.now();
      process.stderr.write(`fuzz: ${done} cases (${s.clean} clean, ${s.accepted} accepted, ${s.other + s.crash + s.hang} findings)\n`);
    }
  };
  const s = await runFuzz(options);
  process.stdout.write(formatSummary(s) + '\n');
  process.exitCode = s.other + s.crash + s.hang + s.seedsRejected.length > 0 ? 1 : 0;
}

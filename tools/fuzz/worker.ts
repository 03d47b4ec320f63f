/**
 * Fuzz worker (a child process of run.ts): runs cases [from, to) of a run and reports each on
 * stdout as one line, "S i" before it starts and "D i {json}" when it ends, so the parent can
 * tell which case a crash or hang belongs to. Started with a heap limit; the parent kills it on
 * a per-case timeout.
 *
 * Usage: node worker.js SEED FROM TO DEADLINE_MS TMPDIR
 */
import { mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { ChatGLMError } from '../../src/errors.js';
import { fuzzCase } from './cases.js';
import { buildSeeds } from './seeds.js';
import { runTarget } from './targets.js';

export type Outcome = 'clean' | 'accepted' | 'other';

export interface CaseReport {
  outcome: Outcome;
  ms: number;
  /** Peak resident set size of the worker so far, MiB. */
  peakMiB: number;
  /** For 'other' (and 'clean', the error code): what was thrown. */
  detail?: string;
}

async function main(): Promise<void> {
  const [seedArg, fromArg, toArg, deadlineArg, tmpArg] = process.argv.slice(2);
  const runSeed = Number(seedArg);
  const from = Number(fromArg);
  const to = Number(toArg);
  const deadline = Number(deadlineArg);
  const seeds = await buildSeeds();
  const dir = await mkdtemp(path.join(tmpArg!, 'case-'));
  const file = path.join(dir, 'input');
  const out = (line: string): void => {
    process.stdout.write(line + '\n');
  };
  try {
    for (let i = from; i < to && Date.now() < deadline; i++) {
      const c = fuzzCase(seeds, runSeed, i);
      out(`S ${i}`);
      const t0 = performance.now();
      let report: CaseReport;
      try {
        await runTarget(c.format, c.data, file);
        report = { outcome: 'accepted', ms: 0, peakMiB: 0 };
      } catch (err) {
        if (err instanceof ChatGLMError) report = { outcome: 'clean', ms: 0, peakMiB: 0, detail: err.code };
        else {
          const e = err instanceof Error ? err : new Error(String(err));
          const where = (e.stack ?? '').split('\n').find((l) => l.includes('/src/')) ?? '';
          report = { outcome: 'other', ms: 0, peakMiB: 0, detail: `${e.name}: ${e.message.slice(0, 300)} ${where.trim()}` };
        }
      }
      report.ms = Math.round(performance.now() - t0);
      report.peakMiB = Math.round(process.resourceUsage().maxRSS / 1024);
      out(`D ${i} ${JSON.stringify(report)}`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

process.on('unhandledRejection', (err) => {
  process.stdout.write(`X unhandled rejection: ${String(err).slice(0, 300)}\n`);
  process.exit(3);
});

main().catch((err: unknown) => {
  process.stdout.write(`X worker failed: ${String(err).slice(0, 300)}\n`);
  process.exit(2);
});

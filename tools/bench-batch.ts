/**
 * `npm run bench:batch`: aggregate decode tokens/s of the batched forward step (what each tick of
 * `chatglm serve` runs) with 1, 2, 4 and 8 concurrent greedy streams, on a synthetic random-weight
 * GGUF of the real 1.7B shape (tools/bench-synth.ts, cached in .bench/models). Not a test.
 *
 * Each stream gets its own prompt (prefilled first, not timed), then every step runs ONE forward
 * over all S streams (one token each) and takes each stream's argmax. With S = 1 that is the
 * single-sequence path (the fused native layer); with S > 1 the multi-row matmuls read each weight
 * once for all rows. The greedy ids of every stream are checked equal to the same stream run alone.
 *
 * Options: --shape 1.7b  --type q4_0  --streams 1,2,4,8  --prompt-tokens 32  --gen-tokens 16
 *          --threads N  --json FILE
 */
import os from 'node:os';
import path from 'node:path';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createNativeBackend } from '../src/backend/native/index.js';
import { openModel } from '../src/model/open.js';
import type { GLMModel } from '../src/model/glm.js';
import { writeSyntheticModel, type SynthType } from './bench-synth.js';
import { FAMILIES } from '../src/families/registry.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

function argmax(l: Float32Array): number {
  let best = 0;
  for (let i = 1; i < l.length; i++) if (l[i]! > l[best]!) best = i;
  return best;
}

/**
 * Decodes `gen` greedy tokens for each prompt, all streams in one forward per step; returns ids,
 * decode seconds and the process CPU seconds they took (on a busy machine, with one thread, CPU
 * time says what the step costs better than wall time, which also counts waiting for a core).
 */
function decode(model: GLMModel, prompts: number[][], gen: number): { ids: number[][]; seconds: number; cpuSeconds: number } {
  const caches = prompts.map((p) => model.newCache(p.length + gen + 1));
  const next = prompts.map((p, s) => argmax(model.forward([{ cache: caches[s]!, ids: p }])[0]!));
  const ids = prompts.map((_, s) => [next[s]!]);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let step = 1; step < gen; step++) {
    const logits = model.forward(caches.map((cache, s) => ({ cache, ids: [next[s]!] })));
    logits.forEach((l, s) => {
      next[s] = argmax(l);
      ids[s]!.push(next[s]!);
    });
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(c0);
  return { ids, seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6 };
}

async function main(): Promise<void> {
  const shape = arg('shape', '1.7b');
  const type = arg('type', 'q4_0') as SynthType;
  const streams = arg('streams', '1,2,4,8').split(',').map(Number);
  const promptTokens = Number(arg('prompt-tokens', '32'));
  const gen = Number(arg('gen-tokens', '16'));
  const threads = Number(arg('threads', String(os.availableParallelism())));
  const file = await writeSyntheticModel(path.join(root, '.bench', 'models'), shape, type, (s) => process.stderr.write(`${s}\n`));
  const backend = createNativeBackend({ threads });
  const { model } = await openModel(file, { families: FAMILIES, backend });
  const glm = model as GLMModel;
  const vocab = glm.config.vocabSize;
  const prompt = (s: number): number[] => Array.from({ length: promptTokens }, (_, i) => (i * 7919 + s * 104729 + 13) % vocab);
  const load = os.loadavg()[0]!;
  console.log(`${shape} ${type}, ${threads} threads, prompt ${promptTokens}, ${gen} decode steps per stream; load average at start ${load.toFixed(1)} on ${os.availableParallelism()} cores`);
  // Warm-up (page in the weights) and the alone reference for the equality check.
  const maxS = Math.max(...streams);
  const alone = Array.from({ length: maxS }, (_, s) => decode(glm, [prompt(s)], gen).ids[0]!);
  const rows: { streams: number; tok_s: number; seconds: number; speedup: number; tok_cpu_s: number; cpu_speedup: number }[] = [];
  let single = 0;
  let singleCpu = 0;
  for (const S of streams) {
    const r = decode(glm, Array.from({ length: S }, (_, s) => prompt(s)), gen);
    r.ids.forEach((ids, s) => {
      if (ids.join() !== alone[s]!.join()) throw new Error(`stream ${s} of ${S}: batched greedy ids differ from the stream alone`);
    });
    const tokS = (S * (gen - 1)) / r.seconds;
    const tokCpu = (S * (gen - 1)) / r.cpuSeconds;
    if (S === 1) {
      single = tokS;
      singleCpu = tokCpu;
    }
    rows.push({ streams: S, tok_s: tokS, seconds: r.seconds, speedup: single > 0 ? tokS / single : NaN, tok_cpu_s: tokCpu, cpu_speedup: singleCpu > 0 ? tokCpu / singleCpu : NaN });
    console.log(
      `${S} stream(s): ${tokS.toFixed(2)} tok/s aggregate (${(tokS / S).toFixed(2)} per stream)${single > 0 ? `, ${(tokS / single).toFixed(2)}x one stream` : ''}; ` +
        `${tokCpu.toFixed(2)} tok per CPU-second${singleCpu > 0 ? ` (${(tokCpu / singleCpu).toFixed(2)}x)` : ''}; ids equal to alone`,
    );
  }
  console.log(`load average at end ${os.loadavg()[0]!.toFixed(1)}`);
  const json = arg('json', '');
  if (json !== '') writeFileSync(json, JSON.stringify({ shape, type, threads, promptTokens, gen, loadStart: load, loadEnd: os.loadavg()[0], rows }, null, 2));
  backend.dispose();
}

await main();

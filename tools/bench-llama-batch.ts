/**
 * llama.cpp's batched decode for comparison with `npm run bench:batch`: node-llama-cpp (installed
 * on demand into .bench/llama by tools/bench.ts, never a dependency) with ONE context holding S
 * sequences on the same GGUF file; all S sequences generate greedily at once (node-llama-cpp
 * batches their tokens into one llama_decode per step). Prints one JSON line per S.
 *
 * usage: node dist/tools/bench-llama-batch.js NODE_LLAMA_CPP_DIR MODEL.gguf STREAMS(1,2,4,8) PROMPT_TOKENS GEN_TOKENS THREADS
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { NodeLlamaCpp } from './node-llama-cpp-types.js';


async function main(): Promise<void> {
  const [dir, modelPath, st, p, g, th] = process.argv.slice(2);
  if (dir === undefined || modelPath === undefined) throw new Error('usage: bench-llama-batch DIR MODEL STREAMS PROMPT GEN THREADS');
  const streams = (st ?? '1,2,4,8').split(',').map(Number);
  const promptTokens = Number(p ?? 32);
  const gen = Number(g ?? 16);
  const threads = Number(th ?? 2);
  const nlc = (await import(pathToFileURL(path.join(dir, 'node_modules', 'node-llama-cpp', 'dist', 'index.js')).href)) as NodeLlamaCpp;
  const llama = await nlc.getLlama({ gpu: false, build: 'never', logLevel: 'error', maxThreads: threads, progressLogs: false });
  const model = await llama.loadModel({ modelPath, gpuLayers: 0 });
  const vocab = 65024;
  // The same prompts as tools/bench-batch.ts.
  const prompt = (s: number): number[] => Array.from({ length: promptTokens }, (_, i) => (i * 7919 + s * 104729 + 13) % vocab);
  for (const S of streams) {
    const context = await model.createContext({ contextSize: S * (promptTokens + gen + 8), batchSize: 512, threads, sequences: S });
    const first: number[] = [];
    const end: number[] = [];
    let tokens = 0;
    await Promise.all(
      Array.from({ length: S }, async (_, s) => {
        const seq = context.getSequence();
        let n = 0;
        for await (const _t of seq.evaluate(prompt(s), { temperature: 0 })) {
          if (n === 0) first.push(performance.now());
          n++;
          if (n >= gen) break;
        }
        end.push(performance.now());
        tokens += n - 1;
      }),
    );
    const seconds = (Math.max(...end) - Math.max(...first)) / 1000;
    process.stdout.write(`${JSON.stringify({ streams: S, tok_s: Number((tokens / seconds).toFixed(2)), seconds: Number(seconds.toFixed(3)) })}\n`);
    await context.dispose();
  }
  await model.dispose();
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench-llama-batch: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);

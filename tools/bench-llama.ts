/**
 * Runs in a child process of tools/bench.ts: times llama.cpp (through node-llama-cpp, installed by
 * the bench into .bench/, never a dependency of this package) on a GGUF file with exactly the
 * definitions `chatglm bench` uses, and prints one JSON line.
 *
 * usage: node dist/tools/bench-llama.js NODE_LLAMA_CPP_DIR MODEL.gguf PROMPT_TOKENS GEN_TOKENS THREADS RUNS [FLASH on|off] [BATCH] [WARMUP]
 * WARMUP untimed runs (default 1) come first; FLASH turns llama.cpp's flash attention on or off
 * (default off), BATCH is its batch size (default 512).
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { NodeLlamaCpp } from './node-llama-cpp-types.js';


function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

async function main(): Promise<void> {
  const [dir, modelPath, p, g, th, rn, fl, bs, wu] = process.argv.slice(2);
  if (dir === undefined || modelPath === undefined) throw new Error('usage: bench-llama NODE_LLAMA_CPP_DIR MODEL PROMPT GEN THREADS RUNS');
  const promptTokens = Number(p ?? 128);
  const genTokens = Number(g ?? 64);
  const threads = Number(th ?? 2);
  const runs = Number(rn ?? 3);
  const flashAttention = fl === 'on';
  const batchSize = Number(bs ?? 512);
  const warmup = Number(wu ?? 1);
  const entry = path.join(dir, 'node_modules', 'node-llama-cpp', 'dist', 'index.js');
  const nlc = (await import(pathToFileURL(entry).href)) as NodeLlamaCpp;
  const llama = await nlc.getLlama({ gpu: false, build: 'never', logLevel: 'error', maxThreads: threads, progressLogs: false });
  const model = await llama.loadModel({ modelPath, gpuLayers: 0 });
  // room for the prompt and the generated tokens (long-prompt runs go past the 1024 of short ones)
  const contextSize = Math.max(1024, promptTokens + genTokens + 8);
  const context = await model.createContext({ contextSize, batchSize, threads, sequences: 1, flashAttention });
  const seq = context.getSequence();
  let seed = 12345;
  // The same pseudo-random prompt as `chatglm bench`.
  const prompt = Array.from({ length: promptTokens }, () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return 300 + (seed % (60000 - 300));
  });
  const prefill: number[] = [];
  const decode: number[] = [];
  const ttft: number[] = [];
  for (let r = -warmup; r < runs; r++) {
    await seq.clearHistory();
    const t0 = performance.now();
    let t1 = 0;
    let n = 0;
    for await (const _token of seq.evaluate(prompt, { temperature: 0 })) {
      if (n === 0) t1 = performance.now();
      n++;
      if (n > genTokens) break;
    }
    const t2 = performance.now();
    if (r < 0) continue;
    prefill.push(promptTokens / ((t1 - t0) / 1000));
    ttft.push(t1 - t0);
    decode.push((n - 1) / ((t2 - t1) / 1000));
  }
  await context.dispose();
  await model.dispose();
  process.stdout.write(
    `${JSON.stringify({
      prefill_tok_s: Number(median(prefill).toFixed(2)),
      decode_tok_s: Number(median(decode).toFixed(2)),
      ttft_ms: Number(median(ttft).toFixed(1)),
      peak_rss_mb: Number((process.resourceUsage().maxRSS / 1024).toFixed(1)),
      runs: { prefill_tok_s: prefill.map((x) => Number(x.toFixed(2))), decode_tok_s: decode.map((x) => Number(x.toFixed(2))), ttft_ms: ttft.map((x) => Number(x.toFixed(1))) },
    })}\n`,
  );
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench-llama: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);

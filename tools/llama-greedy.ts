/**
 * Greedy tokens from llama.cpp (node-llama-cpp, installed into .bench/llama by `npm run bench`,
 * never a dependency) for test/kquant-greedy-llama.test.ts, run in a child process so llama.cpp's
 * native code stays out of the test runner. Prints one JSON line: the generated token ids (end of
 * generation tokens included: the run goes on for STEPS tokens, as the engine side does).
 *
 * usage: node dist/tools/llama-greedy.js NODE_LLAMA_CPP_DIR MODEL.gguf PROMPT_IDS_JSON STEPS
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { NodeLlamaCpp } from './node-llama-cpp-types.js';


async function main(): Promise<void> {
  const [dir, modelPath, promptJson, stepsArg] = process.argv.slice(2);
  if (dir === undefined || modelPath === undefined || promptJson === undefined) throw new Error('usage: llama-greedy DIR MODEL PROMPT_IDS_JSON STEPS');
  const prompt = JSON.parse(promptJson) as number[];
  const steps = Number(stepsArg ?? 32);
  const entry = path.join(dir, 'node_modules', 'node-llama-cpp', 'dist', 'index.js');
  const nlc = (await import(pathToFileURL(entry).href)) as NodeLlamaCpp;
  const llama = await nlc.getLlama({ gpu: false, build: 'never', logLevel: 'error', maxThreads: 2, progressLogs: false });
  const model = await llama.loadModel({ modelPath, gpuLayers: 0 });
  const context = await model.createContext({ contextSize: 256, batchSize: 256, threads: 2, sequences: 1 });
  const out: number[] = [];
  for await (const token of context.getSequence().evaluate(prompt, { temperature: 0, yieldEogToken: true })) {
    out.push(token);
    if (out.length >= steps) break;
  }
  await context.dispose();
  await model.dispose();
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`llama-greedy: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);

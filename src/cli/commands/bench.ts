/**
 * `chatglm bench --model FILE|DIR [--prompt-tokens 128] [--gen-tokens 64] [--threads N] [--kv-type f16|q8_0] --json`:
 * times a prompt of random token ids (prefill) and greedy decoding on the given model, three runs
 * after one warm-up run, and prints the medians. Not a test: see BENCHMARKS.md and `npm run bench`
 * for the comparison with llama.cpp.
 *
 * The prompt is fed `--prefill-chunk` tokens (default 512) per forward step, as llama.cpp feeds
 * its default batch of 512: a long prompt's activations then stay the size of one chunk, so the
 * peak RSS of a 32k-token run is the weights, the KV cache and one chunk's work space.
 * `--gen-tokens 0` times the prompt alone (a prompt that fills the whole context).
 *
 * Definitions (the same ones tools/bench.ts applies to llama.cpp):
 *   prefill_tok_s = prompt tokens / time of the forward pass over the prompt;
 *   ttft_ms       = that forward pass plus picking the first token;
 *   decode_tok_s  = gen tokens / time of the gen single-token steps that follow (0 with --gen-tokens 0);
 *   peak_rss_mb   = the process's peak resident memory in MiB (weights, KV cache, everything).
 */
import type { Command } from 'commander';
import { ChatGLMError } from '../../errors.js';
import { createBackend, isBackendName } from '../../backend/select.js';
import { openModel, type QuantizeType } from '../../model/open.js';
import { FAMILIES } from '../../families/registry.js';
import { resolveModelPath } from '../default-model.js';
import { loadReporter } from '../load-progress.js';
import { readCheckpointConfig } from '../load-model.js';
import { addWeightOptions } from './generate.js';
import { argmax } from '../../generate/sampler.js';
import { isKVType, type KVType } from '../../backend/kv-type.js';

export interface BenchResult {
  prefill_tok_s: number;
  decode_tok_s: number;
  ttft_ms: number;
  peak_rss_mb: number;
  /** Every timed run, in order (the medians above come from these); the warm-up run is not in them. */
  runs?: { prefill_tok_s: number[]; decode_tok_s: number[]; ttft_ms: number[] };
}

interface BenchOpts {
  model?: string;
  quantize?: string;
  promptTokens: string;
  genTokens: string;
  threads?: string;
  backend: string;
  runs: string;
  warmup: string;
  prefillChunk: string;
  kvType?: string;
  json?: boolean;
}

function positiveInt(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n <= 0) throw new ChatGLMError('BAD_ARGUMENT', `${flag} must be a positive integer, got ${JSON.stringify(v)}`);
  return n;
}

function countInt(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new ChatGLMError('BAD_ARGUMENT', `${flag} must be a whole number (0 or more), got ${JSON.stringify(v)}`);
  return n;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/**
 * A long prompt takes minutes: its progress goes to stderr (never into the --json output), in place
 * on a terminal, every tenth of the prompt otherwise. Short prompts (under 8 steps) print nothing.
 */
function prefillProgress(promptTokens: number, chunk: number): (done: number) => void {
  if (Math.ceil(promptTokens / chunk) < 8) return () => {};
  let shownTenths = 0;
  return (done) => {
    const tenths = Math.floor((done * 10) / promptTokens);
    if (process.stderr.isTTY) {
      process.stderr.write(`\rprefill ${done}/${promptTokens} tokens${done === promptTokens ? '\n' : ''}`);
    } else if (tenths > shownTenths) {
      process.stderr.write(`prefill ${done}/${promptTokens} tokens\n`);
    }
    // A new run starts again from zero.
    shownTenths = done === promptTokens ? 0 : tenths;
  };
}

export function register(program: Command): void {
  const cmd = program.command('bench').description('time prefill and decode on a model (random prompt, greedy), median of several runs');
  addWeightOptions(cmd)
    .option('--prompt-tokens <n>', 'prompt length in tokens', '128')
    .option('--gen-tokens <n>', 'tokens to decode after the prompt (0: time the prompt alone)', '64')
    .option('--runs <n>', 'runs to take the median of', '3')
    .option('--warmup <n>', 'untimed runs before them (0 for very long prompts)', '1')
    .option('--prefill-chunk <n>', 'prompt tokens per forward step', '512')
    .option('--kv-type <type>', 'KV cache element type: f16 | q8_0')
    .option('--json', 'print {prefill_tok_s, decode_tok_s, ttft_ms, peak_rss_mb} as JSON')
    .action(async (opts: BenchOpts) => {
      const promptTokens = positiveInt(opts.promptTokens, '--prompt-tokens');
      const genTokens = countInt(opts.genTokens, '--gen-tokens');
      const runs = positiveInt(opts.runs, '--runs');
      const warmup = countInt(opts.warmup, '--warmup');
      const chunk = positiveInt(opts.prefillChunk, '--prefill-chunk');
      if (opts.kvType !== undefined && !isKVType(opts.kvType)) {
        throw new ChatGLMError('BAD_ARGUMENT', `--kv-type must be f16 or q8_0, got ${JSON.stringify(opts.kvType)}`);
      }
      if (!isBackendName(opts.backend)) throw new ChatGLMError('BAD_ARGUMENT', `unknown --backend ${opts.backend}; use reference, native or auto`);
      if (opts.quantize !== undefined && opts.quantize !== 'q8_0' && opts.quantize !== 'q4_0') {
        throw new ChatGLMError('BAD_ARGUMENT', `--quantize must be q8_0 or q4_0, got ${JSON.stringify(opts.quantize)}`);
      }
      const modelPath = resolveModelPath(opts.model);
      // The cache holds the prompt and every generated token but the last (it is never fed back).
      const context = (await readCheckpointConfig(modelPath)).seqLength;
      if (promptTokens + genTokens > context) {
        throw new ChatGLMError(
          'BAD_ARGUMENT',
          `--prompt-tokens ${promptTokens} plus --gen-tokens ${genTokens} do not fit the model's context (${context} tokens); use at most ${context} together`,
        );
      }
      const backend = await createBackend(opts.backend, opts.threads === undefined ? {} : { threads: positiveInt(opts.threads, '--threads') });
      const progress = loadReporter(modelPath);
      let model;
      try {
        ({ model } = await openModel(modelPath, {
          families: FAMILIES,
          backend,
          ...(opts.quantize !== undefined ? { quantize: opts.quantize as QuantizeType } : {}),
          ...(opts.kvType !== undefined ? { kvType: opts.kvType as KVType } : {}),
          onProgress: (p) => progress.onProgress(p),
        }));
        progress.done();
      } catch (err) {
        progress.fail();
        backend.dispose?.();
        throw err;
      }
      const vocab = model.config.vocabSize;
      const prefill: number[] = [];
      const decode: number[] = [];
      const ttft: number[] = [];
      // A fixed pseudo-random prompt, avoiding the low ids where control tokens live (unless the
      // vocabulary is that small: a tiny test model has nothing else).
      const low = vocab > 300 ? 300 : 0;
      let seed = 12345;
      const prompt = Array.from({ length: promptTokens }, () => {
        seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
        return low + (seed % (Math.min(vocab, 60000) - low));
      });
      const showPrefill = prefillProgress(promptTokens, chunk);
      // Untimed runs first: they page the weights in and start the threads, as bench-llama does.
      for (let r = -warmup; r < runs; r++) {
        const cache = model.newCache(promptTokens + genTokens);
        const t0 = performance.now();
        let logits: Float32Array = new Float32Array(0);
        for (let pos = 0; pos < promptTokens; pos += chunk) {
          logits = model.forward([{ cache, ids: prompt.slice(pos, pos + chunk) }])[0]!;
          showPrefill(Math.min(pos + chunk, promptTokens));
        }
        const t1 = performance.now();
        let next = argmax(logits);
        const t2 = performance.now();
        for (let i = 0; i < genTokens; i++) next = argmax(model.forward([{ cache, ids: [next] }])[0]!);
        const t3 = performance.now();
        if (r < 0) continue;
        prefill.push(promptTokens / ((t1 - t0) / 1000));
        ttft.push(t2 - t0);
        if (genTokens > 0) decode.push(genTokens / ((t3 - t2) / 1000));
      }
      const result: BenchResult = {
        prefill_tok_s: Number(median(prefill).toFixed(2)),
        decode_tok_s: genTokens > 0 ? Number(median(decode).toFixed(2)) : 0,
        ttft_ms: Number(median(ttft).toFixed(1)),
        peak_rss_mb: Number((process.resourceUsage().maxRSS / 1024).toFixed(1)),
        runs: { prefill_tok_s: prefill.map((x) => Number(x.toFixed(2))), decode_tok_s: decode.map((x) => Number(x.toFixed(2))), ttft_ms: ttft.map((x) => Number(x.toFixed(1))) },
      };
      backend.dispose?.();
      if (opts.json === true) {
        process.stdout.write(`${JSON.stringify(result)}\n`);
      } else {
        process.stdout.write(
          `${backend.name}: prefill ${result.prefill_tok_s} tok/s, decode ${result.decode_tok_s} tok/s, ` +
            `TTFT ${result.ttft_ms} ms, peak RSS ${result.peak_rss_mb} MiB (median of ${runs}, ${promptTokens}-token prompt, ${genTokens} tokens)\n`,
        );
      }
    });
}

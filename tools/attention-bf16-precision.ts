/**
 * Logit difference of the bf16 prefill attention against the f32 path on a model: the same prompt
 * (long enough for the bf16 kernels, >= 2,048 positions) through the best kernel table, which takes
 * the bf16 attention on a CPU with avx512_bf16, and through the AVX2 table, whose attention is f32
 * (its matmuls differ from the AVX-512 ones only by f32 rounding, orders of magnitude below the
 * bf16 effect). Prints the largest absolute logit difference, relative to the logit range, and
 * whether the argmax agrees. For BENCHMARKS.md; not a test.
 *
 * usage: node dist/tools/attention-bf16-precision.js MODEL.gguf [PROMPT_TOKENS=2100] [THREADS=2]
 */
import { createNativeBackend } from '../src/backend/native/index.js';
import { openModel } from '../src/model/open.js';
import { FAMILIES } from '../src/families/registry.js';

async function lastLogits(file: string, isa: string, n: number, threads: number): Promise<Float32Array> {
  const be = createNativeBackend({ threads, isa });
  const { model } = await openModel(file, { families: FAMILIES, backend: be });
  const cache = model.newCache(n + 1);
  const prompt = Array.from({ length: n }, (_, i) => 300 + ((i * 7919) % 50000));
  const t0 = performance.now();
  const l = model.forward([{ cache, ids: prompt }])[0]!;
  process.stdout.write(`${isa}: ${n}-token prefill ${((performance.now() - t0) / 1000).toFixed(1)} s\n`);
  be.dispose?.();
  return Float32Array.from(l);
}

async function main(): Promise<void> {
  const [file, p, th] = process.argv.slice(2);
  if (file === undefined) throw new Error('usage: attention-bf16-precision MODEL [PROMPT_TOKENS] [THREADS]');
  const n = Number(p ?? 2100);
  const threads = Number(th ?? 2);
  const a = await lastLogits(file, 'avx512vnni', n, threads);
  const b = await lastLogits(file, 'avx2', n, threads);
  let maxDiff = 0;
  let lo = Infinity;
  let hi = -Infinity;
  let am = 0;
  let bm = 0;
  for (let i = 0; i < a.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(a[i]! - b[i]!));
    lo = Math.min(lo, b[i]!);
    hi = Math.max(hi, b[i]!);
    if (a[i]! > a[am]!) am = i;
    if (b[i]! > b[bm]!) bm = i;
  }
  process.stdout.write(
    `max |logit difference| ${maxDiff.toExponential(3)} (logit range ${(hi - lo).toFixed(2)}, ${((maxDiff / (hi - lo)) * 100).toFixed(4)}% of it); ` +
      `argmax ${am === bm ? 'agrees' : `differs (${am} vs ${bm})`}\n`,
  );
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});

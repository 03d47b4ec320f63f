/**
 * `chatglm logits --model DIR --ids 5,17,3`: runs one prefill and prints a JSON array holding the
 * logits (whole vocabulary) of every input position. This is how correctness is checked from
 * outside the test suite, so the output is plain JSON and nothing else goes to stdout.
 */
import type { Command } from 'commander';
import { ChatGLMError } from '../../errors.js';
import { isBackendName } from '../../backend/select.js';
import { openModel, type QuantizeType } from '../../model/open.js';
import { FAMILIES } from '../../families/registry.js';
import { resolveModelPath } from '../default-model.js';
import { loadReporter } from '../load-progress.js';
import { addWeightOptions, threadsFromCli } from './generate.js';

export function parseIds(text: string): number[] {
  const parts = text.split(',').map((s) => s.trim());
  if (parts.length === 0 || parts.some((s) => !/^\d+$/.test(s))) {
    throw new ChatGLMError('BAD_ARGUMENT', `--ids must be comma-separated token ids like 5,17,3; got ${JSON.stringify(text)}`);
  }
  return parts.map(Number);
}

interface LogitsOptions {
  model?: string;
  ids: string;
  backend: string;
  quantize?: string;
  threads?: string;
}

export function register(program: Command): void {
  const cmd = program.command('logits').description('print the logits of every position of a token-id sequence as JSON');
  addWeightOptions(cmd)
    .requiredOption('--ids <ids>', 'comma-separated token ids, e.g. 5,17,3')
    .action(async (opts: LogitsOptions) => {
      const ids = parseIds(opts.ids);
      if (!isBackendName(opts.backend)) throw new ChatGLMError('BAD_ARGUMENT', `unknown backend ${JSON.stringify(opts.backend)}; choose reference, native or auto`);
      if (opts.quantize !== undefined && opts.quantize !== 'q8_0' && opts.quantize !== 'q4_0') {
        throw new ChatGLMError('BAD_ARGUMENT', `--quantize must be q8_0 or q4_0, got ${JSON.stringify(opts.quantize)}`);
      }
      const threads = threadsFromCli(opts.threads);
      const modelPath = resolveModelPath(opts.model);
      const progress = loadReporter(modelPath);
      let opened;
      try {
        opened = await openModel(modelPath, {
          families: FAMILIES,
          backend: opts.backend,
          ...(opts.quantize !== undefined ? { quantize: opts.quantize as QuantizeType } : {}),
          ...(threads !== undefined ? { threads } : {}),
          onProgress: (p) => progress.onProgress(p),
        });
        progress.done();
      } catch (err) {
        progress.fail();
        throw err;
      }
      const { model, backend, config } = opened;
      try {
        for (const id of ids) {
          if (id >= config.vocabSize) throw new ChatGLMError('BAD_ARGUMENT', `--ids: id ${id} is outside the vocabulary (${config.vocabSize} ids)`);
        }
        if (ids.length > config.seqLength) throw new ChatGLMError('BAD_ARGUMENT', `--ids: ${ids.length} ids do not fit the model's context (${config.seqLength} tokens)`);
        const logits = model.forward([{ cache: model.newCache(ids.length), ids, allLogits: true }])[0]!;
        const V = config.vocabSize;
        const rows: number[][] = [];
        for (let t = 0; t < ids.length; t++) rows.push(Array.from(logits.subarray(t * V, (t + 1) * V)));
        process.stdout.write(JSON.stringify(rows) + '\n');
      } finally {
        backend.dispose?.();
      }
    });
}

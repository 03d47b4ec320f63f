/**
 * `chatglm logits --model DIR --ids 5,17,3`: runs one prefill and prints a JSON array holding the
 * logits (whole vocabulary) of every input position. This is how correctness is checked from
 * outside the test suite, so the output is plain JSON and nothing else goes to stdout.
 */
import type { Command } from 'commander';
import { ChatGLMError } from '../../errors.js';
import { isBackendName } from '../../backend/select.js';
import { openModel, type QuantizeType } from '../../model/open.js';

export function parseIds(text: string): number[] {
  const parts = text.split(',').map((s) => s.trim());
  if (parts.length === 0 || parts.some((s) => !/^\d+$/.test(s))) {
    throw new ChatGLMError('BAD_ARGUMENT', `--ids must be comma-separated token ids like 5,17,3; got ${JSON.stringify(text)}`);
  }
  return parts.map(Number);
}

interface LogitsOptions {
  model: string;
  ids: string;
  backend: string;
  quantize?: string;
}

export function register(program: Command): void {
  program
    .command('logits')
    .description('print the logits of every position of a token-id sequence as JSON')
    .requiredOption('-m, --model <path>', 'Hugging Face model directory or .gguf file')
    .requiredOption('--ids <ids>', 'comma-separated token ids, e.g. 5,17,3')
    .option('--backend <name>', 'reference | native | auto', 'auto')
    .option('--quantize <type>', 'quantize weights while loading: q8_0 | q4_0')
    .action(async (opts: LogitsOptions) => {
      const ids = parseIds(opts.ids);
      if (!isBackendName(opts.backend)) throw new ChatGLMError('BAD_ARGUMENT', `unknown backend ${JSON.stringify(opts.backend)}; choose reference, native or auto`);
      if (opts.quantize !== undefined && opts.quantize !== 'q8_0' && opts.quantize !== 'q4_0') {
        throw new ChatGLMError('BAD_ARGUMENT', `--quantize must be q8_0 or q4_0, got ${JSON.stringify(opts.quantize)}`);
      }
      const { model, backend, config } = await openModel(opts.model, {
        backend: opts.backend,
        ...(opts.quantize !== undefined ? { quantize: opts.quantize as QuantizeType } : {}),
      });
      try {
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

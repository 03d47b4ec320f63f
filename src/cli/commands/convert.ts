import type { Command } from 'commander';
import { ChatGLMError } from '../../errors.js';
import { CONVERT_TYPES, convertToGguf } from '../../convert/gguf-convert.js';
import type { ConvertProgress, ConvertType } from '../../convert/gguf-convert.js';
import { resolveModelPath } from '../default-model.js';
import { FAMILY_NAMES, type ModelFamily } from '../../families/registry.js';

// The registry's names, so a new family is accepted here without a line of its own.
const FAMILIES = FAMILY_NAMES;

function mb(n: number): string {
  return `${(n / 1e6).toFixed(1)} MB`;
}

/** A one-line bar redrawn in place on a terminal; on a pipe, a line per tenth so logs stay short. */
function progressPrinter(): { update(p: ConvertProgress): void; end(): void } {
  const tty = process.stderr.isTTY === true;
  let lastTenth = -1;
  return {
    update(p) {
      const frac = p.totalBytes > 0 ? p.bytes / p.totalBytes : p.done / p.total;
      if (tty) {
        const width = 30;
        const filled = Math.round(frac * width);
        const bar = `${'#'.repeat(filled)}${'-'.repeat(width - filled)}`;
        process.stderr.write(`\r[${bar}] ${(frac * 100).toFixed(0).padStart(3)}% ${p.done}/${p.total} ${mb(p.bytes)} ${p.name.padEnd(24).slice(0, 24)}`);
      } else {
        const tenth = Math.floor(frac * 10);
        if (tenth !== lastTenth) {
          lastTenth = tenth;
          process.stderr.write(`convert: ${(frac * 100).toFixed(0)}% (${p.done}/${p.total} tensors, ${mb(p.bytes)})\n`);
        }
      }
    },
    end() {
      if (tty) process.stderr.write('\n');
    },
  };
}

export function register(program: Command): void {
  program
    .command('convert')
    .description('Convert a Hugging Face ChatGLM2/3 or GLM-4 directory to GGUF (loadable by this engine and by llama.cpp)')
    .option('-m, --model <dir>', 'Hugging Face model directory (config.json, weights, tokenizer.model; default: the bundled demo model)')
    .requiredOption('--out <file>', 'GGUF file to write')
    .option('--type <type>', `weight type for matrices: ${CONVERT_TYPES.join(', ')}`, 'f16')
    .option('--family <family>', `override the detected family: ${FAMILIES.join(', ')}`)
    .action(async (opts: { model?: string; out: string; type: string; family?: string }) => {
      const type = opts.type.toLowerCase();
      if (!(CONVERT_TYPES as readonly string[]).includes(type)) {
        throw new ChatGLMError('BAD_ARGUMENT', `convert: --type ${opts.type} is not supported; use one of ${CONVERT_TYPES.join(', ')}`);
      }
      if (opts.family !== undefined && !(FAMILIES as readonly string[]).includes(opts.family)) {
        throw new ChatGLMError('BAD_ARGUMENT', `convert: --family ${opts.family} is not one of ${FAMILIES.join(', ')}`);
      }
      const progress = progressPrinter();
      const started = Date.now();
      // Ctrl-C stops between tensors so the partial file is removed, not left behind.
      const interrupt = new AbortController();
      const onInterrupt = (): void => interrupt.abort();
      process.once('SIGINT', onInterrupt);
      try {
        const r = await convertToGguf({
          modelDir: resolveModelPath(opts.model),
          out: opts.out,
          type: type as ConvertType,
          ...(opts.family !== undefined ? { family: opts.family as ModelFamily } : {}),
          onProgress: (p) => progress.update(p),
          signal: interrupt.signal,
        });
        progress.end();
        process.stderr.write(
          `convert: wrote ${r.out} (${r.family}, ${type}, ${r.tensors} tensors, vocab ${r.vocabSize}, ${mb(r.bytes)}) in ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
        );
      } catch (err) {
        progress.end();
        throw err;
      } finally {
        process.off('SIGINT', onInterrupt);
      }
    });
}

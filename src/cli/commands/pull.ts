/**
 * `chatglm pull OWNER/NAME [--revision REV] [--include GLOB...] [--exclude GLOB...] [--dir DIR]`:
 * downloads a model from the Hugging Face hub ($HF_ENDPOINT for a mirror, $HF_TOKEN for gated
 * repos) into the cache huggingface_hub shares, after which `--model OWNER/NAME` finds it.
 * Ctrl-C stops cleanly; the same command resumes.
 */
import type { Command } from 'commander';
import { ChatGLMError } from '../../errors.js';
import { parseModelRef } from '../../hub/cache.js';
import { pullModel } from '../../hub/pull.js';
import { humanBytes, pullProgress } from '../pull-progress.js';

interface PullOpts {
  revision?: string;
  include?: string[];
  exclude?: string[];
  dir?: string;
  concurrency: string;
}

export function register(program: Command): void {
  program
    .command('pull')
    .description('download a model from the Hugging Face hub (or $HF_ENDPOINT) into the local cache')
    .argument('<repo>', 'OWNER/NAME, e.g. THUDM/chatglm3-6b (OWNER/NAME@REV for a revision)')
    .option('--revision <rev>', 'branch, tag or commit (default: main)')
    .option('--include <glob...>', "download only files matching these patterns (default: weights, config and tokenizer files); --include '*' for all")
    .option('--exclude <glob...>', 'skip files matching these patterns')
    .option('--dir <dir>', 'put the files in this folder instead of the Hugging Face cache')
    .option('--concurrency <n>', 'files downloaded at once', '4')
    .action(async (repoArg: string, opts: PullOpts) => {
      const ref = parseModelRef(repoArg);
      if (ref === undefined) throw new ChatGLMError('BAD_ARGUMENT', `${JSON.stringify(repoArg)} is not a hub model name; give OWNER/NAME, e.g. THUDM/chatglm3-6b`);
      if (repoArg.includes('@') && opts.revision !== undefined && opts.revision !== ref.revision) {
        throw new ChatGLMError('BAD_ARGUMENT', `two revisions given (${ref.revision} and --revision ${opts.revision}); give one`);
      }
      const concurrency = Number(opts.concurrency);
      if (!Number.isSafeInteger(concurrency) || concurrency < 1 || concurrency > 64) {
        throw new ChatGLMError('BAD_ARGUMENT', `--concurrency must be an integer from 1 to 64, got ${JSON.stringify(opts.concurrency)}`);
      }
      const revision = opts.revision ?? ref.revision;
      const controller = new AbortController();
      const onSigint = (): void => controller.abort();
      process.once('SIGINT', onSigint);
      const progress = pullProgress();
      try {
        const r = await pullModel(ref.repo, {
          revision,
          concurrency,
          signal: controller.signal,
          onEvent: progress.onEvent,
          ...(opts.include !== undefined ? { include: opts.include } : {}),
          ...(opts.exclude !== undefined ? { exclude: opts.exclude } : {}),
          ...(opts.dir !== undefined ? { dir: opts.dir } : {}),
        });
        progress.stop();
        const had = r.files.filter((f) => f.present).length;
        process.stderr.write(
          `pull: ${r.repo}@${r.revision} (commit ${r.commit.slice(0, 12)}): ${r.files.length} files, ${humanBytes(r.fetched)} downloaded${had > 0 ? `, ${had} already there` : ''}\n`,
        );
        const use = opts.dir !== undefined ? opts.dir : `${r.repo}${revision === 'main' ? '' : `@${revision}`}`;
        process.stderr.write(`pull: in ${r.path}\npull: use it with --model ${use}\n`);
      } catch (err) {
        progress.stop();
        throw err;
      } finally {
        process.removeListener('SIGINT', onSigint);
      }
    });
}

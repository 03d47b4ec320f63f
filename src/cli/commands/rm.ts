/**
 * `chatglm rm OWNER/NAME[@REV]`: removes a model from the Hugging Face cache: all of it, or only
 * one revision (and the files no other revision uses).
 */
import type { Command } from 'commander';
import { hubCacheDir, removeCached } from '../../hub/cache.js';
import { humanBytes } from '../pull-progress.js';

export function register(program: Command): void {
  program
    .command('rm')
    .description('remove a model (OWNER/NAME) or one revision of it (OWNER/NAME@REV) from the Hugging Face cache')
    .argument('<model>', 'OWNER/NAME or OWNER/NAME@REV, as chatglm list shows them')
    .action((model: string) => {
      const r = removeCached(model, hubCacheDir());
      const what = model.includes('@') ? `${r.repo} revision ${r.commits.map((c) => c.slice(0, 12)).join(', ')}` : r.repo;
      process.stderr.write(`rm: removed ${what}, ${humanBytes(r.bytesFreed)} freed\n`);
    });
}

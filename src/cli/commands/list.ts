/**
 * `chatglm list [--json]`: the models in the Hugging Face cache, one line per cached revision,
 * with family (read from the checkpoint's headers, no weights loaded), size and revision.
 */
import type { Command } from 'commander';
import { hubCacheDir, resolveModelRef, scanCache } from '../../hub/cache.js';
import { openCheckpoint } from '../../model/open.js';
import { FAMILIES } from '../../families/registry.js';
import { humanBytes } from '../pull-progress.js';

/** The family of a snapshot, or '-' when it is not a model this engine opens. */
async function familyOf(snapshotPath: string): Promise<string> {
  try {
    const h = await openCheckpoint(snapshotPath, { families: FAMILIES });
    await h.source.close();
    return h.family;
  } catch {
    return '-';
  }
}

export function register(program: Command): void {
  program
    .command('list')
    .description('list the models in the Hugging Face cache ($HF_HUB_CACHE, $HF_HOME/hub or ~/.cache/huggingface/hub)')
    .option('--json', 'print the list as JSON')
    .action(async (opts: { json?: boolean }) => {
      const cacheDir = hubCacheDir();
      const rows: { model: string; revision: string; commit: string; family: string; bytes: number; files: number; path: string; incomplete: number }[] = [];
      for (const m of scanCache(cacheDir)) {
        for (const s of m.snapshots) {
          let modelPath = s.path;
          try {
            modelPath = resolveModelRef(`${m.repo}@${s.commit}`, cacheDir);
          } catch {
            // a snapshot with no config.json (or several .gguf files): shown with family '-'
          }
          rows.push({
            model: m.repo,
            revision: s.refs.length > 0 ? s.refs.join(',') : '-',
            commit: s.commit,
            family: await familyOf(modelPath),
            bytes: s.bytes,
            files: s.files,
            path: s.path,
            incomplete: m.incomplete,
          });
        }
        if (m.snapshots.length === 0) {
          rows.push({ model: m.repo, revision: '-', commit: '-', family: '-', bytes: m.bytesOnDisk, files: 0, path: m.folder, incomplete: m.incomplete });
        }
      }
      if (opts.json === true) {
        process.stdout.write(JSON.stringify({ cache: cacheDir, models: rows }, null, 2) + '\n');
        return;
      }
      if (rows.length === 0) {
        process.stdout.write(`no models in ${cacheDir}; get one with: chatglm pull OWNER/NAME\n`);
        return;
      }
      const table = [
        ['MODEL', 'REVISION', 'COMMIT', 'FAMILY', 'SIZE', 'NOTE'],
        ...rows.map((r) => [r.model, r.revision, r.commit.slice(0, 12), r.family, humanBytes(r.bytes), r.incomplete > 0 ? `${r.incomplete} unfinished download(s)` : '']),
      ];
      const widths = table[0]!.map((_, c) => Math.max(...table.map((row) => row[c]!.length)));
      process.stdout.write(table.map((row) => row.map((cell, c) => cell.padEnd(widths[c]!)).join('  ').trimEnd()).join('\n') + '\n');
      process.stdout.write(`(cache: ${cacheDir})\n`);
    });
}

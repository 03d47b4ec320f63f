/** The package's version, read from its package.json (for `chatglm --version`). */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export function packageVersion(): string {
  // This file is dist/src/cli/version.js once built; the package root is three levels up.
  const file = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../package.json');
  const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
  return `${pkg.name ?? 'chatglm.ts'} ${pkg.version ?? 'unknown'}`;
}

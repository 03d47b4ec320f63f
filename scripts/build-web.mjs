// Builds the web page that `chatglm serve` shows at GET / into dist/src/web/: app.ts and its
// libraries (marked, DOMPurify, highlight.js) bundled by esbuild into one app.js, next to
// index.html and app.css. Part of `npm run build`; the page needs nothing from the network.
import { build } from 'esbuild';
import { copyFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const src = path.join(root, 'src', 'web');
const out = path.join(root, 'dist', 'src', 'web');
await mkdir(out, { recursive: true });
await build({
  entryPoints: [path.join(src, 'app.ts')],
  outfile: path.join(out, 'app.js'),
  bundle: true,
  format: 'esm',
  target: 'es2022',
  minify: true,
  legalComments: 'eof',
  logLevel: 'warning',
});
for (const f of ['index.html', 'app.css']) await copyFile(path.join(src, f), path.join(out, f));

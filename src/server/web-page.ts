/**
 * The chat page at GET / (Chat, Tools and Code tabs): three static files built by
 * scripts/build-web.mjs into dist/src/web/ (index.html, app.js, app.css), served by the server
 * itself, so the page works offline. A strict Content-Security-Policy backs up the page's own
 * sanitizing: only the page's script runs, and images can only be data: URLs.
 */
import { readFile } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { HttpError } from './errors.js';

const FILES: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/web/app.js': { file: 'app.js', type: 'text/javascript; charset=utf-8' },
  '/web/app.css': { file: 'app.css', type: 'text/css; charset=utf-8' },
};

export const WEB_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

export function isWebRoute(route: string): boolean {
  return route in FILES;
}

const cache = new Map<string, Buffer>();

/** Answers GET / and the page's assets; 404 with how to build them when they are missing. */
export async function serveWebPage(res: ServerResponse, route: string, headers: Record<string, string>): Promise<number> {
  const entry = FILES[route]!;
  let body = cache.get(entry.file);
  if (body === undefined) {
    try {
      body = await readFile(new URL(`../web/${entry.file}`, import.meta.url));
    } catch {
      throw new HttpError(404, 'not_found_error', 'not_found', `the web page is not built (${entry.file} is missing); run npm run build`);
    }
    cache.set(entry.file, body);
  }
  res.writeHead(200, {
    ...headers,
    'content-type': entry.type,
    'content-length': String(body.length),
    'content-security-policy': WEB_CSP,
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'cache-control': 'no-cache',
  });
  res.end(body);
  return 200;
}

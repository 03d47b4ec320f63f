/**
 * One file from the hub to disk, safely: bytes go to `<final>.incomplete`; an existing partial is
 * continued with an HTTP Range request; the whole file is hashed (SHA-256 against the LFS object id,
 * or the git blob sha1 for small files) and moved under its final name only once it matches.
 * A wrong hash deletes the partial. An abort or a cut connection leaves the partial for next time.
 */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, stat, truncate, unlink } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { ChatGLMError } from '../errors.js';
import { authHeaders, httpError, hubFetch, networkError } from './client.js';

export interface DownloadTarget {
  /** resolve/REV/FILE URL on the hub. */
  url: string;
  /** Where the verified file ends up. */
  dest: string;
  /** The partial download (default `${dest}.incomplete`). */
  incomplete?: string;
  /** Expected size in bytes, when known. */
  size?: number;
  /** LFS SHA-256 (hex) the bytes must hash to. */
  sha256?: string;
  /** Git blob sha1 (hex) the bytes must hash to, for files kept in git. */
  blobId?: string;
}

export interface DownloadContext {
  repo: string;
  /** The repo path of the file, for messages. */
  file: string;
  endpoint: string;
  token?: string;
  signal?: AbortSignal;
  /** Attempts after a cut connection, each resuming where the last one stopped (default 3). */
  retries?: number;
  /** Called once the starting offset is known (resumed bytes count as done). */
  onStart?: (resumedFrom: number, total: number | undefined) => void;
  onBytes?: (n: number) => void;
}

export interface DownloadResult {
  /** Bytes received over the network by this call. */
  fetched: number;
  /** Bytes taken from an earlier partial download. */
  resumedFrom: number;
}

async function fileSize(file: string): Promise<number> {
  try {
    return (await stat(file)).size;
  } catch {
    return 0;
  }
}

function newHash(t: DownloadTarget): { hash: Hash; want: string; kind: string } | undefined {
  if (t.sha256 !== undefined) return { hash: createHash('sha256'), want: t.sha256.toLowerCase(), kind: 'SHA-256' };
  if (t.blobId !== undefined && t.size !== undefined) {
    // git's object id: sha1 over "blob <size>\0" + contents
    const hash = createHash('sha1').update(`blob ${t.size}\0`);
    return { hash, want: t.blobId.toLowerCase(), kind: 'git sha1' };
  }
  return undefined;
}

const MAX_REDIRECTS = 5;

/**
 * GETs a resolve URL, following the hub's redirect to its blob store by hand: the token goes only to
 * the hub's own host, the Range header to every hop.
 */
async function getFollowingRedirects(url: string, headers: Record<string, string>, ctx: DownloadContext): Promise<Response> {
  let current = url;
  const hubOrigin = new URL(url).origin;
  for (let hop = 0; ; hop++) {
    const h = new URL(current).origin === hubOrigin ? { ...headers, ...authHeaders(ctx.token) } : headers;
    const res = await hubFetch(current, { headers: h, redirect: 'manual', ...(ctx.signal !== undefined ? { signal: ctx.signal } : {}) }, ctx.endpoint);
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location !== null) {
      await res.body?.cancel();
      if (hop >= MAX_REDIRECTS) throw new ChatGLMError('HTTP', `${ctx.repo}/${ctx.file}: more than ${MAX_REDIRECTS} redirects from ${url}`);
      current = new URL(location, current).href;
      continue;
    }
    return res;
  }
}

/** Bytes of a partial that are known to be unusable: start over. */
async function restart(file: string): Promise<void> {
  await truncate(file, 0).catch(() => {});
}

/** A connection that failed or was cut (worth resuming), as opposed to an HTTP or disk error. */
function isRetryable(err: unknown): boolean {
  if (err instanceof ChatGLMError) return err.code === 'NETWORK';
  const code = (err as { code?: unknown }).code;
  return err instanceof TypeError || (typeof code === 'string' && /^(UND_ERR|ECONNRESET|EPIPE|ETIMEDOUT)/.test(code));
}

/** Downloads `t.url` to `t.dest` (see the file comment). */
export async function downloadVerified(t: DownloadTarget, ctx: DownloadContext): Promise<DownloadResult> {
  const incomplete = t.incomplete ?? `${t.dest}.incomplete`;
  await mkdir(path.dirname(incomplete), { recursive: true });
  const retries = ctx.retries ?? 3;
  let fetched = 0;
  let firstOffset: number | undefined;
  for (let attempt = 0; ; attempt++) {
    let offset = await fileSize(incomplete);
    if (t.size !== undefined && offset > t.size) {
      await restart(incomplete);
      offset = 0;
    }
    if (firstOffset === undefined) {
      firstOffset = offset;
      ctx.onStart?.(offset, t.size);
    }
    try {
      if (t.size === undefined || offset < t.size) fetched += await fetchInto(t, ctx, incomplete, offset);
      const got = await fileSize(incomplete);
      if (t.size !== undefined && got < t.size) {
        throw new ChatGLMError('NETWORK', `${ctx.repo}/${ctx.file}: the connection closed after ${got} of ${t.size} bytes`);
      }
      break;
    } catch (err) {
      if (ctx.signal?.aborted === true) throw abortError(err);
      if (attempt >= retries || !isRetryable(err)) throw wrapError(err, ctx, t.url);
    }
  }
  await verify(t, ctx, incomplete);
  await mkdir(path.dirname(t.dest), { recursive: true });
  await rename(incomplete, t.dest);
  return { fetched, resumedFrom: firstOffset };
}

function abortError(cause: unknown): ChatGLMError {
  if (cause instanceof ChatGLMError && cause.code === 'ABORTED') return cause;
  return new ChatGLMError('ABORTED', 'the download was interrupted; run the same command again to resume', { cause });
}

function wrapError(err: unknown, ctx: DownloadContext, url: string): unknown {
  if (err instanceof ChatGLMError) return err;
  if (err instanceof Error && err.name === 'AbortError') return abortError(err);
  // A body cut midway surfaces as a TypeError ("terminated") from fetch's stream.
  if (err instanceof TypeError) return networkError(err, url, ctx.endpoint);
  if (err instanceof Error && 'code' in err) return new ChatGLMError('FILE_NOT_FOUND', `cannot write ${ctx.file}: ${err.message}`, { cause: err });
  return err;
}

/** One GET from `offset`, appended to the partial. Returns the bytes received. */
async function fetchInto(t: DownloadTarget, ctx: DownloadContext, incomplete: string, offset: number): Promise<number> {
  // identity: the bytes as stored (what the hash is of, and what byte ranges count), never recompressed.
  const headers: Record<string, string> = { 'accept-encoding': 'identity', ...(offset > 0 ? { range: `bytes=${offset}-` } : {}) };
  const res = await getFollowingRedirects(t.url, headers, ctx);
  let start = 0;
  if (res.status === 206) {
    const m = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(res.headers.get('content-range') ?? '');
    start = m === null ? -1 : Number(m[1]);
    if (start !== offset) {
      await res.body?.cancel();
      throw new ChatGLMError('HTTP', `${ctx.repo}/${ctx.file}: asked for bytes from ${offset}, the server sent ${res.headers.get('content-range') ?? 'no Content-Range'}`);
    }
  } else if (res.status === 416 && offset > 0) {
    // The partial does not fit the file on the server: start over.
    await res.body?.cancel();
    await restart(incomplete);
    throw new ChatGLMError('NETWORK', `${ctx.repo}/${ctx.file}: the server refused to resume at byte ${offset}`);
  } else if (!res.ok) {
    await res.body?.cancel();
    throw httpError(res, ctx.repo, `${ctx.repo}/${ctx.file}`, ctx.token !== undefined);
  } else if (offset > 0) {
    // 200 to a Range request: the whole file is coming; drop the partial.
    await restart(incomplete);
    ctx.onBytes?.(-offset);
  }
  if (res.body === null) return 0;
  let received = 0;
  const count = new Transform({
    transform(chunk: Buffer, _enc, done) {
      received += chunk.length;
      ctx.onBytes?.(chunk.length);
      done(null, chunk);
    },
  });
  await pipeline(
    Readable.fromWeb(res.body as WebReadableStream<Uint8Array>),
    count,
    createWriteStream(incomplete, { flags: start > 0 ? 'a' : 'w' }),
    ...(ctx.signal !== undefined ? [{ signal: ctx.signal }] : []),
  );
  return received;
}

/** Hashes the finished partial; on a mismatch deletes it and throws. */
async function verify(t: DownloadTarget, ctx: DownloadContext, incomplete: string): Promise<void> {
  const size = await fileSize(incomplete);
  const fail = async (problem: string): Promise<never> => {
    await unlink(incomplete).catch(() => {});
    throw new ChatGLMError('BAD_FORMAT', `${ctx.repo}/${ctx.file}: ${problem}; the download was deleted, run pull again (if it repeats, the server or mirror sends a wrong file)`);
  };
  if (t.size !== undefined && size !== t.size) await fail(`got ${size} bytes, the hub lists ${t.size}`);
  const h = newHash(t);
  if (h === undefined) return;
  for await (const chunk of createReadStream(incomplete, ctx.signal !== undefined ? { signal: ctx.signal } : {})) h.hash.update(chunk as Buffer);
  const got = h.hash.digest('hex');
  if (got !== h.want) await fail(`${h.kind} ${got} does not match the hub's ${h.want}`);
}

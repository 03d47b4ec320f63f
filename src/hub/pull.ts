/**
 * `pull`: a model repo's files from the hub into the Hugging Face cache (or a plain folder),
 * several at once, each resumed, verified and moved into place by downloadVerified. refs/<rev> is
 * written last, so a pull that fails midway never makes a half-complete snapshot the one that
 * OWNER/NAME resolves to.
 */
import { copyFile, lstat, mkdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ChatGLMError } from '../errors.js';
import { COMMIT_HASH, hubCacheDir, parseModelRef, repoFolder } from './cache.js';
import { authHeaders, fetchRepoInfo, httpError, hubEndpoint, hubFetch, hubToken, resolveUrl, type HubFile, type HubOptions } from './client.js';
import { downloadVerified } from './download.js';
import { selectFiles } from './select.js';

export interface PullOptions extends HubOptions {
  /** Branch, tag or commit (default 'main'). */
  revision?: string;
  /** Glob patterns choosing the files (default: what the engine needs). */
  include?: string[];
  exclude?: string[];
  /** A plain folder to put the files in, instead of the cache. */
  dir?: string;
  /** The cache (default: $HF_HUB_CACHE, $HF_HOME/hub or ~/.cache/huggingface/hub). */
  cacheDir?: string;
  /** Files downloaded at the same time (default 4). */
  concurrency?: number;
  /** Resume attempts per file after a cut connection (default 3). */
  retries?: number;
  onEvent?: (e: PullEvent) => void;
}

export interface PlannedFile {
  path: string;
  size?: number;
  /** Already in place: nothing to download. */
  present: boolean;
}

export type PullEvent =
  | { type: 'plan'; repo: string; revision: string; commit: string; files: PlannedFile[] }
  | { type: 'start'; file: string; total?: number; resumedFrom: number }
  | { type: 'bytes'; file: string; bytes: number }
  | { type: 'done'; file: string };

export interface PullResult {
  repo: string;
  revision: string;
  commit: string;
  /** The snapshot folder (or --dir) holding the files. */
  path: string;
  files: { path: string; size?: number; fetched: number; present: boolean }[];
  /** Bytes received over the network. */
  fetched: number;
}

/** A file's cache key, as huggingface_hub names its blob: the LFS sha256, else the git blob id. */
function etagOf(f: HubFile): string | undefined {
  return f.sha256 ?? f.blobId;
}

/** Repo paths are joined onto local folders: refuse any that would escape them. */
function safeRelative(repo: string, file: string): string {
  const parts = file.split('/');
  if (file.startsWith('/') || file.includes('\\') || parts.some((p) => p === '' || p === '.' || p === '..')) {
    throw new ChatGLMError('HTTP', `${repo} lists a file with an unsafe path: ${JSON.stringify(file)}`);
  }
  return path.join(...parts);
}

async function exists(p: string): Promise<boolean> {
  try {
    await stat(p);
    return true;
  } catch {
    return false;
  }
}

/** snapshots/<commit>/<file> -> ../../blobs/<etag>, relative as huggingface_hub makes it; a copy where links are refused. */
async function linkBlob(blob: string, pointer: string): Promise<void> {
  await mkdir(path.dirname(pointer), { recursive: true });
  try {
    await lstat(pointer);
    await rm(pointer, { force: true });
  } catch {
    // not there yet
  }
  try {
    await symlink(path.relative(path.dirname(pointer), blob), pointer);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EACCES') throw err;
    await copyFile(blob, pointer);
  }
}

/**
 * Hash and size of a file the model-info API listed without them (a mirror that ignores
 * ?blobs=true), from one HEAD of resolve/, as huggingface_hub reads them: the ETag (X-Linked-Etag
 * for LFS files) is the LFS sha256 (64 hex digits) or the git blob sha1 (40).
 */
async function headInfo(repo: string, file: HubFile, url: string, endpoint: string, token: string | undefined, signal: AbortSignal): Promise<HubFile> {
  const res = await hubFetch(url, { method: 'HEAD', headers: { ...authHeaders(token), 'accept-encoding': 'identity' }, redirect: 'manual', signal }, endpoint);
  if (res.status >= 400) throw httpError(res, repo, `${repo}/${file.path}`, token !== undefined);
  const tag = (res.headers.get('x-linked-etag') ?? res.headers.get('etag'))?.replace(/^W\//, '').replace(/"/g, '');
  if (tag === undefined) throw new ChatGLMError('HTTP', `${url}: the server sends no ETag, so the file cannot be cached; use --dir DIR`);
  const sizeText = res.headers.get('x-linked-size') ?? (res.status === 200 ? res.headers.get('content-length') : null);
  const out: HubFile = { ...file };
  if (file.size === undefined && sizeText !== null && /^\d+$/.test(sizeText)) out.size = Number(sizeText);
  if (/^[0-9a-f]{64}$/.test(tag)) out.sha256 = tag;
  else if (/^[0-9a-f]{40}$/.test(tag)) out.blobId = tag;
  else throw new ChatGLMError('HTTP', `${url}: ETag ${JSON.stringify(tag)} is not a hub file hash, so the file cannot be cached; use --dir DIR`);
  return out;
}

async function writeRef(folder: string, revision: string, commit: string): Promise<void> {
  if (revision === commit) return;
  const ref = path.join(folder, 'refs', ...revision.split('/'));
  const old = await readFile(ref, 'utf8').catch(() => undefined);
  if (old === commit) return;
  await mkdir(path.dirname(ref), { recursive: true });
  // No newline: huggingface_hub compares the file's text with the hash as it is.
  await writeFile(ref, commit);
}

/**
 * Runs `n` copies of `worker`; the first failure aborts the others. Throws the failure that
 * stopped the pull (not the aborts it caused), or ABORTED when the caller's signal did.
 */
async function runWorkers(n: number, worker: () => Promise<void>, controller: AbortController, signal: AbortSignal | undefined): Promise<void> {
  const results = await Promise.allSettled(
    Array.from({ length: n }, () =>
      worker().catch((err: unknown) => {
        controller.abort(err);
        throw err;
      }),
    ),
  );
  const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as unknown);
  if (failures.length === 0) return;
  const interrupted = new ChatGLMError('ABORTED', 'the download was interrupted; run the same command again to resume', { cause: failures[0] });
  if (signal?.aborted === true) throw interrupted;
  const isAbort = (e: unknown): boolean => (e instanceof ChatGLMError && e.code === 'ABORTED') || (e instanceof Error && e.name === 'AbortError');
  throw failures.find((e) => !isAbort(e)) ?? interrupted;
}

/** Downloads REPO (OWNER/NAME) at a revision. See PullOptions. */
export async function pullModel(repo: string, options: PullOptions = {}): Promise<PullResult> {
  const ref = parseModelRef(repo);
  if (ref === undefined || ref.repo !== repo) {
    throw new ChatGLMError('BAD_ARGUMENT', `${JSON.stringify(repo)} is not a hub model name; give OWNER/NAME, e.g. THUDM/chatglm3-6b`);
  }
  const revision = options.revision ?? 'main';
  const endpoint = hubEndpoint(options);
  const token = hubToken(options);
  // One controller for the whole pull: the caller's abort, or the first failing file, stops the rest.
  const controller = new AbortController();
  const onAbort = (): void => controller.abort(options.signal?.reason);
  if (options.signal?.aborted === true) onAbort();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const info = await fetchRepoInfo(repo, revision, { ...options, endpoint, token: token ?? '', signal: controller.signal });
    if (!COMMIT_HASH.test(info.commit)) throw new ChatGLMError('HTTP', `${repo}@${revision}: the hub answered with commit ${JSON.stringify(info.commit)}, not a 40-digit hash`);
    const chosen = selectFiles(repo, info.files, options.include, options.exclude);
    const folder = repoFolder(repo, options.cacheDir ?? hubCacheDir(options.env));
    const base = options.dir ?? path.join(folder, 'snapshots', info.commit);
    const planned = await Promise.all(
      chosen.map(async (f) => {
        const rel = safeRelative(repo, f.path);
        const dest = path.join(base, rel);
        let present = await exists(dest);
        // A plain folder has no hashes in its names: a file of the right size was put there verified.
        if (present && options.dir !== undefined && f.size !== undefined) present = (await stat(dest)).size === f.size;
        return { file: f, rel, dest, present };
      }),
    );
    options.onEvent?.({
      type: 'plan',
      repo,
      revision,
      commit: info.commit,
      files: planned.map((p) => ({ path: p.file.path, ...(p.file.size !== undefined ? { size: p.file.size } : {}), present: p.present })),
    });
    const fetchedBy = new Map<string, number>();
    const queue = planned.filter((p) => !p.present);
    // Files with the same contents share one blob: it is downloaded once, by the first worker to get there.
    const blobsInFlight = new Map<string, Promise<void>>();
    const worker = async (): Promise<void> => {
      for (;;) {
        const job = queue.shift();
        if (job === undefined) return;
        const url = resolveUrl(endpoint, repo, info.commit, job.file.path);
        const f = etagOf(job.file) !== undefined ? job.file : await headInfo(repo, job.file, url, endpoint, token, controller.signal);
        let dest: string;
        let incomplete: string;
        if (options.dir !== undefined) {
          dest = job.dest;
          incomplete = path.join(options.dir, '.cache', 'chatglm', `${job.rel}.incomplete`);
        } else {
          dest = path.join(folder, 'blobs', etagOf(f)!);
          incomplete = `${dest}.incomplete`;
        }
        const place = async (): Promise<void> => {
          if (options.dir === undefined && (await exists(dest))) {
            options.onEvent?.({ type: 'start', file: f.path, ...(f.size !== undefined ? { total: f.size } : {}), resumedFrom: f.size ?? 0 });
            return;
          }
          const r = await downloadVerified(
            { url, dest, incomplete, ...(f.size !== undefined ? { size: f.size } : {}), ...(f.sha256 !== undefined ? { sha256: f.sha256 } : {}), ...(f.blobId !== undefined ? { blobId: f.blobId } : {}) },
            {
              repo,
              file: f.path,
              endpoint,
              ...(token !== undefined ? { token } : {}),
              signal: controller.signal,
              ...(options.retries !== undefined ? { retries: options.retries } : {}),
              onStart: (resumedFrom, total) => options.onEvent?.({ type: 'start', file: f.path, ...(total !== undefined ? { total } : {}), resumedFrom }),
              onBytes: (bytes) => options.onEvent?.({ type: 'bytes', file: f.path, bytes }),
            },
          );
          fetchedBy.set(f.path, r.fetched);
        };
        // Queued behind any other file with the same blob (no await between the lookup and the set).
        const mine = (blobsInFlight.get(dest) ?? Promise.resolve()).then(place);
        blobsInFlight.set(dest, mine.catch(() => {}));
        await mine;
        if (options.dir === undefined) await linkBlob(dest, job.dest);
        options.onEvent?.({ type: 'done', file: f.path });
      }
    };
    await runWorkers(Math.max(1, Math.min(options.concurrency ?? 4, queue.length)), worker, controller, options.signal);
    if (options.dir === undefined) await writeRef(folder, revision, info.commit);
    return {
      repo,
      revision,
      commit: info.commit,
      path: base,
      files: planned.map((p) => ({ path: p.file.path, ...(p.file.size !== undefined ? { size: p.file.size } : {}), fetched: fetchedBy.get(p.file.path) ?? 0, present: p.present })),
      fetched: [...fetchedBy.values()].reduce((a, b) => a + b, 0),
    };
  } finally {
    options.signal?.removeEventListener('abort', onAbort);
  }
}

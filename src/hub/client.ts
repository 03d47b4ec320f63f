/**
 * A small client for the Hugging Face hub's HTTP API, on fetch: the model-info call that lists a
 * revision's files with their sizes and hashes, and GETs of resolve/<rev>/<file>. It speaks to
 * $HF_ENDPOINT when set (the convention of huggingface_hub, used by mirrors) and sends $HF_TOKEN
 * (or the token `huggingface-cli login` saved) as a bearer token.
 *
 * Why not @huggingface/hub: its cache download (downloadFileToCacheDir) restarts interrupted files
 * from zero, checks no hash, takes no AbortSignal and names snapshots by each file's last commit
 * rather than the revision's commit, so its snapshots do not match huggingface_hub's.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ChatGLMError } from '../errors.js';
import { hfHome } from './cache.js';

export const DEFAULT_ENDPOINT = 'https://huggingface.co';

export interface HubOptions {
  /** Hub root URL (default: $HF_ENDPOINT, else huggingface.co). */
  endpoint?: string;
  /** Access token (default: $HF_TOKEN, else the token file in $HF_HOME). Empty string = none. */
  token?: string;
  signal?: AbortSignal;
  /** Environment to read HF_* variables from (default process.env). */
  env?: NodeJS.ProcessEnv;
}

export function hubEndpoint(options: HubOptions = {}): string {
  const env = options.env ?? process.env;
  const e = options.endpoint ?? env['HF_ENDPOINT'];
  return (e !== undefined && e !== '' ? e : DEFAULT_ENDPOINT).replace(/\/+$/, '');
}

export function hubToken(options: HubOptions = {}): string | undefined {
  if (options.token !== undefined) return options.token === '' ? undefined : options.token;
  const env = options.env ?? process.env;
  const t = env['HF_TOKEN'] ?? env['HUGGING_FACE_HUB_TOKEN'];
  if (t !== undefined) return t.trim() === '' ? undefined : t.trim();
  const file = env['HF_TOKEN_PATH'] ?? path.join(hfHome(env), 'token');
  try {
    const saved = readFileSync(file, 'utf8').trim();
    return saved === '' ? undefined : saved;
  } catch {
    return undefined;
  }
}

/** A file of a revision, as the model-info API lists it with ?blobs=true. */
export interface HubFile {
  /** Path inside the repo, '/'-separated. */
  path: string;
  /** Bytes (of the real file for LFS files); undefined when the server did not say. */
  size?: number;
  /** Git blob sha1 (the ETag of a file kept in git). */
  blobId?: string;
  /** SHA-256 of an LFS file (its ETag, and what the downloaded bytes must hash to). */
  sha256?: string;
}

export interface RepoInfo {
  repo: string;
  /** The commit the revision resolved to. */
  commit: string;
  files: HubFile[];
}

function isAbort(err: unknown, signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true || (err instanceof Error && err.name === 'AbortError');
}

/** fetch, with network failures and aborts turned into ChatGLMErrors that say what to do. */
export async function hubFetch(url: string, init: RequestInit & { signal?: AbortSignal }, endpoint: string): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (err) {
    if (isAbort(err, init.signal ?? undefined)) throw new ChatGLMError('ABORTED', 'the download was interrupted; run the same command again to resume', { cause: err });
    throw networkError(err, url, endpoint);
  }
}

export function networkError(err: unknown, url: string, endpoint: string): ChatGLMError {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  const why = cause?.code ?? cause?.message ?? (err as Error).message;
  const host = new URL(url).host;
  const hint = endpoint === DEFAULT_ENDPOINT ? 'check the network, or set HF_ENDPOINT to a mirror' : `check the network and HF_ENDPOINT (${endpoint})`;
  return new ChatGLMError('NETWORK', `cannot reach ${host} (${why}); ${hint}`, { cause: err });
}

/**
 * The error for a failed hub response. The hub answers 401 both for a private/gated repo without a
 * token and for a repo that does not exist, and says which in X-Error-Code.
 */
export function httpError(res: Response, repo: string, what: string, hasToken: boolean): ChatGLMError {
  const code = res.headers.get('x-error-code') ?? '';
  const serverMsg = res.headers.get('x-error-message');
  const detail = serverMsg !== null ? `: ${serverMsg}` : '';
  if (code === 'GatedRepo' || (res.status === 403 && hasToken)) {
    return hasToken
      ? new ChatGLMError('HTTP', `${repo} is gated (HTTP ${res.status}${detail}); accept its conditions on the hub page of ${repo} with the account of your HF_TOKEN`)
      : new ChatGLMError('HTTP', `${repo} is gated (HTTP ${res.status}${detail}); accept its conditions on its hub page, then set HF_TOKEN to an access token of that account`);
  }
  if (res.status === 401 || res.status === 403) {
    return hasToken
      ? new ChatGLMError('HTTP', `${what}: HTTP ${res.status}${detail}; the repo does not exist or HF_TOKEN has no access to it`)
      : new ChatGLMError('HTTP', `${what}: HTTP ${res.status}${detail}; the repo does not exist or needs a login: set HF_TOKEN to an access token`);
  }
  if (res.status === 404) {
    if (code === 'RevisionNotFound') return new ChatGLMError('HTTP', `${what}: revision not found (HTTP 404${detail}); check --revision`);
    if (code === 'EntryNotFound') return new ChatGLMError('HTTP', `${what}: file not found (HTTP 404${detail})`);
    return new ChatGLMError('HTTP', `${what}: not found (HTTP 404${detail}); check the name OWNER/NAME`);
  }
  return new ChatGLMError('HTTP', `${what}: HTTP ${res.status} ${res.statusText}${detail}`);
}

export function authHeaders(token: string | undefined): Record<string, string> {
  return token === undefined ? {} : { authorization: `Bearer ${token}` };
}

/** GET /api/models/REPO/revision/REV?blobs=true: the revision's commit and files. */
export async function fetchRepoInfo(repo: string, revision: string, options: HubOptions = {}): Promise<RepoInfo> {
  const endpoint = hubEndpoint(options);
  const token = hubToken(options);
  const url = `${endpoint}/api/models/${repo}/revision/${encodeURIComponent(revision)}?blobs=true`;
  const res = await hubFetch(url, { headers: authHeaders(token), ...(options.signal !== undefined ? { signal: options.signal } : {}) }, endpoint);
  if (!res.ok) {
    await res.body?.cancel();
    throw httpError(res, repo, `${repo}@${revision}`, token !== undefined);
  }
  let body: unknown;
  try {
    body = await res.json();
  } catch (err) {
    if (isAbort(err, options.signal)) throw new ChatGLMError('ABORTED', 'the download was interrupted', { cause: err });
    throw new ChatGLMError('HTTP', `${url} did not answer with JSON; is HF_ENDPOINT (${endpoint}) a Hugging Face hub or mirror?`, { cause: err });
  }
  const info = body as { sha?: unknown; siblings?: unknown };
  if (typeof info.sha !== 'string' || !Array.isArray(info.siblings)) {
    throw new ChatGLMError('HTTP', `${url}: the answer has no "sha" and "siblings"; is HF_ENDPOINT (${endpoint}) a Hugging Face hub or mirror?`);
  }
  const files: HubFile[] = [];
  for (const s of info.siblings as { rfilename?: unknown; size?: unknown; blobId?: unknown; lfs?: { sha256?: unknown; size?: unknown } }[]) {
    if (typeof s.rfilename !== 'string') continue;
    const f: HubFile = { path: s.rfilename };
    const size = typeof s.lfs?.size === 'number' ? s.lfs.size : s.size;
    if (typeof size === 'number') f.size = size;
    if (typeof s.blobId === 'string') f.blobId = s.blobId;
    if (typeof s.lfs?.sha256 === 'string') f.sha256 = s.lfs.sha256;
    files.push(f);
  }
  return { repo, commit: info.sha, files };
}

/** resolve/REV/FILE on the hub, each path segment escaped. */
export function resolveUrl(endpoint: string, repo: string, revision: string, file: string): string {
  return `${endpoint}/${repo}/resolve/${encodeURIComponent(revision)}/${file.split('/').map(encodeURIComponent).join('/')}`;
}

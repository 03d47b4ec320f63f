/**
 * The Hugging Face cache layout, shared with Python's huggingface_hub so a model pulled by either
 * is seen by both:
 *
 *   $HF_HUB_CACHE (default $HF_HOME/hub, $HF_HOME defaulting to $XDG_CACHE_HOME/huggingface or ~/.cache/huggingface)
 *     models--OWNER--NAME/
 *       blobs/<etag>                 file contents; etag = LFS sha256, or git blob sha1 for small files
 *       blobs/<etag>.incomplete      a download in progress (resumed by appending)
 *       refs/<revision>              the commit a branch or tag pointed to, 40 hex digits, no newline
 *       snapshots/<commit>/<file>    relative symlink to ../../blobs/<etag>
 *
 * Everything here is synchronous file-system work: resolving a model name must be cheap and usable
 * from the places that turn --model into a path.
 */
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ChatGLMError } from '../errors.js';

export const COMMIT_HASH = /^[0-9a-f]{40}$/;
/** OWNER/NAME as the hub allows them (letters, digits, '-', '_', '.'), optionally @revision. */
const REPO_REF = /^([A-Za-z0-9][A-Za-z0-9_.-]*)\/([A-Za-z0-9_.-]+)(?:@([^\s@]+))?$/;

export interface ModelRef {
  /** OWNER/NAME */
  repo: string;
  /** A branch, tag or commit hash (default 'main'). */
  revision: string;
}

/** Parses OWNER/NAME[@rev]; undefined when the text is not shaped like a hub model name. */
export function parseModelRef(text: string): ModelRef | undefined {
  const m = REPO_REF.exec(text);
  if (m === null) return undefined;
  const [, owner, name, rev] = m;
  if (owner === '.' || owner === '..' || name === '.' || name === '..' || name!.endsWith('.gguf')) return undefined;
  return { repo: `${owner}/${name}`, revision: rev ?? 'main' };
}

/** Where huggingface_hub keeps its cache, from the same environment variables it reads. */
export function hubCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const given = env['HF_HUB_CACHE'] ?? env['HUGGINGFACE_HUB_CACHE'];
  if (given !== undefined && given !== '') return expandHome(given);
  return path.join(hfHome(env), 'hub');
}

/** $HF_HOME, default $XDG_CACHE_HOME/huggingface or ~/.cache/huggingface (holds hub/ and token). */
export function hfHome(env: NodeJS.ProcessEnv = process.env): string {
  const home = env['HF_HOME'];
  if (home !== undefined && home !== '') return expandHome(home);
  const xdg = env['XDG_CACHE_HOME'];
  return path.join(xdg !== undefined && xdg !== '' ? expandHome(xdg) : path.join(os.homedir(), '.cache'), 'huggingface');
}

function expandHome(p: string): string {
  return p === '~' || p.startsWith('~/') ? path.join(os.homedir(), p.slice(1)) : p;
}

/** models--OWNER--NAME, as huggingface_hub's repo_folder_name writes it. */
export function repoFolderName(repo: string): string {
  return ['models', ...repo.split('/')].join('--');
}

export function repoFolder(repo: string, cacheDir = hubCacheDir()): string {
  return path.join(cacheDir, repoFolderName(repo));
}

/** The commit a revision names in the cache: itself when it is a hash, else refs/<rev>. */
export function cachedCommit(folder: string, revision: string): string | undefined {
  if (COMMIT_HASH.test(revision)) return existsSync(path.join(folder, 'snapshots', revision)) ? revision : undefined;
  try {
    const commit = readFileSync(path.join(folder, 'refs', revision), 'utf8').trim();
    return COMMIT_HASH.test(commit) ? commit : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The path to open for a model directory: the snapshot folder itself when it has config.json,
 * or the single .gguf file in it. Undefined when the snapshot holds no usable model.
 */
function snapshotModelPath(snapshot: string): string | undefined {
  if (existsSync(path.join(snapshot, 'config.json'))) return snapshot;
  let ggufs: string[];
  try {
    ggufs = readdirSync(snapshot).filter((f) => f.toLowerCase().endsWith('.gguf'));
  } catch {
    return undefined;
  }
  if (ggufs.length === 1) return path.join(snapshot, ggufs[0]!);
  if (ggufs.length > 1) {
    throw new ChatGLMError(
      'BAD_ARGUMENT',
      `${snapshot} holds ${ggufs.length} .gguf files (${ggufs.join(', ')}); pass the one you want as --model ${path.join(snapshot, ggufs[0]!)}`,
      { file: snapshot },
    );
  }
  return undefined;
}

/**
 * Turns what a user gave as a model into a path: an existing file or folder is used as it is; a
 * name shaped like OWNER/NAME[@rev] is looked up in the Hugging Face cache; anything else comes
 * back unchanged (so the loader reports it as a missing path).
 */
export function resolveModelRef(given: string, cacheDir = hubCacheDir()): string {
  if (existsSync(given)) return given;
  const ref = parseModelRef(given);
  if (ref === undefined) return given;
  const folder = repoFolder(ref.repo, cacheDir);
  const commit = cachedCommit(folder, ref.revision);
  const snapshot = commit === undefined ? undefined : path.join(folder, 'snapshots', commit);
  const found = snapshot === undefined ? undefined : snapshotModelPath(snapshot);
  if (found !== undefined) return found;
  const pull = `chatglm pull ${ref.repo}${ref.revision === 'main' ? '' : ` --revision ${ref.revision}`}`;
  throw new ChatGLMError(
    'FILE_NOT_FOUND',
    `model ${given} is neither a path nor in the Hugging Face cache (${cacheDir}); download it with: ${pull}`,
    { file: folder },
  );
}

/** OWNER/NAME when `dir` is a snapshot folder (or a file in one) of a cache, else undefined. */
export function hubModelName(modelPath: string): string | undefined {
  const parts = path.resolve(modelPath).split(path.sep);
  const i = parts.lastIndexOf('snapshots');
  if (i < 1 || i + 1 >= parts.length || !COMMIT_HASH.test(parts[i + 1]!)) return undefined;
  const m = /^models--([^-].*?)--(.+)$/.exec(parts[i - 1]!);
  return m === null ? undefined : `${m[1]}/${m[2]}`;
}

/** One cached revision of a model. */
export interface CachedSnapshot {
  commit: string;
  /** Branches and tags in refs/ that point at this commit. */
  refs: string[];
  path: string;
  /** Bytes of the files in this snapshot. */
  bytes: number;
  files: number;
}

export interface CachedModel {
  repo: string;
  folder: string;
  snapshots: CachedSnapshot[];
  /** Bytes of all blobs of the repo (what `rm` frees), counting unfinished downloads. */
  bytesOnDisk: number;
  /** Downloads in progress or interrupted (blobs/*.incomplete). */
  incomplete: number;
}

function listRefs(refsDir: string, prefix = ''): { name: string; commit: string }[] {
  let entries: import('node:fs').Dirent[];
  try {
    entries = readdirSync(refsDir, { withFileTypes: true });
  } catch {
    return [];
  }
  const out: { name: string; commit: string }[] = [];
  for (const e of entries) {
    const p = path.join(refsDir, e.name);
    if (e.isDirectory()) out.push(...listRefs(p, `${prefix}${e.name}/`));
    else {
      const commit = readFileSync(p, 'utf8').trim();
      if (COMMIT_HASH.test(commit)) out.push({ name: `${prefix}${e.name}`, commit });
    }
  }
  return out;
}

/** Files below `dir` (following the snapshot symlinks), as paths relative to it. */
export function walkFiles(dir: string, prefix = ''): string[] {
  let entries: string[];
  try {
    entries = readdirSync(path.join(dir, prefix));
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const name of entries.sort()) {
    const rel = prefix === '' ? name : `${prefix}/${name}`;
    let st;
    try {
      st = statSync(path.join(dir, rel));
    } catch {
      continue; // a dangling link: its blob was removed
    }
    if (st.isDirectory()) out.push(...walkFiles(dir, rel));
    else out.push(rel);
  }
  return out;
}

/** The models in a cache (model repos only: datasets and spaces are left out). */
export function scanCache(cacheDir = hubCacheDir()): CachedModel[] {
  let names: string[];
  try {
    names = readdirSync(cacheDir).filter((n) => n.startsWith('models--'));
  } catch {
    return [];
  }
  const out: CachedModel[] = [];
  for (const name of names.sort()) {
    const folder = path.join(cacheDir, name);
    const repo = name.slice('models--'.length).split('--').join('/');
    const refs = listRefs(path.join(folder, 'refs'));
    let commits: string[] = [];
    try {
      commits = readdirSync(path.join(folder, 'snapshots')).filter((c) => COMMIT_HASH.test(c));
    } catch {
      // no snapshots yet (a first pull that was interrupted)
    }
    const snapshots = commits.map((commit): CachedSnapshot => {
      const snap = path.join(folder, 'snapshots', commit);
      const files = walkFiles(snap);
      const bytes = files.reduce((s, f) => s + statSync(path.join(snap, f)).size, 0);
      return { commit, refs: refs.filter((r) => r.commit === commit).map((r) => r.name).sort(), path: snap, bytes, files: files.length };
    });
    let bytesOnDisk = 0;
    let incomplete = 0;
    try {
      for (const b of readdirSync(path.join(folder, 'blobs'))) {
        bytesOnDisk += statSync(path.join(folder, 'blobs', b)).size;
        if (b.endsWith('.incomplete')) incomplete++;
      }
    } catch {
      // no blobs folder
    }
    out.push({ repo, folder, snapshots, bytesOnDisk, incomplete });
  }
  return out;
}

export interface RemoveResult {
  repo: string;
  /** Commits whose snapshots were removed. */
  commits: string[];
  bytesFreed: number;
}

/** The blob names the snapshot links of a repo point to. */
function linkedBlobs(folder: string): Set<string> {
  const used = new Set<string>();
  const visit = (dir: string): void => {
    let entries: import('node:fs').Dirent[];
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) visit(p);
      else if (e.isSymbolicLink()) used.add(path.basename(readlinkSync(p)));
    }
  };
  visit(path.join(folder, 'snapshots'));
  return used;
}

/**
 * Removes OWNER/NAME from the cache, or with @rev only that revision's snapshot, the refs naming
 * it, and the blobs no other snapshot links to.
 */
export function removeCached(given: string, cacheDir = hubCacheDir()): RemoveResult {
  const ref = parseModelRef(given);
  if (ref === undefined) throw new ChatGLMError('BAD_ARGUMENT', `${JSON.stringify(given)} is not a model name; give OWNER/NAME or OWNER/NAME@REVISION (see chatglm list)`);
  const folder = repoFolder(ref.repo, cacheDir);
  const model = scanCache(cacheDir).find((m) => m.folder === folder);
  if (model === undefined) throw new ChatGLMError('FILE_NOT_FOUND', `${ref.repo} is not in the cache (${cacheDir}); see chatglm list`, { file: folder });
  if (!given.includes('@')) {
    rmSync(folder, { recursive: true, force: true });
    return { repo: ref.repo, commits: model.snapshots.map((s) => s.commit), bytesFreed: model.bytesOnDisk };
  }
  const commit = cachedCommit(folder, ref.revision);
  if (commit === undefined) {
    throw new ChatGLMError('FILE_NOT_FOUND', `${ref.repo} has no cached revision ${ref.revision} (cached: ${model.snapshots.map((s) => [...s.refs, s.commit.slice(0, 12)].join(' ')).join('; ') || 'none'})`, { file: folder });
  }
  rmSync(path.join(folder, 'snapshots', commit), { recursive: true, force: true });
  for (const r of listRefs(path.join(folder, 'refs'))) {
    if (r.commit === commit) rmSync(path.join(folder, 'refs', ...r.name.split('/')), { force: true });
  }
  const used = linkedBlobs(folder);
  let bytesFreed = 0;
  const blobs = path.join(folder, 'blobs');
  let names: string[] = [];
  try {
    names = readdirSync(blobs);
  } catch {
    // none
  }
  for (const b of names) {
    if (b.endsWith('.incomplete') || used.has(b)) continue;
    bytesFreed += lstatSync(path.join(blobs, b)).size;
    rmSync(path.join(blobs, b), { force: true });
  }
  // The last revision gone and no download pending: remove the repo folder too, as `rm OWNER/NAME` would.
  if (walkFiles(path.join(folder, 'snapshots')).length === 0 && !(existsSync(blobs) && readdirSync(blobs).some((b) => b.endsWith('.incomplete')))) {
    rmSync(folder, { recursive: true, force: true });
  }
  return { repo: ref.repo, commits: [commit], bytesFreed };
}

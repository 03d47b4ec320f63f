/**
 * The cache is shared with Python's huggingface_hub, checked against huggingface_hub itself:
 * its snapshot_download and our `pull` fetch the same repo from the stand-in hub into two caches,
 * which must hold the same refs, snapshot links and blobs; then each side opens the other's cache
 * offline. Needs a Python with huggingface_hub ($CHATGLM_HF_PYTHON, default python3); skips
 * without one.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync, lstatSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeChatModelDir } from './support/chat-model-dir.js';
import { FakeHub } from './support/hub-server.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const bin = path.join(root, 'bin/chatglm.js');
const python = process.env['CHATGLM_HF_PYTHON'] ?? 'python3';
const probe = spawnSync(python, ['-c', 'import huggingface_hub; print(huggingface_hub.__version__)'], { encoding: 'utf8' });
const skip = probe.status === 0 ? false : `needs a Python with huggingface_hub (set CHATGLM_HF_PYTHON; ${python} has none)`;
const REPO = 'tiny-org/tiny-chatglm3';
const COMMIT = 'c'.repeat(40);

let hub: FakeHub;
let tmp = '';
let cleanupModel: () => Promise<void> = async () => {};
let modelDir = '';

function exec(cmd: string, args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { encoding: 'utf8', env: { ...process.env, HF_TOKEN: '', HF_HUB_DISABLE_TELEMETRY: '1', ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

/** The cache as a sorted list of "kind path [link target | content hash]", without huggingface_hub's extras. */
function tree(cache: string): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const name of readdirSync(path.join(cache, rel)).sort()) {
      const r = rel === '' ? name : `${rel}/${name}`;
      // .locks, CACHEDIR.TAG and trees/ are huggingface_hub's own bookkeeping, not part of the shared layout.
      if (name === '.locks' || name === 'CACHEDIR.TAG' || name === 'trees') continue;
      const st = lstatSync(path.join(cache, r));
      if (st.isSymbolicLink()) out.push(`link ${r} -> ${readlinkSync(path.join(cache, r))}`);
      else if (st.isDirectory()) walk(r);
      else out.push(`file ${r} ${st.size} ${JSON.stringify(readFileSync(path.join(cache, r)).subarray(0, 48).toString('latin1'))}`);
    }
  };
  walk('');
  return out;
}

before(async () => {
  if (skip !== false) return;
  tmp = await mkdtemp(path.join(os.tmpdir(), 'chatglm-interop-'));
  ({ dir: modelDir, cleanup: cleanupModel } = await writeChatModelDir(5));
  await writeFile(path.join(modelDir, 'messages.json'), JSON.stringify([{ role: 'user', content: 'hi' }]));
  const files: Record<string, Uint8Array> = {};
  for (const f of ['config.json', 'model.safetensors', 'tokenizer.model']) files[f] = await readFile(path.join(modelDir, f));
  files['docs/notes.txt'] = Buffer.from('a file in a folder\n');
  hub = await new FakeHub('localhost').start();
  hub.repos.set(REPO, { commit: COMMIT, files });
});

after(async () => {
  if (skip !== false) return;
  await hub.close();
  await cleanupModel();
  await rm(tmp, { recursive: true, force: true });
});

test('huggingface_hub and `chatglm pull` build the same cache, and each reads the other\'s', { skip }, async () => {
  const pyCache = path.join(tmp, 'py');
  const jsCache = path.join(tmp, 'js');
  const py = await exec(python, ['-c', `from huggingface_hub import snapshot_download; print(snapshot_download(${JSON.stringify(REPO)}))`], {
    HF_HUB_CACHE: pyCache,
    HF_ENDPOINT: hub.hubUrl,
  });
  assert.equal(py.code, 0, py.stderr);
  const js = await exec(process.execPath, [bin, 'pull', REPO, '--include', '*'], { HF_HUB_CACHE: jsCache, HF_ENDPOINT: hub.hubUrl });
  assert.equal(js.code, 0, js.stderr);
  const want = tree(pyCache);
  assert.ok(want.some((l) => l.startsWith('link models--tiny-org--tiny-chatglm3/snapshots/') && l.includes('docs/notes.txt -> ../../../blobs/')), want.join('\n'));
  assert.deepEqual(tree(jsCache), want);

  // Python, offline, on our cache.
  const read = await exec(
    python,
    ['-c', `from huggingface_hub import snapshot_download, scan_cache_dir\nprint(snapshot_download(${JSON.stringify(REPO)}))\nr = scan_cache_dir().repos\nprint([(x.repo_id, x.size_on_disk, [(v.commit_hash, sorted(v.refs), v.nb_files) for v in x.revisions]) for x in r])`],
    { HF_HUB_CACHE: jsCache, HF_HUB_OFFLINE: '1' },
  );
  assert.equal(read.code, 0, read.stderr);
  const [snap, scan] = read.stdout.trim().split('\n');
  assert.equal(snap, path.join(jsCache, 'models--tiny-org--tiny-chatglm3', 'snapshots', COMMIT));
  assert.match(scan!, new RegExp(`^\\[\\('${REPO}', \\d+, \\[\\('${COMMIT}', \\['main'\\], 4\\)\\]\\)\\]$`));

  // We, on Python's cache: chat --model OWNER/NAME answers as on the original folder.
  const args = ['--messages', path.join(modelDir, 'messages.json'), '--json', '--greedy', '--max-new-tokens', '5', '--backend', 'reference'];
  const byName = await exec(process.execPath, [bin, 'chat', '--model', REPO, ...args], { HF_HUB_CACHE: pyCache });
  const byPath = await exec(process.execPath, [bin, 'chat', '--model', modelDir, ...args], {});
  assert.equal(byName.code, 0, byName.stderr);
  assert.equal(byName.stdout, byPath.stdout);
});

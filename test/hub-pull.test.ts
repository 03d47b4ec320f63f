/**
 * `pull` against a stand-in hub on 127.0.0.1 (test/support/hub-server.ts): the cache layout
 * huggingface_hub uses, models by name through the CLI and loadChatModel, resume with Range after a
 * cut, hash mismatches, 401/404, no network, and Ctrl-C / AbortSignal leaving no file under its
 * final name. The model is a tiny ChatGLM3 directory written by our own writers.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync, lstatSync, readFileSync, readlinkSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ChatGLMError } from '../src/errors.js';
import { pullModel } from '../src/hub/pull.js';
import { hubCacheDir, parseModelRef, removeCached, resolveModelRef, scanCache } from '../src/hub/cache.js';
import { globToRegExp, selectFiles } from '../src/hub/select.js';
import { loadChatModel } from '../src/api.js';
import { writeChatModelDir } from './support/chat-model-dir.js';
import { FakeHub, gitBlobSha1, sha256 } from './support/hub-server.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const bin = path.join(root, 'bin/chatglm.js');
const REPO = 'tiny-org/tiny-chatglm3';
const COMMIT = 'a'.repeat(8) + '0123456789abcdef0123456789abcdef';

let hub: FakeHub;
let modelDir = '';
let cleanupModel: () => Promise<void> = async () => {};
let files: Record<string, Uint8Array> = {};
const temps: string[] = [];

async function tempDir(): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), 'chatglm-hub-'));
  temps.push(d);
  return d;
}

function run(args: string[], env: Record<string, string>, input = ''): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, HF_TOKEN: '', ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
    child.stdin!.end(input);
  });
}

before(async () => {
  ({ dir: modelDir, cleanup: cleanupModel } = await writeChatModelDir(3));
  await writeFile(path.join(modelDir, 'messages.json'), JSON.stringify([{ role: 'user', content: '你好' }]));
  files = {
    'config.json': await readFile(path.join(modelDir, 'config.json')),
    'model.safetensors': await readFile(path.join(modelDir, 'model.safetensors')),
    'tokenizer.model': await readFile(path.join(modelDir, 'tokenizer.model')),
    'tokenizer_config.json': Buffer.from('{"padding_side": "left"}'),
    'modeling_chatglm.py': Buffer.from('# Python modelling code: not needed by this engine\n'),
    'pytorch_model.bin': Buffer.from('not the weights this engine picks when safetensors exist'),
    'README.md': Buffer.from('# tiny\n'),
  };
  hub = await new FakeHub().start();
  hub.repos.set(REPO, { commit: COMMIT, files });
  hub.repos.set('tiny-org/gated', { commit: 'b'.repeat(40), files, token: 'hf_secret' });
});

after(async () => {
  await hub.close();
  await cleanupModel();
  for (const d of temps) await rm(d, { recursive: true, force: true });
});

/** Waits until a file holds `size` bytes (the client has written what the server sent). */
async function untilSize(file: string, size: number): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (existsSync(file) && (await stat(file)).size === size) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.fail(`${file} never reached ${size} bytes`);
}

function snapshotOf(cache: string, repo = REPO, commit = COMMIT): string {
  return path.join(cache, `models--${repo.replace('/', '--')}`, 'snapshots', commit);
}

test('pull through the CLI writes the huggingface_hub cache layout; chat --model OWNER/NAME then runs on it', async () => {
  const home = await tempDir();
  const env = { HF_HOME: home, HF_ENDPOINT: hub.hubUrl };
  const r = await run(['pull', REPO], env);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /use it with --model tiny-org\/tiny-chatglm3/);
  const cache = path.join(home, 'hub');
  const folder = path.join(cache, 'models--tiny-org--tiny-chatglm3');
  // refs/main holds the commit with no newline, as huggingface_hub writes and reads it.
  assert.equal(readFileSync(path.join(folder, 'refs', 'main'), 'utf8'), COMMIT);
  const snap = snapshotOf(cache);
  assert.deepEqual((await readdir(snap)).sort(), ['README.md', 'config.json', 'model.safetensors', 'tokenizer.model', 'tokenizer_config.json']);
  // Snapshot entries are relative links to blobs named by the LFS sha256 or the git blob sha1.
  assert.equal(readlinkSync(path.join(snap, 'model.safetensors')), `../../blobs/${sha256(files['model.safetensors']!)}`);
  assert.equal(readlinkSync(path.join(snap, 'config.json')), `../../blobs/${gitBlobSha1(files['config.json']!)}`);
  assert.deepEqual(await readFile(path.join(snap, 'model.safetensors')), Buffer.from(files['model.safetensors']!));
  assert.deepEqual((await readdir(path.join(folder, 'blobs'))).filter((b) => b.endsWith('.incomplete')), []);
  // The LFS file came from the CDN origin, which never saw a token (there was none here anyway).
  assert.ok(hub.log.some((e) => e.server === 'cdn' && e.method === 'GET'));

  const byPath = await run(['chat', '--model', modelDir, '--messages', path.join(modelDir, 'messages.json'), '--json', '--greedy', '--max-new-tokens', '6', '--backend', 'reference'], env);
  const byName = await run(['chat', '--model', REPO, '--messages', path.join(modelDir, 'messages.json'), '--json', '--greedy', '--max-new-tokens', '6', '--backend', 'reference'], env);
  assert.equal(byPath.code, 0, byPath.stderr);
  assert.equal(byName.code, 0, byName.stderr);
  assert.equal(byName.stdout, byPath.stdout);

  const list = await run(['list', '--json'], env);
  assert.equal(list.code, 0, list.stderr);
  const listed = JSON.parse(list.stdout) as { cache: string; models: { model: string; revision: string; commit: string; family: string; bytes: number; files: number }[] };
  assert.equal(listed.cache, cache);
  const sizes = ['README.md', 'config.json', 'model.safetensors', 'tokenizer.model', 'tokenizer_config.json'].reduce((s, f) => s + files[f]!.length, 0);
  assert.deepEqual(listed.models, [{ model: REPO, revision: 'main', commit: COMMIT, family: 'chatglm3', bytes: sizes, files: 5, path: snap, incomplete: 0 }]);

  const removed = await run(['rm', REPO], env);
  assert.equal(removed.code, 0, removed.stderr);
  assert.match(removed.stderr, /^rm: removed tiny-org\/tiny-chatglm3, 142\.\d kB freed\n$/);
  assert.equal(existsSync(folder), false);
  assert.throws(
    () => resolveModelRef(REPO, cache),
    (e: unknown) => e instanceof ChatGLMError && e.message === `model ${REPO} is neither a path nor in the Hugging Face cache (${cache}); download it with: chatglm pull ${REPO}`,
  );
});

test('loadChatModel("OWNER/NAME") opens the cached model and names it OWNER/NAME', async () => {
  const cache = await tempDir();
  await pullModel(REPO, { endpoint: hub.hubUrl, token: '', cacheDir: cache });
  // A second pull finds everything in place and downloads nothing.
  const mark = hub.log.length;
  const again = await pullModel(REPO, { endpoint: hub.hubUrl, token: '', cacheDir: cache });
  assert.equal(again.fetched, 0);
  assert.ok(again.files.every((f) => f.present));
  assert.deepEqual(hub.log.slice(mark).map((e) => e.path), [`/api/models/${REPO}/revision/main`]);
  const saved = process.env['HF_HUB_CACHE'];
  process.env['HF_HUB_CACHE'] = cache;
  try {
    const byName = await loadChatModel(REPO, { backend: 'reference' });
    const byPath = await loadChatModel(modelDir, { backend: 'reference' });
    assert.equal(byName.name, REPO);
    const req = { messages: [{ role: 'user' as const, content: '你好' }], temperature: 0, max_tokens: 6 };
    const a = await byName.createChatCompletion(req);
    const b = await byPath.createChatCompletion(req);
    assert.equal(a.choices[0].message.content, b.choices[0].message.content);
    assert.equal(resolveModelRef(`${REPO}@${COMMIT}`), snapshotOf(cache));
    assert.throws(() => resolveModelRef(`${REPO}@v2`), (e: unknown) => e instanceof ChatGLMError && e.message.includes(`chatglm pull ${REPO} --revision v2`));
  } finally {
    if (saved === undefined) delete process.env['HF_HUB_CACHE'];
    else process.env['HF_HUB_CACHE'] = saved;
  }
});

test('a transfer cut midway resumes with a Range request from the bytes on disk; no byte is fetched twice', async () => {
  const cache = await tempDir();
  const big = files['model.safetensors']!;
  const cut = Math.floor(big.length / 3);
  hub.faults.set('model.safetensors', { stallAfter: cut });
  hub.expectStall();
  const mark = hub.log.length;
  const pulling = pullModel(REPO, { endpoint: hub.hubUrl, token: '', cacheDir: cache, retries: 0 });
  const blob = path.join(cache, 'models--tiny-org--tiny-chatglm3', 'blobs', sha256(big));
  await hub.stalled;
  await untilSize(`${blob}.incomplete`, cut);
  hub.dropStalled();
  await assert.rejects(pulling, (e: unknown) => e instanceof ChatGLMError && e.code === 'NETWORK');
  assert.equal(existsSync(blob), false);
  assert.equal(existsSync(path.join(snapshotOf(cache), 'model.safetensors')), false);
  assert.equal(existsSync(path.join(cache, 'models--tiny-org--tiny-chatglm3', 'refs', 'main')), false);
  const partial = (await stat(`${blob}.incomplete`)).size;
  assert.equal(partial, cut);

  const r = await pullModel(REPO, { endpoint: hub.hubUrl, token: '', cacheDir: cache });
  const gets = hub.log.slice(mark).filter((e) => e.server === 'cdn' && e.method === 'GET');
  assert.equal(gets.length, 2);
  assert.equal(gets[0]!.range, undefined);
  assert.equal(gets[1]!.range, `bytes=${partial}-`);
  assert.equal(gets[1]!.sent, big.length - partial);
  assert.equal(r.files.find((f) => f.path === 'model.safetensors')!.fetched, big.length - partial);
  assert.deepEqual(await readFile(path.join(snapshotOf(cache), 'model.safetensors')), Buffer.from(big));
  assert.equal(existsSync(`${blob}.incomplete`), false);
});

test('within one pull, a cut connection is retried from where it stopped', async () => {
  const cache = await tempDir();
  const big = files['model.safetensors']!;
  hub.faults.set('model.safetensors', { stallAfter: 1000 });
  hub.expectStall();
  const mark = hub.log.length;
  const pulling = pullModel(REPO, { endpoint: hub.hubUrl, token: '', cacheDir: cache });
  await hub.stalled;
  await untilSize(path.join(cache, 'models--tiny-org--tiny-chatglm3', 'blobs', `${sha256(big)}.incomplete`), 1000);
  hub.dropStalled();
  await pulling;
  const gets = hub.log.slice(mark).filter((e) => e.server === 'cdn' && e.method === 'GET');
  assert.equal(gets.length, 2);
  assert.equal(gets[1]!.range, 'bytes=1000-');
  assert.equal(gets[1]!.sent, big.length - 1000);
  assert.equal(sha256(await readFile(path.join(snapshotOf(cache), 'model.safetensors'))), sha256(big));
});

test('a file whose bytes do not match the LFS sha256 is rejected and not left anywhere', async () => {
  const cache = await tempDir();
  hub.faults.set('model.safetensors', { corrupt: true, times: 10 });
  try {
    await assert.rejects(
      pullModel(REPO, { endpoint: hub.hubUrl, token: '', cacheDir: cache, retries: 0 }),
      (e: unknown) => e instanceof ChatGLMError && e.code === 'BAD_FORMAT' && /model\.safetensors: SHA-256 [0-9a-f]{64} does not match the hub's/.test(e.message),
    );
  } finally {
    hub.faults.delete('model.safetensors');
  }
  const blobs = path.join(cache, 'models--tiny-org--tiny-chatglm3', 'blobs');
  const left = await readdir(blobs);
  assert.ok(!left.some((b) => b.startsWith(sha256(files['model.safetensors']!))), left.join(', '));
  assert.equal(existsSync(path.join(snapshotOf(cache), 'model.safetensors')), false);
  assert.equal(existsSync(path.join(cache, 'models--tiny-org--tiny-chatglm3', 'refs', 'main')), false);
  // A small file's git sha1 is checked too.
  hub.faults.set('config.json', { corrupt: true });
  await assert.rejects(
    pullModel(REPO, { endpoint: hub.hubUrl, token: '', cacheDir: await tempDir(), include: ['config.json'], retries: 0 }),
    (e: unknown) => e instanceof ChatGLMError && e.code === 'BAD_FORMAT' && e.message.includes('git sha1'),
  );
});

test('404 for an unknown repo, 401 without a token for a gated one; with HF_TOKEN it downloads and the CDN never sees the token', async () => {
  const home = await tempDir();
  await assert.rejects(
    pullModel('tiny-org/nope', { endpoint: hub.hubUrl, env: { HF_TOKEN: 'hf_secret' }, cacheDir: home }),
    (e: unknown) => e instanceof ChatGLMError && e.code === 'HTTP' && e.message === 'tiny-org/nope@main: not found (HTTP 404: Repository not found); check the name OWNER/NAME',
  );
  const noToken = await run(['pull', 'tiny-org/gated'], { HF_HOME: home, HF_ENDPOINT: hub.hubUrl });
  assert.equal(noToken.code, 1);
  assert.match(noToken.stderr, /^chatglm: tiny-org\/gated@main: HTTP 401: Repository not found; the repo does not exist or needs a login: set HF_TOKEN to an access token\n$/);
  const mark = hub.log.length;
  // The token comes from HF_TOKEN in the environment.
  const ok = await pullModel('tiny-org/gated', { endpoint: hub.hubUrl, env: { HF_TOKEN: 'hf_secret', HF_HOME: home } });
  assert.equal(ok.path, snapshotOf(path.join(home, 'hub'), 'tiny-org/gated', 'b'.repeat(40)));
  const seen = hub.log.slice(mark);
  assert.ok(seen.filter((e) => e.server === 'hub').every((e) => e.authorization === 'Bearer hf_secret'));
  assert.ok(seen.some((e) => e.server === 'cdn'));
  assert.ok(seen.filter((e) => e.server === 'cdn').every((e) => e.authorization === undefined));
  // A gated repo: its listing is public, its files are not.
  hub.repos.set('tiny-org/gated-terms', { commit: 'e'.repeat(40), files, token: 'hf_secret', gated: true });
  for (const [token, status, fix] of [
    ['', 401, 'accept its conditions on its hub page, then set HF_TOKEN to an access token of that account'],
    ['hf_other', 403, 'accept its conditions on the hub page of tiny-org/gated-terms with the account of your HF_TOKEN'],
  ] as const) {
    await assert.rejects(
      pullModel('tiny-org/gated-terms', { endpoint: hub.hubUrl, token, cacheDir: home, include: ['config.json'] }),
      (e: unknown) => e instanceof ChatGLMError && e.message === `tiny-org/gated-terms is gated (HTTP ${status}: Access to this model is restricted); ${fix}`,
    );
  }
  await pullModel('tiny-org/gated-terms', { endpoint: hub.hubUrl, token: 'hf_secret', cacheDir: home, include: ['config.json'] });
});

test('no network: a clear NETWORK error naming the host and HF_ENDPOINT', async () => {
  const cache = await tempDir();
  // A port that was just free: nothing listens there.
  const probe = http.createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));
  await assert.rejects(
    pullModel(REPO, { endpoint: `http://127.0.0.1:${port}`, token: '', cacheDir: cache }),
    (e: unknown) => e instanceof ChatGLMError && e.code === 'NETWORK' && e.message.startsWith(`cannot reach 127.0.0.1:${port} (ECONNREFUSED); check the network and HF_ENDPOINT`),
  );
});

test('an aborted pull leaves the partial under .incomplete only, and the next pull resumes it', async () => {
  const cache = await tempDir();
  const big = files['model.safetensors']!;
  hub.faults.set('model.safetensors', { stallAfter: 4096 });
  hub.expectStall();
  const controller = new AbortController();
  const pulling = pullModel(REPO, { endpoint: hub.hubUrl, token: '', cacheDir: cache, signal: controller.signal });
  await hub.stalled;
  const blob = path.join(cache, 'models--tiny-org--tiny-chatglm3', 'blobs', sha256(big));
  await untilSize(`${blob}.incomplete`, 4096);
  controller.abort();
  await assert.rejects(pulling, (e: unknown) => e instanceof ChatGLMError && e.code === 'ABORTED');
  assert.equal(existsSync(blob), false);
  assert.equal(existsSync(path.join(snapshotOf(cache), 'model.safetensors')), false);
  assert.equal((await stat(`${blob}.incomplete`)).size, 4096);
  const mark = hub.log.length;
  await pullModel(REPO, { endpoint: hub.hubUrl, token: '', cacheDir: cache });
  const get = hub.log.slice(mark).find((e) => e.server === 'cdn' && e.method === 'GET');
  assert.equal(get?.range, 'bytes=4096-');
  assert.equal(sha256(await readFile(blob)), sha256(big));
});

test('Ctrl-C during `chatglm pull` stops it with one line and no file under its final name', async () => {
  const home = await tempDir();
  hub.faults.set('model.safetensors', { stallAfter: 2048 });
  hub.expectStall();
  const child = spawn(process.execPath, [bin, 'pull', REPO], { env: { ...process.env, HF_TOKEN: '', HF_HOME: home, HF_ENDPOINT: hub.hubUrl }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  await hub.stalled;
  const blob = path.join(home, 'hub', 'models--tiny-org--tiny-chatglm3', 'blobs', sha256(files['model.safetensors']!));
  for (let i = 0; i < 200 && !existsSync(`${blob}.incomplete`); i++) await new Promise((r) => setTimeout(r, 20));
  child.kill('SIGINT');
  const code = await exited;
  assert.equal(code, 1, stderr);
  assert.match(stderr, /chatglm: the download was interrupted; run the same command again to resume\n$/);
  assert.equal(existsSync(blob), false);
  assert.equal(existsSync(path.join(snapshotOf(path.join(home, 'hub')), 'model.safetensors')), false);
  assert.ok(lstatSync(`${blob}.incomplete`).isFile());
});

test('--dir puts verified files in a plain folder, nothing else left there but the resume area', async () => {
  const out = path.join(await tempDir(), 'model');
  const r = await run(['pull', REPO, '--dir', out, '--include', '*.json', 'tokenizer.model', '--exclude', 'tokenizer_config.json'], { HF_HOME: await tempDir(), HF_ENDPOINT: hub.hubUrl });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual((await readdir(out)).sort(), ['.cache', 'config.json', 'tokenizer.model']);
  assert.deepEqual(await readFile(path.join(out, 'config.json')), Buffer.from(files['config.json']!));
  assert.deepEqual(await readdir(path.join(out, '.cache', 'chatglm')), []);
});

test('file choice: engine files by default (safetensors over .bin, no .py); fnmatch globs for --include/--exclude', () => {
  const list = Object.entries(files).map(([p, d]) => ({ path: p, size: d.length }));
  assert.deepEqual(selectFiles(REPO, list).map((f) => f.path).sort(), ['README.md', 'config.json', 'model.safetensors', 'tokenizer.model', 'tokenizer_config.json']);
  const binOnly = list.filter((f) => f.path !== 'model.safetensors');
  assert.ok(selectFiles(REPO, binOnly).some((f) => f.path === 'pytorch_model.bin'));
  assert.deepEqual(selectFiles(REPO, list, ['*.py']).map((f) => f.path), ['modeling_chatglm.py']);
  assert.throws(() => selectFiles(REPO, [{ path: 'a-q4_0.gguf' }, { path: 'a-q8_0.gguf' }]), /holds GGUF files; choose one with --include/);
  assert.equal(globToRegExp('*.json').test('sub/x.json'), true); // fnmatch: '*' crosses '/'
  assert.equal(globToRegExp('onnx/').test('onnx/model.onnx'), true);
  assert.equal(globToRegExp('model-0000[1-2]-of-*.safetensors').test('model-00002-of-00007.safetensors'), true);
  assert.equal(globToRegExp('model-0000[!1-2]-of-*.safetensors').test('model-00002-of-00007.safetensors'), false);
  assert.equal(globToRegExp('a.b').test('axb'), false);
});

test('model names: OWNER/NAME[@rev] only; paths and .gguf files are not names; cache dir from HF_HUB_CACHE / HF_HOME / XDG_CACHE_HOME', () => {
  assert.deepEqual(parseModelRef('THUDM/chatglm3-6b'), { repo: 'THUDM/chatglm3-6b', revision: 'main' });
  assert.deepEqual(parseModelRef('THUDM/chatglm3-6b@v1.0'), { repo: 'THUDM/chatglm3-6b', revision: 'v1.0' });
  for (const p of ['./a/b', '/abs/x', 'a/b/c', 'models/x.gguf', 'x', '../a']) assert.equal(parseModelRef(p), undefined, p);
  assert.equal(hubCacheDir({ HF_HUB_CACHE: '/c' }), '/c');
  assert.equal(hubCacheDir({ HF_HOME: '/h' }), '/h/hub');
  assert.equal(hubCacheDir({ XDG_CACHE_HOME: '/x' }), '/x/huggingface/hub');
  assert.equal(hubCacheDir({}), path.join(os.homedir(), '.cache', 'huggingface', 'hub'));
  assert.equal(resolveModelRef('/no/such/dir'), '/no/such/dir');
});

test('two revisions share unchanged blobs; rm OWNER/NAME@REV removes one revision and only the blobs no other uses', async () => {
  const cache = await tempDir();
  const repo = 'tiny-org/evolving';
  const oldCommit = '1'.repeat(40);
  const newCommit = '2'.repeat(40);
  const newConfig = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(files['config.json']!).toString()), note: 'v2' }));
  hub.repos.set(repo, { commit: oldCommit, files });
  await pullModel(repo, { endpoint: hub.hubUrl, token: '', cacheDir: cache });
  hub.repos.set(repo, { commit: newCommit, files: { ...files, 'config.json': newConfig } });
  const mark = hub.log.length;
  await pullModel(repo, { endpoint: hub.hubUrl, token: '', cacheDir: cache });
  // Only the changed file travelled the second time.
  assert.deepEqual(hub.log.slice(mark).filter((e) => e.sent > 0).map((e) => e.path), [`/${repo}/resolve/${newCommit}/config.json`]);
  const [m] = scanCache(cache);
  assert.deepEqual(m!.snapshots.map((s) => [s.commit, s.refs]), [[oldCommit, []], [newCommit, ['main']]]);
  assert.equal(resolveModelRef(repo, cache), snapshotOf(cache, repo, newCommit));

  const r = removeCached(`${repo}@${oldCommit}`, cache);
  assert.equal(r.bytesFreed, files['config.json']!.length);
  const blobs = await readdir(path.join(cache, 'models--tiny-org--evolving', 'blobs'));
  assert.equal(blobs.includes(gitBlobSha1(files['config.json']!)), false);
  assert.equal(blobs.includes(sha256(files['model.safetensors']!)), true);
  assert.deepEqual(await readFile(path.join(snapshotOf(cache, repo, newCommit), 'model.safetensors')), Buffer.from(files['model.safetensors']!));
  removeCached(`${repo}@main`, cache);
  assert.deepEqual(scanCache(cache), []);
  assert.throws(() => removeCached(repo, cache), /tiny-org\/evolving is not in the cache/);
});

test('files with the same contents are downloaded once and linked to one blob', async () => {
  const cache = await tempDir();
  const repo = 'tiny-org/twins';
  const same = Buffer.from('{"same": true}\n'.repeat(2000));
  hub.repos.set(repo, { commit: '3'.repeat(40), files: { 'a.json': same, 'b.json': same, 'c.json': Buffer.from('{}') } });
  const mark = hub.log.length;
  await pullModel(repo, { endpoint: hub.hubUrl, token: '', cacheDir: cache, include: ['*.json'], concurrency: 4 });
  const sent = hub.log.slice(mark).filter((e) => e.sent > 0);
  assert.equal(sent.length, 2, sent.map((e) => e.path).join(', '));
  const snap = snapshotOf(cache, repo, '3'.repeat(40));
  assert.equal(readlinkSync(path.join(snap, 'a.json')), `../../blobs/${gitBlobSha1(same)}`);
  assert.equal(readlinkSync(path.join(snap, 'b.json')), `../../blobs/${gitBlobSha1(same)}`);
  assert.deepEqual(await readFile(path.join(snap, 'b.json')), same);
});

test('a mirror that lists file names only: hashes and sizes come from HEAD (ETag / X-Linked-Etag), and are still checked', async () => {
  const cache = await tempDir();
  hub.namesOnly = true;
  try {
    const r = await pullModel(REPO, { endpoint: hub.hubUrl, token: '', cacheDir: cache });
    const snap = snapshotOf(cache);
    assert.equal(r.path, snap);
    assert.equal(readlinkSync(path.join(snap, 'model.safetensors')), `../../blobs/${sha256(files['model.safetensors']!)}`);
    assert.equal(readlinkSync(path.join(snap, 'config.json')), `../../blobs/${gitBlobSha1(files['config.json']!)}`);
    hub.faults.set('model.safetensors', { corrupt: true });
    await assert.rejects(
      pullModel(REPO, { endpoint: hub.hubUrl, token: '', cacheDir: await tempDir(), retries: 0 }),
      (e: unknown) => e instanceof ChatGLMError && e.code === 'BAD_FORMAT' && e.message.includes('SHA-256'),
    );
  } finally {
    hub.namesOnly = false;
    hub.faults.delete('model.safetensors');
  }
});

#!/usr/bin/env node
/*
 * Builds the native backend (build/Release/chatglm_native.node) with the node-gyp that ships with
 * npm. Never fails the install: without a compiler the engine runs on the reference backend, so a
 * failed build prints one warning and exits 0. Uses the local Node headers when they are installed
 * (distro packages ship them), so no header download is needed.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function findNodeGyp() {
  const candidates = [];
  if (process.env.npm_config_node_gyp) candidates.push(process.env.npm_config_node_gyp);
  try {
    const require = createRequire(import.meta.url);
    candidates.push(require.resolve('node-gyp/bin/node-gyp.js'));
  } catch {
    // not a local dependency: fall through to npm's bundled copy
  }
  const npmPrefixes = [
    path.resolve(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm'),
    path.resolve(path.dirname(process.execPath), 'node_modules', 'npm'),
  ];
  if (process.env.npm_execpath) npmPrefixes.unshift(path.resolve(path.dirname(process.env.npm_execpath), '..'));
  for (const p of npmPrefixes) candidates.push(path.join(p, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  return candidates.find((c) => existsSync(c));
}

function localNodeDir() {
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  return existsSync(path.join(prefix, 'include', 'node', 'node_api.h')) ? prefix : undefined;
}

function warn(msg) {
  process.stderr.write(`chatglm.ts: native backend not built (${msg}); the engine will use the slower reference backend.\n`);
}

if (process.env.CHATGLM_SKIP_NATIVE === '1') {
  warn('CHATGLM_SKIP_NATIVE=1');
  process.exit(0);
}
const gyp = findNodeGyp();
if (!gyp) {
  warn('node-gyp not found');
  process.exit(0);
}
const args = [gyp, 'rebuild', '--release'];
const nodedir = localNodeDir();
if (nodedir) args.push(`--nodedir=${nodedir}`);
const quiet = !process.argv.includes('--verbose');
const r = spawnSync(process.execPath, args, { cwd: root, stdio: quiet ? ['ignore', 'ignore', 'pipe'] : 'inherit', encoding: 'utf8' });
if (r.status !== 0) {
  const tail = (r.stderr ?? '').trim().split('\n').slice(-3).join(' | ');
  warn(`node-gyp exited with ${r.status ?? r.signal}${tail ? `: ${tail}` : ''}`);
  process.exit(0);
}
if (!existsSync(path.join(root, 'build', 'Release', 'chatglm_native.node'))) {
  warn('build finished but build/Release/chatglm_native.node is missing');
}
process.exit(0);

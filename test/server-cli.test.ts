/**
 * `chatglm serve` as a process: binds 127.0.0.1 on a free port, prints the URL when ready, answers,
 * and on SIGTERM lets the in-flight request finish, then exits 0.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

test('serve --port 0: ready line, a streamed request survives SIGTERM, exit code 0', async () => {
  const child = spawn(process.execPath, [path.join(root, 'bin/chatglm.js'), 'serve', '--port', '0', '--parallel', '2'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (b: Buffer) => {
        out += b.toString();
        const m = /ready at (http:\/\/127\.0\.0\.1:\d+)\/v1/.exec(out);
        if (m) resolve(m[1]!);
      });
      child.on('exit', () => reject(new Error(`serve exited early: ${stderr}`)));
    });
    const health = await fetch(`${url}/health`);
    assert.equal(health.status, 200);
    // A streaming request in flight when SIGTERM arrives still completes with [DONE].
    const res = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'chatglm3-demo', messages: [{ role: 'user', content: 'Tell me about yourself.' }], temperature: 0, max_tokens: 60, stream: true }),
    });
    assert.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8');
    const reader = res.body!.getReader();
    const first = await reader.read();
    assert.match(new TextDecoder().decode(first.value), /^data: \{/);
    child.kill('SIGTERM');
    let rest = '';
    for (;;) {
      const r = await reader.read();
      if (r.done) break;
      rest += new TextDecoder().decode(r.value);
    }
    assert.match(rest, /"finish_reason":"(stop|length)"/);
    assert.match(rest, /data: \[DONE\]\n\n$/);
    assert.equal(await exited, 0, stderr);
    assert.match(stderr, /SIGTERM: finishing in-flight requests/);
  } finally {
    child.kill('SIGKILL');
  }
});

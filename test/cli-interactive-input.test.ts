/**
 * The interactive chat's input handling, line by line (commands, multi-line messages), and the
 * load progress feedback on a terminal and on a pipe.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { ChatInputReader, CHAT_HELP } from '../src/cli/interactive-commands.js';
import { loadReporter } from '../src/cli/load-progress.js';

function feed(lines: string[]): unknown[] {
  const r = new ChatInputReader();
  return lines.map((l) => r.push(l));
}

test('commands: /help, /exit, /reset, /system TEXT; an unknown /command is reported, not sent', () => {
  assert.deepEqual(feed(['/help', '/exit', '/quit', '/reset', '/system be brief', '/system', '/frobnicate now', '  ']), [
    { kind: 'help' },
    { kind: 'exit' },
    { kind: 'exit' },
    { kind: 'reset' },
    { kind: 'system', text: 'be brief' },
    { kind: 'system', text: '' },
    { kind: 'unknown', command: '/frobnicate' },
    { kind: 'empty' },
  ]);
  for (const c of ['/help', '/reset', '/system', '/exit']) assert.ok(CHAT_HELP.includes(c), c);
  // A message that starts with a slash is written with two.
  assert.deepEqual(feed(['//usr/bin is a folder']), [{ kind: 'message', text: '/usr/bin is a folder' }]);
});

test('multi-line messages: a trailing backslash continues; """ blocks hold pasted lines as they are', () => {
  const r = new ChatInputReader();
  assert.deepEqual(r.push('first \\'), { kind: 'more' });
  assert.equal(r.pending, true);
  assert.deepEqual(r.push('second'), { kind: 'message', text: 'first \nsecond' });
  assert.equal(r.pending, false);
  assert.deepEqual(feed(['"""', 'line one', '', '/not a command', '  indented', '"""']), [
    { kind: 'more' },
    { kind: 'more' },
    { kind: 'more' },
    { kind: 'more' },
    { kind: 'more' },
    { kind: 'message', text: 'line one\n\n/not a command\n  indented' },
  ]);
  assert.deepEqual(feed(['"""starts here', 'ends here', '"""']).at(-1), { kind: 'message', text: 'starts here\nends here' });
  // Ctrl-C drops what was collected.
  const c = new ChatInputReader();
  c.push('"""');
  c.push('half');
  c.cancel();
  assert.deepEqual(c.push('fresh'), { kind: 'message', text: 'fresh' });
});

function sink(tty: boolean): { stream: NodeJS.WriteStream; text: () => string } {
  let out = '';
  const w = new Writable({
    write(chunk: Buffer, _enc, cb) {
      out += chunk.toString();
      cb();
    },
  }) as unknown as NodeJS.WriteStream & { isTTY: boolean; columns: number };
  w.isTTY = tty;
  w.columns = 100;
  Object.assign(w, { cursorTo: () => true, clearLine: () => true, moveCursor: () => true });
  return { stream: w, text: () => out };
}

test('load progress: a bar on a terminal, one plain line on a pipe, the load time after it', () => {
  const steps = [
    { loaded: 1, total: 4, bytes: 1 << 20, totalBytes: 4 << 20, name: 'a' },
    { loaded: 4, total: 4, bytes: 4 << 20, totalBytes: 4 << 20, name: 'd' },
  ];
  const pipe = sink(false);
  const p = loadReporter('/models/m.gguf', pipe.stream);
  for (const s of steps) p.onProgress(s);
  p.done();
  assert.match(pipe.text(), /^loading m\.gguf \(4\.0 MiB of weights\)\.\.\. done in \d+\.\d s\n$/);

  const tty = sink(true);
  const t = loadReporter('/models/m.gguf', tty.stream);
  for (const s of steps) t.onProgress(s);
  t.done();
  assert.match(tty.text(), /loading m\.gguf \[[^\]]+\] 100% \| 4\/4 tensors \| 4\.0 MiB/);
  assert.match(tty.text(), /loaded m\.gguf \(4\.0 MiB of weights\) in \d+\.\d s\n$/);

  // A failed load ends the line and prints no time.
  const failed = sink(false);
  const f = loadReporter('/models/m.gguf', failed.stream);
  f.onProgress(steps[0]!);
  f.fail();
  assert.equal(failed.text(), 'loading m.gguf (4.0 MiB of weights)...\n');
});

test('bracketed paste: lines that ended inside a paste join the next line entered into one message', () => {
  const r = new ChatInputReader();
  assert.deepEqual(r.push('/not a command', true), { kind: 'more' });
  assert.equal(r.pending, true);
  assert.deepEqual(r.push('second', true), { kind: 'more' });
  assert.deepEqual(r.push('third'), { kind: 'message', text: '/not a command\nsecond\nthird' });
  // A paste that ended with a newline: the empty Enter sends it.
  const e = new ChatInputReader();
  e.push('only line', true);
  assert.deepEqual(e.push(''), { kind: 'message', text: 'only line\n' });
});

/**
 * The generate, prompt and chat commands, run as a user runs them (node bin/chatglm.js), on a tiny
 * model directory the test writes. Generated ids are checked against greedy decoding by a full
 * forward pass per step, run in this process.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { openModel } from '../src/model/open.js';
import { argmax } from '../src/generate/sampler.js';
import { writeChatModelDir, SPECIAL, SP_VOCAB } from './support/chat-model-dir.js';
import { smallModelBytes } from './support/tokenizer-fixtures.js';
import { loadTokenizerFile } from '../src/tokenizer/load.js';
import { FAMILIES, getFamily } from '../src/families/registry.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const bin = path.join(root, 'bin/chatglm.js');

function run(args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [bin, ...args], { encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
    child.stdin!.end(input ?? '');
  });
}

let dir = '';
let cleanup: () => Promise<void> = async () => {};
before(async () => {
  ({ dir, cleanup } = await writeChatModelDir(1));
  await writeFile(path.join(dir, 'messages.json'), JSON.stringify([{ role: 'user', content: '你好' }]));
});
after(async () => cleanup());

test('generate --prompt-ids --greedy --json: the ids of greedy decoding by full re-forward', async () => {
  const prompt = [SPECIAL.gMASK, SPECIAL.sop, 40, 41, 42, 280, 13];
  const r = await run(['generate', '--model', dir, '--prompt-ids', prompt.join(','), '--greedy', '--max-new-tokens', '12', '--backend', 'reference', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { ids: number[]; text: string };
  assert.deepEqual(Object.keys(out), ['ids', 'text']);
  const { model } = await openModel(dir, { families: FAMILIES, backend: 'reference' });
  const stops = new Set([2, SPECIAL.user, SPECIAL.observation]);
  const seq = [...prompt];
  const want: number[] = [];
  for (let i = 0; i < 12; i++) {
    const id = argmax(model.forward([{ cache: model.newCache(seq.length), ids: seq }])[0]!);
    if (stops.has(id)) break;
    want.push(id);
    seq.push(id);
  }
  assert.deepEqual(out.ids, want);
  const { tokenizer } = await loadTokenizerFile(path.join(dir, 'tokenizer.model'), getFamily('chatglm3'));
  assert.equal(out.text, tokenizer.decode(want));
});

test('generate --prompt encodes after [gMASK] sop; a seed reproduces sampling', async () => {
  const a = await run(['generate', '--model', dir, '--prompt', 'abc', '--seed', '5', '--temperature', '1', '--top-k', '40', '--max-new-tokens', '6', '--json']);
  const b = await run(['generate', '--model', dir, '--prompt', 'abc', '--seed', '5', '--temperature', '1', '--top-k', '40', '--max-new-tokens', '6', '--json']);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(a.stdout, b.stdout);
});

test('prompt --tokenizer FILE --format chatglm3: specials take the ids right after the SentencePiece vocabulary', async () => {
  const tokFile = path.join(dir, 'only-tokenizer.model');
  await writeFile(tokFile, smallModelBytes());
  const r = await run(['prompt', '--tokenizer', tokFile, '--format', 'chatglm3', '--messages', path.join(dir, 'messages.json'), '--json']);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { ids: number[]; text: string };
  // [gMASK]=n+1, sop=n+3, <|user|>=n+6, <|assistant|>=n+7 with n = the SentencePiece vocab size.
  const n = SP_VOCAB;
  const { tokenizer } = await loadTokenizerFile(tokFile, getFamily('chatglm3'));
  assert.deepEqual(out.ids, [n + 1, n + 3, n + 6, ...tokenizer.encode('\n'), ...tokenizer.encode('你好'), n + 7]);
  assert.equal(out.text, '[gMASK]sop<|user|>\n你好<|assistant|>');
  const plain = await run(['prompt', '--model', dir, '--format', 'chatglm2', '--messages', path.join(dir, 'messages.json')]);
  assert.equal(plain.code, 0, plain.stderr);
  assert.equal(plain.stdout, '[gMASK]sop[Round 1]\n\n问：你好\n\n答：\n');
});

test('chat --messages --json prints the assistant message; interactive chat runs /reset and /system from a pipe', async () => {
  const r = await run(['chat', '--model', dir, '--messages', path.join(dir, 'messages.json'), '--json', '--greedy', '--max-new-tokens', '8', '--backend', 'reference']);
  assert.equal(r.code, 0, r.stderr);
  const m = JSON.parse(r.stdout) as Record<string, unknown>;
  assert.equal(m['role'], 'assistant');
  assert.equal(typeof m['content'], 'string');
  const i = await run(['chat', '--model', dir, '--greedy', '--max-new-tokens', '4'], 'hi\n/reset\n/system be brief\nhello\n/exit\n');
  assert.equal(i.code, 0, i.stderr);
  assert.match(i.stdout, /\(conversation cleared\)/);
  assert.match(i.stdout, /\(system prompt set; conversation cleared\)/);
});

test('interactive chat reports a message longer than the context and goes on with the conversation', async () => {
  // The test model's context is 128 tokens; 400 words cannot fit whatever the tokenizer does.
  const long = Array.from({ length: 400 }, (_, i) => `word${i}`).join(' ');
  const r = await run(['chat', '--model', dir, '--greedy', '--max-new-tokens', '4', '--stats'], `${long}\nhello\n/exit\n`);
  assert.equal(r.code, 0, r.stderr);
  const errors = r.stderr.split('\n').filter((l) => l.startsWith('chatglm: ') && !l.startsWith('chatglm: chatting'));
  assert.equal(errors.length, 1, r.stderr);
  assert.match(errors[0]!, /context/i);
  // The second message was answered: --stats prints one usage line per answered turn.
  const stats = r.stderr.split('\n').filter((l) => l.startsWith('{'));
  assert.equal(stats.length, 1, r.stderr);
  const usage = (JSON.parse(stats[0]!) as { usage: { prompt_tokens: number } }).usage;
  assert.ok(usage.prompt_tokens < 128, JSON.stringify(usage));
});

test('usage errors are one line on stderr with exit code 1', async () => {
  for (const args of [
    ['generate', '--model', dir, '--prompt', 'x', '--greedy', '--top-p', '0.5'],
    ['generate', '--model', dir],
    ['generate', '--model', dir, '--prompt-ids', '1,x'],
    ['prompt', '--tokenizer', path.join(dir, 'tokenizer.model'), '--format', 'glm4', '--messages', path.join(dir, 'messages.json')],
    ['chat', '--model', dir, '--messages', path.join(dir, 'missing.json')],
  ]) {
    const r = await run(args);
    assert.equal(r.code, 1, args.join(' '));
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /^chatglm: [^\n]+\n$/, args.join(' '));
  }
});

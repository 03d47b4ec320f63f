/**
 * What a new user meets first, run as a user runs it (node bin/chatglm.js) on the bundled demo
 * model or on small folders the test writes: the same message for a bad --model everywhere, model
 * defaults, the interactive chat's commands, option checks in the CLI's own names, a closed
 * stdout, --version, and the launcher before `npm ci`.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildProgram, main } from '../src/cli/main.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const bin = path.join(root, 'bin/chatglm.js');
const demo = path.join(root, 'models/chatglm3-demo');

function run(args: string[], input = '', binPath = bin): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [binPath, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
    child.stdin!.end(input);
  });
}

/**
 * The CLI in this process, for commands that fail before loading anything (much cheaper than a
 * process each); stderr is captured.
 */
async function inProcess(args: string[]): Promise<{ code: number; stderr: string }> {
  let stderr = '';
  const error = console.error;
  const write = process.stderr.write;
  console.error = (...parts: unknown[]) => {
    stderr += parts.join(' ') + '\n';
  };
  process.stderr.write = ((chunk: string | Uint8Array) => {
    stderr += String(chunk);
    return true;
  }) as typeof process.stderr.write;
  try {
    return { code: await main(['node', 'chatglm', ...args]), stderr };
  } finally {
    console.error = error;
    process.stderr.write = write;
  }
}

/** Lines of stderr that are not the bundled-model notice or the load line. */
function problems(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l !== '' && !l.startsWith('chatglm: no --model given') && !/^load(ing|ed) /.test(l) && !l.startsWith('chatglm: chatting'));
}

let tmp = '';
before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'chatglm-polish-'));
  await mkdir(path.join(tmp, 'empty'));
  await writeFile(path.join(tmp, 'notes.txt'), 'just some text\n');
  await writeFile(path.join(tmp, 'user.json'), JSON.stringify([{ role: 'user', content: 'hi' }]));
});
after(async () => rm(tmp, { recursive: true, force: true }));

test('a missing path, an empty folder and a text file: every model command says what info says, before the tokenizer', async () => {
  const msgs = path.join(tmp, 'user.json');
  for (const [model, want] of [
    ['/nope/nowhere', /^chatglm: model not found: \/nope\/nowhere \(give a Hugging Face model directory or a \.gguf file\)\n$/],
    [path.join(tmp, 'empty'), /^chatglm: config\.json not found in .*empty: is this a Hugging Face ChatGLM model directory\?\n$/],
    [path.join(tmp, 'notes.txt'), /^chatglm: .*notes\.txt: not a GGUF file \(it does not start with "GGUF"\); pass a \.gguf file, or a Hugging Face model directory\n$/],
  ] as const) {
    const info = await run(['info', '-m', model]);
    assert.match(info.stderr, want, `info ${model}`);
    // Every command for a missing path; the ones that used to trip for the other two.
    const all = [
      ['chat', '-m', model, '--messages', msgs],
      ['generate', '-m', model, '--prompt', 'hi'],
      ['prompt', '-m', model, '--messages', msgs],
      ['tokenize', '-m', model, 'hi'],
      ['logits', '-m', model, '--ids', '1,2'],
      ['bench', '-m', model],
    ];
    const cases = model === '/nope/nowhere' ? all : all.slice(0, 4);
    for (const args of cases) {
      const r = await inProcess(args);
      assert.equal(r.code, 1, args.join(' '));
      assert.equal(r.stderr, info.stderr, args.join(' '));
    }
    // And as a process of its own, for one of them.
    const chat = await run(all[0]!);
    assert.equal(chat.code, 1);
    assert.equal(chat.stderr, info.stderr);
  }
});

test('prompt renders a conversation with tool calls exactly as chat runs it', async () => {
  const messages = [
    { role: 'user', content: 'Weather in Paris?' },
    { role: 'assistant', content: null, tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_current_weather', arguments: '{"location": "Paris"}' } }] },
    { role: 'tool', tool_call_id: 'call_1', content: '{"temperature": 22}' },
  ];
  const file = path.join(tmp, 'calls.json');
  await writeFile(file, JSON.stringify(messages));
  const tools = path.join(tmp, 'tools.json');
  await writeFile(tools, JSON.stringify([{ name: 'get_current_weather', parameters: { type: 'object' } }]));
  const p = await run(['prompt', '--messages', file, '--tools', tools]);
  assert.equal(p.code, 0, p.stderr);
  // ChatGLM3's layout, written out by hand: the call as tool_call(...) in a python fence, the result as an observation.
  const sys = 'Answer the following questions as best as you can. You have access to the following tools:\n' + JSON.stringify([{ name: 'get_current_weather', parameters: { type: 'object' } }], null, 4);
  assert.equal(
    p.stdout,
    `[gMASK]sop<|system|>\n${sys}<|user|>\nWeather in Paris?<|assistant|>get_current_weather\n\`\`\`python\ntool_call(location='Paris')\n\`\`\`<|observation|>\n{"temperature": 22}<|assistant|>\n`,
  );
  const ids = (JSON.parse((await run(['prompt', '--messages', file, '--tools', tools, '--json'])).stdout) as { ids: number[] }).ids;
  const c = await run(['chat', '--messages', file, '--tools', tools, '--greedy', '--max-new-tokens', '2', '--stats']);
  assert.equal(c.code, 0, c.stderr);
  const stats = JSON.parse(c.stderr.split('\n').find((l) => l.startsWith('{'))!) as { usage: { prompt_tokens: number } };
  assert.equal(stats.usage.prompt_tokens, ids.length);
});

test('interactive chat: /help, an unknown command is not sent, multi-line input, [stopped: length], --verbose in words, --system with --tools', async () => {
  const tools = path.join(tmp, 'tools.json');
  await writeFile(tools, JSON.stringify([{ name: 'get_current_weather', parameters: { type: 'object' } }]));
  const input = ['/help', '/nonsense', 'first line \\', 'second line', '"""', 'pasted one', 'pasted two', '"""', '/exit', ''].join('\n');
  const r = await run(['chat', '--greedy', '--max-new-tokens', '2', '--verbose', '--stats', '--system', 'Be brief.', '--tools', tools], input);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /\/system TEXT/);
  assert.match(r.stdout, /\(unknown command \/nonsense; \/help lists the commands\)/);
  // Two messages answered (the command lines were not), each cut at 2 tokens.
  assert.equal(r.stdout.match(/ \[stopped: length\]\n/g)?.length, 2, r.stdout);
  const usages = r.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => (JSON.parse(l) as { usage: { prompt_tokens: number; completion_tokens: number } }).usage);
  assert.equal(usages.length, 2, r.stderr);
  assert.equal(r.stderr.match(/^reply tokens: +2$/gm)?.length, 2, r.stderr);
  assert.match(r.stderr, /^prompt tokens: +\d+/m);
  assert.match(r.stderr, /^reply rate: +[\d.]+ tokens\/s$/m);
  // The first prompt is what `prompt` renders for [system, user] with the same tools: the system
  // text is kept and the joined lines are one message.
  const conv = path.join(tmp, 'conv.json');
  await writeFile(conv, JSON.stringify([{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'first line \nsecond line' }]));
  const p = JSON.parse((await run(['prompt', '--messages', conv, '--tools', tools, '--json'])).stdout) as { ids: number[]; text: string };
  assert.match(p.text, /^\[gMASK\]sop<\|system\|>\nBe brief\.\nAnswer the following questions/);
  assert.equal(usages[0]!.prompt_tokens, p.ids.length);
});

test('info, logits, tokenize, detokenize, bench and convert work without --model (the bundled model)', async () => {
  const [info, logits, tok, tokDemo] = await Promise.all([
    run(['info', '--json']),
    run(['logits', '--ids', '5,17']),
    run(['tokenize', 'hello']),
    run(['tokenize', '--model', demo, 'hello']),
  ]);
  assert.equal(info.code, 0, info.stderr);
  assert.equal((JSON.parse(info.stdout) as { path: string }).path, demo);
  assert.equal(logits.code, 0, logits.stderr);
  const rows = JSON.parse(logits.stdout) as number[][];
  assert.equal(rows.length, 2);
  assert.equal(rows[0]!.length, 4096);
  assert.equal(tok.code, 0, tok.stderr);
  assert.equal(tok.stdout, tokDemo.stdout);
  const detok = await run(['detokenize', tok.stdout.trim()]);
  assert.equal(detok.stdout, 'hello\n');
  const bench = await run(['bench', '--prompt-tokens', '8', '--gen-tokens', '2', '--runs', '1', '--json', '--threads', '1']);
  assert.equal(bench.code, 0, bench.stderr);
  assert.ok((JSON.parse(bench.stdout) as { decode_tok_s: number }).decode_tok_s > 0);
  // A prompt that fills the whole context, fed in odd chunks into a q8_0 cache, timed alone.
  const full = await run(['bench', '--prompt-tokens', '1024', '--gen-tokens', '0', '--prefill-chunk', '300', '--kv-type', 'q8_0', '--runs', '1', '--warmup', '0', '--json', '--threads', '1']);
  assert.equal(full.code, 0, full.stderr);
  const fullResult = JSON.parse(full.stdout) as { prefill_tok_s: number; decode_tok_s: number; runs: { prefill_tok_s: number[] } };
  assert.ok(fullResult.prefill_tok_s > 0);
  assert.equal(fullResult.decode_tok_s, 0);
  assert.equal(fullResult.runs.prefill_tok_s.length, 1);
  const out = path.join(tmp, 'demo.gguf');
  const conv = await run(['convert', '--out', out, '--type', 'q8_0']);
  assert.equal(conv.code, 0, conv.stderr);
  assert.ok((await stat(out)).size > 1 << 20);
  // Every command that takes --model also takes -m.
  const withModel = buildProgram().commands.filter((c) => c.options.some((o) => o.long === '--model'));
  for (const name of ['bench', 'chat', 'convert', 'detokenize', 'generate', 'info', 'logits', 'prompt', 'tokenize']) {
    assert.ok(withModel.some((c) => c.name() === name), name);
  }
  for (const c of withModel) assert.equal(c.options.find((o) => o.long === '--model')!.short, '-m', c.name());
  // --threads wherever weights are loaded.
  for (const c of ['chat', 'generate', 'logits', 'bench']) {
    assert.ok(buildProgram().commands.find((x) => x.name() === c)!.options.some((o) => o.long === '--threads'), c);
  }
});

test('option errors use the CLI names: --context past the trained context, bench past it, --threads, sampling ranges', async () => {
  const cases = [
    [['chat', '--messages', path.join(tmp, 'user.json'), '--context', '4096'], /^chatglm: --context 4096 is larger than the model's trained context \(1024 tokens\); use --context 1024 or less\n$/],
    [['generate', '--prompt', 'x', '--context', '1'], /^chatglm: --context must be at least 2 tokens, got 1\n$/],
    [['bench', '--prompt-tokens', '1000', '--gen-tokens', '64'], /^chatglm: --prompt-tokens 1000 plus --gen-tokens 64 do not fit the model's context \(1024 tokens\)/],
    [['bench', '--kv-type', 'q4'], /^chatglm: --kv-type must be f16 or q8_0, got "q4"\n$/],
    [['bench', '--warmup', '-1'], /^chatglm: --warmup must be a whole number \(0 or more\), got "-1"\n$/],
    [['generate', '--prompt', 'x', '--threads', '0'], /^chatglm: --threads must be at least 1, got 0\n$/],
    [['generate', '--prompt', 'x', '--top-p', '1.5'], /^chatglm: --top-p must be in \(0, 1\], got 1\.5\n$/],
    [['chat', '--messages', path.join(tmp, 'user.json'), '--repetition-penalty', '0'], /^chatglm: --repetition-penalty must be > 0/],
    [['logits', '--ids', '1,99999'], /^chatglm: --ids: id 99999 is outside the vocabulary \(4096 ids\)\n$/],
  ] as const;
  for (const [args, want] of cases) {
    const r = await inProcess([...args]);
    assert.equal(r.code, 1, args.join(' '));
    assert.match(problems(r.stderr).join('\n') + '\n', want, args.join(' '));
  }
  // A messages file is checked with its own name.
  const bad = path.join(tmp, 'nocontent.json');
  await writeFile(bad, JSON.stringify([{ role: 'user' }]));
  const r = await inProcess(['chat', '--messages', bad]);
  assert.match(r.stderr, /^chatglm: .*nocontent\.json: messages\[0\]\.content is missing/m);
  const last = path.join(tmp, 'lastassistant.json');
  await writeFile(last, JSON.stringify([{ role: 'user', content: 'hi' }, { role: 'assistant', content: 'yo' }]));
  const l = await inProcess(['chat', '--messages', last]);
  assert.match(l.stderr, /^chatglm: .*lastassistant\.json: the last message is from the assistant/m);
});

test('generate --threads 1 gives the same greedy ids as the default; --prompt-ids works on a checkpoint without a tokenizer', async () => {
  const a = await run(['generate', '--prompt-ids', '1,3,300,301,302', '--greedy', '--max-new-tokens', '6', '--json', '--threads', '1']);
  assert.equal(a.code, 0, a.stderr);
  const withTok = JSON.parse(a.stdout) as { ids: number[]; text: string };
  // The same weights, without tokenizer.model.
  const bare = path.join(tmp, 'bare');
  await mkdir(bare);
  for (const f of ['config.json', 'model.safetensors']) await copyFile(path.join(demo, f), path.join(bare, f));
  const b = await run(['generate', '-m', bare, '--prompt-ids', '1,3,300,301,302', '--greedy', '--max-new-tokens', '6', '--json']);
  assert.equal(b.code, 0, b.stderr);
  const ids = JSON.parse(b.stdout) as { ids: number[]; text: string | null };
  assert.equal(ids.text, null);
  // It stops on the config's eos only, the chat model also on <|user|>/<|observation|>: the common part agrees.
  assert.deepEqual(ids.ids.slice(0, withTok.ids.length), withTok.ids);
  const plain = await run(['generate', '-m', bare, '--prompt-ids', '1,3,300', '--greedy', '--max-new-tokens', '3']);
  assert.match(plain.stdout, /^\d+(,\d+)*\n$/);
  // Text needs a tokenizer: --prompt says so.
  const t = await run(['generate', '-m', bare, '--prompt', 'hi']);
  assert.equal(t.code, 1);
  assert.match(t.stderr, /tokenizer\.model not found/);
});

test('a reader that closes stdout early ends the command quietly', async () => {
  // 8 positions x 4096 logits is far more than a pipe buffer holds, so writing hits EPIPE.
  const child = spawn(process.execPath, [bin, 'logits', '--ids', '1,2,3,4,5,6,7,8'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  let got = 0;
  await new Promise<void>((resolve) => {
    child.stdout.on('data', (d: Buffer) => {
      got += d.length;
      if (got >= 10) {
        child.stdout.destroy();
        resolve();
      }
    });
  });
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  assert.equal(code, 0, stderr);
  assert.deepEqual(problems(stderr), []);
});

test('--version prints the package version; the launcher before npm ci says to run it', async () => {
  const pkg = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8')) as { name: string; version: string };
  const v = await run(['--version']);
  assert.equal(v.code, 0);
  assert.equal(v.stdout, `${pkg.name} ${pkg.version}\n`);
  // A checkout that was never built: bin/ without dist/ next to it.
  const fresh = path.join(tmp, 'fresh');
  await mkdir(path.join(fresh, 'bin'), { recursive: true });
  await copyFile(bin, path.join(fresh, 'bin/chatglm.js'));
  await writeFile(path.join(fresh, 'package.json'), JSON.stringify({ type: 'module' }));
  const r = await run(['chat'], '', path.join(fresh, 'bin/chatglm.js'));
  assert.equal(r.code, 1);
  assert.equal(r.stderr, 'chatglm: the CLI is not built yet; run npm ci first (in the chatglm.ts folder), then try again\n');
});

test('loadChatModel: the same path messages as the CLI, and contextLength past the trained context is an error', async () => {
  const { loadChatModel } = await import('../src/api.js');
  await assert.rejects(loadChatModel('/nope/nowhere'), /^ChatGLMError: model not found: \/nope\/nowhere \(give a Hugging Face model directory or a \.gguf file\)$/);
  await assert.rejects(loadChatModel(path.join(tmp, 'empty')), /config\.json not found in .*empty/);
  await assert.rejects(loadChatModel(path.join(tmp, 'notes.txt')), /notes\.txt: not a GGUF file/);
  await assert.rejects(loadChatModel(undefined, { contextLength: 4096, backend: 'reference' }), /contextLength 4096 is larger than the model's trained context \(1024 tokens\)/);
});

test('on a terminal, pasted lines (bracketed paste) are one message', async (t) => {
  // util-linux `script` gives the chat a real pseudo-terminal; without it there is no terminal to test.
  const hasScript = await new Promise<boolean>((resolve) => execFile('script', ['--version'], (err, out) => resolve(!err && /util-linux/.test(String(out)))));
  if (!hasScript) {
    t.skip('util-linux script is not installed');
    return;
  }
  const conv = path.join(tmp, 'pasted.json');
  await writeFile(conv, JSON.stringify([{ role: 'user', content: 'line one\nline two' }]));
  const want = (JSON.parse((await run(['prompt', '--messages', conv, '--json'])).stdout) as { ids: number[] }).ids.length;
  const child = spawn('script', ['-qfc', `${JSON.stringify(process.execPath)} ${JSON.stringify(bin)} chat --greedy --max-new-tokens 2 --stats`, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  // What a terminal sends for a pasted "line one\rline two" followed by Enter, then /exit.
  child.stdin.write('\x1b[200~line one\rline two\x1b[201~\r');
  setTimeout(() => child.stdin.write('/exit\r'), 1500);
  const timer = setTimeout(() => child.kill(), 60_000);
  await new Promise<void>((resolve) => child.on('close', () => resolve()));
  clearTimeout(timer);
  const stats = out.split(/\r?\n/).filter((l) => l.startsWith('{"finish_reason"'));
  assert.equal(stats.length, 1, out);
  assert.equal((JSON.parse(stats[0]!) as { usage: { prompt_tokens: number } }).usage.prompt_tokens, want);
});

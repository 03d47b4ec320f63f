/**
 * Tokenizer benchmark: encode 1 MiB of mixed Chinese/English text with our SentencePiece BPE and
 * with the official C++ library through Debian's python3-sentencepiece, on the same model and the
 * same text, and check that both produce the same ids. Not a test.
 *
 *   npx tsc -p . && node dist/tools/bench-tokenizer.js [--model FILE] [--python /usr/bin/python3] [--runs 5]
 *                                                      [--text man|vectors]
 *
 * Text: the zh_CN/zh_TW man pages of this machine (roff source: Chinese prose with English option
 * names), alternated file by file with English man1 pages, cut to 1 MiB of UTF-8. With
 * --text vectors (or without man pages): the shared tokenizer vectors (25% CJK), repeated.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { loadSentencePieceModel } from '../src/tokenizer/sentencepiece.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const MIB = 1 << 20;

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : def;
}

function manFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && p.endsWith('.gz')) out.push(p);
    }
  };
  walk(dir);
  return out;
}

function buildText(useMan: boolean): { text: string; source: string } {
  const zh = [...manFiles('/usr/share/man/zh_CN'), ...manFiles('/usr/share/man/zh_TW')];
  const en = manFiles('/usr/share/man/man1');
  const read = (f: string) => gunzipSync(readFileSync(f)).toString('utf8');
  let parts: string[] = [];
  let bytes = 0;
  if (useMan && zh.length > 0 && en.length > 0) {
    for (let i = 0; bytes < MIB && (i < zh.length || i < en.length); i++) {
      for (const f of [zh[i], en[i]]) {
        if (f === undefined) continue;
        const t = read(f);
        parts.push(t);
        bytes += Buffer.byteLength(t);
      }
    }
  }
  let source = `man pages: ${zh.length} zh_CN/zh_TW + English man1, alternated`;
  if (bytes < MIB) {
    const vf = path.resolve(root, '../shared/tokenizer/glm-like-bpe.vectors.json');
    const v = JSON.parse(readFileSync(vf, 'utf8')) as { vectors: { text: string }[] };
    parts = [];
    bytes = 0;
    for (let i = 0; bytes < MIB; i++) {
      const t = v.vectors[(i * 7919) % v.vectors.length]!.text + '\n';
      parts.push(t);
      bytes += Buffer.byteLength(t);
    }
    source = 'shared tokenizer vectors, repeated';
  }
  // Cut at exactly 1 MiB of UTF-8, backing off to a character boundary.
  const buf = Buffer.from(parts.join(''), 'utf8');
  let end = MIB;
  while (end > 0 && (buf[end]! & 0xc0) === 0x80) end--;
  return { text: buf.subarray(0, end).toString('utf8'), source };
}

function checksum(ids: ArrayLike<number>): string {
  let h = 0;
  for (let i = 0; i < ids.length; i++) h = (Math.imul(h, 31) + ids[i]!) >>> 0;
  return `${ids.length}:${h}`;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const PY = String.raw`
import json, sys, time
import sentencepiece as spm
model, path, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
text = open(path, encoding='utf-8', newline='').read()
lines = text.split('\n')
sp = spm.SentencePieceProcessor(model_file=model)
def timed(f):
    ts = []
    for _ in range(runs):
        t = time.perf_counter(); r = f(); ts.append(time.perf_counter() - t)
    return r, ts
ids, whole = timed(lambda: sp.encode(text))
_, per_line = timed(lambda: [sp.encode(l) for l in lines])
h = 0
for x in ids: h = (h * 31 + x) & 0xffffffff
print(json.dumps({"whole": whole, "lines": per_line, "checksum": f"{len(ids)}:{h}", "version": spm.__version__}))
`;

async function main(): Promise<void> {
  const model = arg('model', path.resolve(root, '../shared/tokenizer/glm-like-bpe.model'));
  const python = arg('python', '/usr/bin/python3');
  const runs = Number(arg('runs', '5'));
  const { text, source } = buildText(arg('text', 'man') === 'man');
  const lines = text.split('\n');
  const chars = text.length;
  console.log(`text: ${Buffer.byteLength(text)} bytes, ${chars} UTF-16 chars, ${lines.length} lines (${source})`);
  console.log(`model: ${model}`);

  // Cold: a fresh tokenizer per run, so the word cache starts empty every time.
  const cold: number[] = [];
  const warm: number[] = [];
  const perLine: number[] = [];
  let ids: number[] = [];
  for (let r = 0; r < runs; r++) {
    const sp = await loadSentencePieceModel(model);
    let t = performance.now();
    ids = sp.encode(text);
    cold.push((performance.now() - t) / 1000);
    t = performance.now();
    sp.encode(text);
    warm.push((performance.now() - t) / 1000);
    const sp2 = await loadSentencePieceModel(model);
    t = performance.now();
    for (const l of lines) sp2.encode(l);
    perLine.push((performance.now() - t) / 1000);
  }
  const rate = (s: number) => `${(chars / s / 1e6).toFixed(2)} M chars/s (${(s * 1000).toFixed(0)} ms)`;
  console.log(`chatglm.ts  whole text, cold cache: ${rate(median(cold))}`);
  console.log(`chatglm.ts  whole text, warm cache: ${rate(median(warm))}`);
  console.log(`chatglm.ts  line by line, cold:     ${rate(median(perLine))}`);
  const ours = checksum(ids);

  const dir = mkdtempSync(path.join(tmpdir(), 'bench-tok-'));
  const textFile = path.join(dir, 'text.txt');
  writeFileSync(textFile, text);
  const py = spawnSync(python, ['-c', PY, model, textFile, String(runs)], { encoding: 'utf8' });
  if (py.status !== 0) {
    console.log(`sentencepiece (python): not run (${python}: ${(py.stderr || py.error?.message || '').trim().split('\n').pop()})`);
    return;
  }
  const res = JSON.parse(py.stdout) as { whole: number[]; lines: number[]; checksum: string; version: string };
  console.log(`sentencepiece ${res.version} (C++ via ${python}) whole text: ${rate(median(res.whole))}`);
  console.log(`sentencepiece ${res.version} (C++ via ${python}) line by line: ${rate(median(res.lines))}`);
  console.log(`same ids as the library: ${ours === res.checksum ? 'yes' : `NO (ours ${ours}, library ${res.checksum})`} (${ids.length} ids)`);
  console.log(`speed-up, whole text cold: ${(median(res.whole) / median(cold)).toFixed(2)}x; line by line: ${(median(res.lines) / median(perLine)).toFixed(2)}x`);
}

await main();

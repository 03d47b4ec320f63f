/**
 * SentencePiece models trained with add_dummy_prefix=false (no word-start marker added at the
 * start of an encoded string), as the demo model's training scripts can make them (prepare.py
 * --dummy-prefix 0 with ", " as a user-defined piece; --space-piece 1: a space and runs of spaces
 * as user-defined pieces, so no other piece holds a space), are encoded and decoded exactly as the
 * official library does, and ChatGLM3 prompts built by our chat format have the ids of the
 * Python layout (HF build_chat_input). The model is trained here by the library itself on a small
 * corpus made by this test; needs Debian's /usr/bin/python3 with python3-sentencepiece (or
 * $CHATGLM_SPM_PYTHON) and skips without it.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ChatGLMTokenizer, loadSentencePieceModel } from '../src/tokenizer/index.js';
import { getFamily } from '../src/families/registry.js';
import { chatglm3, CHATGLM3_TOOL_INSTRUCTION } from '../src/chat/chatglm3.js';
import { encodePieces } from '../src/chat/prompt-pieces.js';
import type { ChatMessage } from '../src/chat/types.js';
import type { JsonValue } from '../src/chat/python-literal.js';

const python = process.env['CHATGLM_SPM_PYTHON'] ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
const probe = spawnSync(python, ['-c', 'import sentencepiece'], { encoding: 'utf8' });
const skip = probe.status === 0 ? false : `needs a Python with sentencepiece (Debian: python3-sentencepiece; or set CHATGLM_SPM_PYTHON; ${python} has none)`;

const TOOLS: JsonValue = [
  {
    name: 'pull_vintage',
    description: 'Get the vintage of a wine',
    parameters: { type: 'object', properties: { wine_name: { type: 'string' }, max_rows: { type: 'integer' } }, required: ['wine_name'] },
  },
  { name: 'fetchAirQuality', description: '查询城市的空气质量', parameters: { type: 'object', properties: { city: { type: 'string' } } } },
];

const STRINGS = [
  'pull_vintage\n',
  'fetchAirQuality\n',
  'interpreter\n',
  '\n',
  'What is the vintage of Chateau Margaux?',
  ' one leading space',
  '   three leading spaces and  two inside',
  'trailing spaces   ',
  '北京今天的天气怎么样？',
  '  查询空气质量，城市为上海。',
  'Hello 世界 123 🙂',
  'a list, with commas,  two spaces , and ,,, more, ',
  ', starts with a comma',
  '```python\ntool_call(wine_name="Chateau Margaux", max_rows=3)\n```',
  `${CHATGLM3_TOOL_INSTRUCTION}\n${JSON.stringify(TOOLS, null, 4)}`,
];

const CHATS: ChatMessage[][] = [
  [
    { role: 'system', content: CHATGLM3_TOOL_INSTRUCTION, tools: TOOLS },
    { role: 'user', content: 'What is the vintage of Chateau Margaux?' },
    { role: 'assistant', metadata: 'pull_vintage', content: '```python\ntool_call(wine_name="Chateau Margaux")\n```' },
    { role: 'observation', content: '{"vintage": 1996}' },
    { role: 'assistant', content: 'It is from 1996.' },
    { role: 'user', content: '上海的空气质量怎么样？' },
  ],
  [
    { role: 'user', content: ' leading space, then 世界' },
    { role: 'assistant', metadata: 'interpreter', content: '```python\nprint(sum(range(1, 101)))\n```' },
  ],
];

/** Corpus lines for the tokenizer: tool lists, calls, questions in English and Chinese. */
function corpus(): string {
  const lines: string[] = [];
  const verbs = ['get', 'fetch', 'pull', 'lookup', 'find', 'check'];
  const nouns = ['vintage', 'air_quality', 'weather', 'price', 'route', 'score', 'wine_name', 'city', 'rows'];
  for (let i = 0; i < 400; i++) {
    const v = verbs[i % verbs.length]!;
    const n = nouns[(i * 7) % nouns.length]!;
    lines.push(`    "name": "${v}_${n}",`, `${v}_${n}`, `tool_call(${n}="Paris", max_rows=${i % 50})`);
    lines.push(`What is the ${n.replace('_', ' ')} in city number ${i}?`, `查询第${i}个城市的天气和空气质量。`);
    lines.push(`  indented ${v} line`, `Answer the following questions as best as you can.`);
  }
  return lines.join('\n') + '\n';
}

const SCRIPT = `
import json, sys
import sentencepiece as spm
work, corpus_file, cases_file, name = sys.argv[1:5]
symbols, vocab = json.loads(sys.argv[5]), int(sys.argv[6])
spm.SentencePieceTrainer.train(
    input=corpus_file, model_prefix=work + "/" + name, model_type="bpe", vocab_size=vocab,
    character_coverage=1.0, byte_fallback=True, split_digits=True, add_dummy_prefix=False,
    remove_extra_whitespaces=False, normalization_rule_name="identity", allow_whitespace_only_pieces=True,
    user_defined_symbols=symbols, unk_id=0, bos_id=1, eos_id=2, pad_id=-1, num_threads=1, minloglevel=2)
sp = spm.SentencePieceProcessor(model_file=work + "/" + name + ".model")
cases = json.load(open(cases_file, encoding="utf-8"))
n = sp.get_piece_size()
special = {name: n + i for i, name in enumerate(["[MASK]", "[gMASK]", "[sMASK]", "sop", "eop",
                                                  "<|system|>", "<|user|>", "<|assistant|>", "<|observation|>"])}
vectors = [{"ids": sp.encode(s), "pieces": sp.encode(s, out_type=str), "decoded": sp.decode(sp.encode(s))} for s in cases["strings"]]
chats = []
for msgs in cases["chats"]:
    ids = [special["[gMASK]"], special["sop"]]
    for m in msgs:
        content = m["content"]
        if "tools" in m:
            content += "\\n" + json.dumps(m["tools"], indent=4, ensure_ascii=False)
        ids += [special["<|" + m["role"] + "|>"]] + sp.encode(m.get("metadata", "") + "\\n") + sp.encode(content)
    chats.append(ids + [special["<|assistant|>"]])
json.dump({"pieces": n, "vectors": vectors, "chats": chats}, sys.stdout, ensure_ascii=False)
`;

interface Reference {
  pieces: number;
  vectors: { ids: number[]; pieces: string[]; decoded: string }[];
  chats: number[][];
}

/** The two tokenizers: ", " as one piece (the third run); spaces as pieces of their own (the fifth). */
const VARIANTS: Record<string, { symbols: string[]; vocab: number }> = {
  nodummy: { symbols: [',\u2581'], vocab: 600 },
  // Fewer pieces: with no piece holding a space, this corpus has fewer to merge.
  spaces: { symbols: [32, 28, 24, 20, 16, 12, 8, 4, 3, 2, 1].map((k) => '\u2581'.repeat(k)), vocab: 500 },
};

let tmp = '';
const refs = new Map<string, Reference>();

before(async () => {
  if (skip !== false) return;
  tmp = await mkdtemp(path.join(os.tmpdir(), 'chatglm-nodummy-'));
  await writeFile(path.join(tmp, 'corpus.txt'), corpus());
  await writeFile(path.join(tmp, 'cases.json'), JSON.stringify({ strings: STRINGS, chats: CHATS }));
  for (const [name, { symbols, vocab }] of Object.entries(VARIANTS)) {
    const args = ['-c', SCRIPT, tmp, path.join(tmp, 'corpus.txt'), path.join(tmp, 'cases.json'), name, JSON.stringify(symbols), String(vocab)];
    const r = spawnSync(python, args, { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    refs.set(name, JSON.parse(r.stdout) as Reference);
  }
});

after(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

for (const name of Object.keys(VARIANTS)) {
  test(`add_dummy_prefix=false (${name}): ids, pieces and decoded text equal the library`, async (t) => {
    const ref = refs.get(name);
    if (skip !== false || !ref) return t.skip(skip || 'no reference');
    const sp = await loadSentencePieceModel(path.join(tmp, `${name}.model`));
    assert.equal(sp.vocabSize, ref.pieces);
    STRINGS.forEach((s, i) => {
      const v = ref.vectors[i]!;
      const label = JSON.stringify(s).slice(0, 60);
      assert.deepEqual(sp.encode(s), v.ids, label);
      assert.deepEqual(sp.encodeAsPieces(s), v.pieces, label);
      assert.equal(sp.decode(v.ids), v.decoded, label);
      const d = sp.createStreamDecoder();
      let streamed = '';
      for (const id of v.ids) streamed += d.push(id);
      assert.equal(streamed + d.flush(), v.decoded, label);
    });
    // The point of the setting: nothing is added in front, so leading spaces and text survive a round trip.
    assert.ok(!ref.vectors[0]!.pieces[0]!.startsWith('\u2581'), ref.vectors[0]!.pieces.join(' '));
    assert.equal(ref.vectors[5]!.decoded, STRINGS[5]);
  });

  test(`add_dummy_prefix=false (${name}): ChatGLM3 prompts have the ids of the Python layout`, async (t) => {
    const ref = refs.get(name);
    if (skip !== false || !ref) return t.skip(skip || 'no reference');
    const tok = new ChatGLMTokenizer(await loadSentencePieceModel(path.join(tmp, `${name}.model`)), getFamily('chatglm3'));
    CHATS.forEach((msgs, i) => {
      assert.deepEqual(encodePieces(chatglm3.render(msgs).pieces, tok), ref.chats[i], `chat ${i}`);
    });
  });
}

test('add_dummy_prefix=false: tool and parameter names in the call are the same ids as in the tool list', async (t) => {
  if (skip !== false || !refs.has('nodummy')) return t.skip(skip || 'no reference');
  const sp = await loadSentencePieceModel(path.join(tmp, 'nodummy.model'));
  const list = sp.encode(STRINGS[STRINGS.length - 1]!);
  const inList = (ids: number[]) => list.some((_, i) => ids.every((id, k) => list[i + k] === id));
  for (const name of ['pull_vintage', 'fetchAirQuality']) {
    const line = sp.encode(`${name}\n`);
    const nameIds = line.slice(0, line.length - sp.encode('\n').length);
    assert.ok(inList(nameIds), `${name}: ${sp.encodeAsPieces(`${name}\n`).join(' ')} not inside the list's pieces`);
  }
  // The second argument follows ", ": with ", " one piece, its name starts without the word-start marker.
  const call = sp.encode('tool_call(wine_name="Chateau Margaux", max_rows=3)');
  const at = call.indexOf(sp.encode(', ')[0]!);
  const nameIds = sp.encode('max_rows');
  assert.deepEqual(call.slice(at + 1, at + 1 + nameIds.length), nameIds, sp.encodeAsPieces('tool_call(wine_name="Chateau Margaux", max_rows=3)').join(' '));
  assert.ok(inList(nameIds), `max_rows: ${sp.encodeAsPieces('max_rows').join(' ')} not inside the list's pieces`);
});

test('spaces as pieces: a word has the same ids in the question, the tool list, the description and the call', async (t) => {
  if (skip !== false || !refs.has('spaces')) return t.skip(skip || 'no reference');
  const sp = await loadSentencePieceModel(path.join(tmp, 'spaces.model'));
  const space = sp.encode(' ');
  assert.equal(space.length, 1);
  // No piece but the space pieces holds a space: every word stands alone between them.
  for (const s of STRINGS) {
    for (const p of sp.encodeAsPieces(s)) assert.ok(!p.includes('\u2581') || /^\u2581+$/.test(p), `${JSON.stringify(s)}: piece ${p}`);
  }
  const has = (hay: number[], ids: number[]) => hay.some((_, i) => ids.every((id, k) => hay[i + k] === id));
  const list = sp.encode(STRINGS[STRINGS.length - 1]!);
  const question = sp.encode('What is the vintage of Chateau Margaux?');
  const call = sp.encode('tool_call(wine_name="Chateau Margaux", max_rows=3)');
  for (const word of ['vintage', 'Chateau', 'Margaux', 'max_rows', 'wine_name', 'pull_vintage']) {
    const ids = sp.encode(word);
    const where = [list, question, call].filter((hay) => has(hay, ids)).length;
    const expected = { vintage: 2, Chateau: 2, Margaux: 2, max_rows: 2, wine_name: 2, pull_vintage: 1 }[word];
    assert.equal(where, expected, `${word}: ${sp.encodeAsPieces(word).join(' ')}`);
  }
  // JSON indentation stays one piece a line, as before.
  assert.equal(sp.encode('            "name"').length, 1 + sp.encode('"name"').length);
});

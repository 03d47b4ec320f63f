/**
 * A SentencePiece model trained with add_dummy_prefix=false (no word-start marker added at the
 * start of an encoded string) and ", " as a user-defined piece, like the demo model's tokenizer, is
 * encoded and decoded exactly as the official library does, and ChatGLM3 prompts built by our chat format have the ids of the
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
work, corpus_file, cases_file = sys.argv[1:4]
spm.SentencePieceTrainer.train(
    input=corpus_file, model_prefix=work + "/nodummy", model_type="bpe", vocab_size=600,
    character_coverage=1.0, byte_fallback=True, split_digits=True, add_dummy_prefix=False,
    remove_extra_whitespaces=False, normalization_rule_name="identity", allow_whitespace_only_pieces=True,
    user_defined_symbols=[",\u2581"], unk_id=0, bos_id=1, eos_id=2, pad_id=-1, num_threads=1, minloglevel=2)
sp = spm.SentencePieceProcessor(model_file=work + "/nodummy.model")
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

let tmp = '';
let ref: Reference | undefined;

before(async () => {
  if (skip !== false) return;
  tmp = await mkdtemp(path.join(os.tmpdir(), 'chatglm-nodummy-'));
  await writeFile(path.join(tmp, 'corpus.txt'), corpus());
  await writeFile(path.join(tmp, 'cases.json'), JSON.stringify({ strings: STRINGS, chats: CHATS }));
  const r = spawnSync(python, ['-c', SCRIPT, tmp, path.join(tmp, 'corpus.txt'), path.join(tmp, 'cases.json')], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  ref = JSON.parse(r.stdout) as Reference;
});

after(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

test('add_dummy_prefix=false: ids, pieces and decoded text equal the library', async (t) => {
  if (skip !== false || !ref) return t.skip(skip || 'no reference');
  const sp = await loadSentencePieceModel(path.join(tmp, 'nodummy.model'));
  assert.equal(sp.vocabSize, ref.pieces);
  STRINGS.forEach((s, i) => {
    const v = ref!.vectors[i]!;
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

test('add_dummy_prefix=false: tool and parameter names in the call are the same ids as in the tool list', async (t) => {
  if (skip !== false || !ref) return t.skip(skip || 'no reference');
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

test('add_dummy_prefix=false: ChatGLM3 prompts have the ids of the Python layout', async (t) => {
  if (skip !== false || !ref) return t.skip(skip || 'no reference');
  const tok = new ChatGLMTokenizer(await loadSentencePieceModel(path.join(tmp, 'nodummy.model')), getFamily('chatglm3'));
  CHATS.forEach((msgs, i) => {
    assert.deepEqual(encodePieces(chatglm3.render(msgs).pieces, tok), ref!.chats[i], `chat ${i}`);
  });
});

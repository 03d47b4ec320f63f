/**
 * Evaluates the bundled demo model through OUR engine (not PyTorch) on the held-out prompts that
 * tools/train-demo/prepare.py wrote (cities and numbers never seen in training), and checks our
 * logits against the PyTorch training code's (reference-logits.json, written by export.py).
 *
 *   npx tsc -p . && node dist/tools/train-demo/eval.js [--model DIR] [--refs FILE] [--heldout FILE] [--limit N] [--json] [--verbose]
 *
 * Greedy decoding (temperature 0) via createChatCompletion, so tokenizer, template, model,
 * generation loop and reply parser are all exercised.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadChatModel, type ChatCompletionMessageParam } from '../../src/api.js';
import { openModel } from '../../src/model/open.js';
import type { JsonValue } from '../../src/chat/python-literal.js';
import { FAMILIES } from '../../src/families/registry.js';

interface Msg {
  role: 'system' | 'user' | 'assistant' | 'observation';
  metadata: string;
  content: string;
}
interface ToolItem {
  kind: 'tool';
  tools: JsonValue;
  messages: Msg[];
  expected: { tool: string; args: Record<string, JsonValue>; values: string[] };
  observation_messages: Msg[];
}
interface CodeItem {
  kind: 'code';
  messages: Msg[];
  expected: { code: string };
}
interface Heldout {
  items: (ToolItem | CodeItem)[];
}
interface RefPrompt {
  name: string;
  messages: Msg[];
  ids: number[];
  last_logits: number[];
}

const here = path.dirname(fileURLToPath(import.meta.url));
// Source lives in tools/train-demo; the compiled file in dist/tools/train-demo.
const root = here.includes(`${path.sep}dist${path.sep}`) ? path.resolve(here, '../../..') : path.resolve(here, '../..');
const toolDir = path.join(root, 'tools', 'train-demo');

const TOOL_PROMPT = 'Answer the following questions as best as you can. You have access to the following tools:';

function toRequestMessages(msgs: Msg[], tools?: JsonValue): ChatCompletionMessageParam[] {
  return msgs.map((m): ChatCompletionMessageParam => {
    if (m.role === 'system' && tools !== undefined) return { role: 'system', content: TOOL_PROMPT, tools };
    if (m.role === 'assistant') return { role: 'assistant', content: m.content, metadata: m.metadata };
    return { role: m.role, content: m.content } as ChatCompletionMessageParam;
  });
}

const norm = (v: JsonValue): string => (typeof v === 'string' ? v.replace(/\s+/g, '') : JSON.stringify(v));

function argsMatch(got: Record<string, JsonValue>, want: Record<string, JsonValue>): boolean {
  const gk = Object.keys(got).sort();
  const wk = Object.keys(want).sort();
  if (gk.join(',') !== wk.join(',')) return false;
  return wk.every((k) => norm(got[k]!) === norm(want[k]!));
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const opt = (name: string): string | undefined => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const modelDir = opt('--model') ?? path.join(root, 'models', 'chatglm3-demo');
  const limit = Number(opt('--limit') ?? Infinity);
  const verbose = argv.includes('--verbose');
  const heldout = JSON.parse(readFileSync(opt('--heldout') ?? path.join(toolDir, 'heldout.json'), 'utf8')) as Heldout;
  const refs = (JSON.parse(readFileSync(opt('--refs') ?? path.join(toolDir, 'reference-logits.json'), 'utf8')) as { prompts: RefPrompt[] }).prompts;

  const model = await loadChatModel(modelDir);
  const results: Record<string, number | string> = {};

  // 1. Engine vs PyTorch logits, and our prompt ids vs the Python layout.
  const opened = await openModel(modelDir, { families: FAMILIES });
  let worstRel = 0;
  let idsMatch = 0;
  for (const r of refs) {
    const ids = model.renderPrompt(r.messages.map((m) => ({ role: m.role, content: m.content, ...(m.metadata ? { metadata: m.metadata } : {}) }))).ids;
    if (ids.length === r.ids.length && ids.every((x, i) => x === r.ids[i])) idsMatch++;
    const logits = opened.model.forward([{ cache: opened.model.newCache(r.ids.length), ids: r.ids }])[0]!;
    let maxDiff = 0;
    let maxRef = 0;
    for (let i = 0; i < r.last_logits.length; i++) {
      maxDiff = Math.max(maxDiff, Math.abs(logits[i]! - r.last_logits[i]!));
      maxRef = Math.max(maxRef, Math.abs(r.last_logits[i]!));
    }
    worstRel = Math.max(worstRel, maxDiff / maxRef);
  }
  opened.backend.dispose?.();
  results['logits_max_rel_diff'] = worstRel;
  results['prompt_ids_match'] = `${idsMatch}/${refs.length}`;

  // 2. Held-out tool calls, observation answers and code requests.
  let nTool = 0, wellFormed = 0, rightCall = 0, nObs = 0, obsQuoted = 0, nCode = 0, codeOk = 0, codeExact = 0;
  const failures: string[] = [];
  for (const item of heldout.items.slice(0, limit)) {
    if (item.kind === 'tool') {
      nTool++;
      const r = await model.createChatCompletion({ messages: toRequestMessages(item.messages, item.tools), temperature: 0, max_tokens: 96 });
      const call = r.choices[0].message.tool_calls?.[0];
      if (call !== undefined) {
        wellFormed++;
        const args = JSON.parse(call.function.arguments) as Record<string, JsonValue>;
        if (call.function.name === item.expected.tool && argsMatch(args, item.expected.args)) rightCall++;
        else failures.push(`call: want ${item.expected.tool}${JSON.stringify(item.expected.args)} got ${call.function.name}${call.function.arguments}`);
      } else failures.push(`no call for ${JSON.stringify(item.messages[1]!.content)}: ${JSON.stringify(r.choices[0].message)}`);
      nObs++;
      const a = await model.createChatCompletion({ messages: toRequestMessages(item.observation_messages, item.tools), temperature: 0, max_tokens: 96 });
      const text = a.choices[0].message.content ?? '';
      if (item.expected.values.every((v) => text.includes(v))) obsQuoted++;
      else failures.push(`answer lacks ${item.expected.values.join(',')}: ${JSON.stringify(text)}`);
    } else {
      nCode++;
      const r = await model.createChatCompletion({ messages: toRequestMessages(item.messages), temperature: 0, max_tokens: 160 });
      const call = r.choices[0].message.tool_calls?.[0];
      if (call !== undefined && call.function.name === 'interpreter') {
        const code = (JSON.parse(call.function.arguments) as { code: string }).code;
        if (code.trim() !== '') codeOk++;
        if (code.trim() === item.expected.code.trim()) codeExact++;
        else failures.push(`code differs for ${JSON.stringify(item.messages.at(-1)!.content)}: ${JSON.stringify(code)}`);
      } else failures.push(`no interpreter block for ${JSON.stringify(item.messages.at(-1)!.content)}: ${JSON.stringify(r.choices[0].message)}`);
    }
  }
  model.dispose();
  const pct = (a: number, b: number): string => `${a}/${b} = ${b === 0 ? 'n/a' : ((100 * a) / b).toFixed(1) + '%'}`;
  results['well_formed_tool_call'] = pct(wellFormed, nTool);
  results['right_tool_and_arguments'] = pct(rightCall, nTool);
  results['answer_quotes_observation'] = pct(obsQuoted, nObs);
  results['parseable_interpreter_block'] = pct(codeOk, nCode);
  results['interpreter_code_exactly_as_trained'] = pct(codeExact, nCode);
  if (argv.includes('--json')) console.log(JSON.stringify({ results, failures }, null, 2));
  else {
    for (const [k, v] of Object.entries(results)) console.log(`${k}: ${v}`);
    if (verbose) for (const f of failures) console.log(`  - ${f}`);
    else if (failures.length > 0) console.log(`(${failures.length} misses; --verbose lists them)`);
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});

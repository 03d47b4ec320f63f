/**
 * Held-out evaluation of the bundled demo model through OUR engine (not PyTorch), on the prompts
 * tools/train-demo/prepare.py wrote before training (tools, parameter names, places and numbers that
 * never occur in training), plus a check of our logits against the PyTorch training code's
 * (reference-logits.json, written by export.py).
 *
 *   npx tsc -p . && node dist/tools/train-demo/eval.js [--model DIR] [--heldout FILE] [--refs FILE] [--limit N] [--json] [--verbose]
 *
 * Greedy decoding (temperature 0) via createChatCompletion with the tools passed as a request's
 * `tools`, so tokenizer, template, forward pass, generation, reply parser and (in the "constrained"
 * column) the grammar that holds a tool call to the declared names and schemas are all exercised.
 * Code the model writes is run in our code-interpreter sandbox (bubblewrap + /usr/bin/python3).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadChatModel, type ChatCompletion, type ChatCompletionMessageParam, type ChatCompletionRequest, type ChatModel } from '../../src/api.js';
import { openModel } from '../../src/model/open.js';
import { createCodeInterpreter, type CodeInterpreter } from '../../src/agent/interpreter/index.js';
import type { JsonValue } from '../../src/chat/python-literal.js';
import { FAMILIES } from '../../src/families/registry.js';

interface Msg {
  role: 'system' | 'user' | 'assistant' | 'observation';
  metadata: string;
  content: string;
}
interface ToolItem {
  kind: 'tool';
  zh: boolean;
  tools: JsonValue;
  messages: Msg[];
  expected: { tool: string; args: Record<string, JsonValue>; values: string[] };
  observation_messages: Msg[];
}
interface NofitItem {
  kind: 'nofit';
  zh: boolean;
  tools: JsonValue;
  messages: Msg[];
}
interface CodeItem {
  kind: 'code';
  zh: boolean;
  plot: boolean;
  messages: Msg[];
  expected: { code: string };
}
type Item = ToolItem | NofitItem | CodeItem;
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

/** The conversation after the system message (the request's `tools` make the system message). */
function toRequestMessages(msgs: Msg[]): ChatCompletionMessageParam[] {
  return msgs
    .filter((m) => m.role !== 'system')
    .map((m): ChatCompletionMessageParam => {
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

class Tally {
  readonly counts = new Map<string, [number, number]>();
  add(name: string, ok: boolean): void {
    const c = this.counts.get(name) ?? [0, 0];
    c[0] += ok ? 1 : 0;
    c[1] += 1;
    this.counts.set(name, c);
  }
  show(name: string): string {
    const [a, b] = this.counts.get(name) ?? [0, 0];
    return b === 0 ? 'n/a' : `${a}/${b} = ${((100 * a) / b).toFixed(1)}%`;
  }
}

/** A request that fails (e.g. a prompt longer than the model's context) counts as a miss, not a crash. */
async function complete(model: ChatModel, request: ChatCompletionRequest, failures: string[], tag: string): Promise<ChatCompletion['choices'][0]['message'] | undefined> {
  try {
    const r = await model.createChatCompletion({ ...request, stream: false });
    return r.choices[0].message;
  } catch (err) {
    failures.push(`${tag} error on ${JSON.stringify(request.messages.at(-1))}: ${err instanceof Error ? err.message : String(err)}`);
    return undefined;
  }
}

async function evaluate(model: ChatModel, items: Item[], constrain: boolean, interpreter: CodeInterpreter, failures: string[]): Promise<Tally> {
  const t = new Tally();
  const tag = constrain ? '[constrained]' : '[free]';
  for (const item of items) {
    const lang = item.zh ? 'zh' : 'en';
    if (item.kind === 'tool') {
      const m = await complete(model, { messages: toRequestMessages(item.messages), tools: item.tools, constrain, temperature: 0, max_tokens: 128 }, failures, tag);
      const call = m?.tool_calls?.[0];
      const rightTool = call?.function.name === item.expected.tool;
      let rightArgs = false;
      if (call !== undefined && rightTool) rightArgs = argsMatch(JSON.parse(call.function.arguments) as Record<string, JsonValue>, item.expected.args);
      t.add('tool', rightTool);
      t.add(`tool_${lang}`, rightTool);
      t.add('args', rightArgs);
      t.add(`args_${lang}`, rightArgs);
      if (!rightArgs && m !== undefined) {
        failures.push(`${tag} call: want ${item.expected.tool}${JSON.stringify(item.expected.args)} got ${call ? call.function.name + call.function.arguments : JSON.stringify(m.content)}`);
      }
      const a = await complete(model, { messages: toRequestMessages(item.observation_messages), tools: item.tools, constrain, temperature: 0, max_tokens: 128 }, failures, tag);
      const text = a?.content ?? '';
      const quoted = a !== undefined && a.tool_calls === undefined && item.expected.values.every((v) => text.includes(v));
      t.add(`observation_${lang}`, quoted);
      if (!quoted && a !== undefined) failures.push(`${tag} answer lacks ${item.expected.values.join(' | ')}: ${JSON.stringify(text)}`);
    } else if (item.kind === 'nofit') {
      const m = await complete(model, { messages: toRequestMessages(item.messages), tools: item.tools, constrain, temperature: 0, max_tokens: 96 }, failures, tag);
      const noCall = m !== undefined && (m.tool_calls ?? []).length === 0;
      t.add('nofit', noCall);
      if (!noCall && m !== undefined) failures.push(`${tag} no-fit request ${JSON.stringify(item.messages.at(-1)!.content)} got a call ${JSON.stringify(m.tool_calls)}`);
    } else {
      const m = await complete(model, { messages: toRequestMessages(item.messages), constrain, temperature: 0, max_tokens: 200 }, failures, tag);
      const call = m?.tool_calls?.[0];
      let runs = false;
      let plotted = false;
      let why = `no interpreter block: ${JSON.stringify(m)}`;
      if (call !== undefined && call.function.name === 'interpreter') {
        const code = (JSON.parse(call.function.arguments) as { code: string }).code;
        await interpreter.reset(); // a fresh Python, as in a new conversation
        const run = await interpreter.run(code);
        runs = run.error === undefined && !run.timedOut && code.trim() !== '';
        plotted = runs && run.images.length > 0;
        why = runs ? `ran but made no image: ${JSON.stringify(code)}` : `failed (${run.error?.name ?? 'timeout'}): ${JSON.stringify(code)}`;
      }
      t.add('code_runs', runs);
      t.add(`code_runs_${lang}`, runs);
      if (item.plot) t.add('plot', plotted);
      if (!runs || (item.plot && !plotted)) failures.push(`${tag} code for ${JSON.stringify(item.messages.at(-1)!.content)} ${why}`);
    }
  }
  return t;
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
  const heldout = JSON.parse(readFileSync(opt('--heldout') ?? path.join(toolDir, 'heldout.json'), 'utf8')) as { items: Item[] };
  const refs = (JSON.parse(readFileSync(opt('--refs') ?? path.join(toolDir, 'reference-logits.json'), 'utf8')) as { prompts: RefPrompt[] }).prompts;
  const items = heldout.items.slice(0, limit);

  const model = await loadChatModel(modelDir);
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

  // 2. The held-out items, without and with constrained decoding.
  const interpreter = await createCodeInterpreter();
  const failures: string[] = [];
  let free: Tally;
  let constrained: Tally;
  try {
    free = await evaluate(model, items, false, interpreter, failures);
    constrained = await evaluate(model, items, true, interpreter, failures);
  } finally {
    await interpreter.close();
    model.dispose();
  }
  const rows: [string, string, string][] = [
    ['right tool (unseen tools)', 'tool', '>= 90%'],
    ['  English questions', 'tool_en', ''],
    ['  Chinese questions', 'tool_zh', ''],
    ['right tool and arguments (unseen parameter names)', 'args', '>= 85%'],
    ['  English questions', 'args_en', ''],
    ['  Chinese questions', 'args_zh', ''],
    ['observation values quoted, English', 'observation_en', '>= 90%'],
    ['observation values quoted, Chinese', 'observation_zh', '>= 90%'],
    ['code runs without error in the sandbox', 'code_runs', '>= 85%'],
    ['  English requests', 'code_runs_en', ''],
    ['  Chinese requests', 'code_runs_zh', ''],
    ['plot requests: image produced', 'plot', '>= 80%'],
    ['no-fit requests: no tool call', 'nofit', '>= 90%'],
  ];
  if (argv.includes('--json')) {
    const table = Object.fromEntries(rows.map(([label, key]) => [key, { label, free: free.show(key), constrained: constrained.show(key) }]));
    console.log(JSON.stringify({ logits_max_rel_diff: worstRel, prompt_ids_match: `${idsMatch}/${refs.length}`, table, failures }, null, 2));
    return;
  }
  console.log(`engine vs PyTorch logits, max abs diff / max abs logit: ${worstRel.toExponential(1)} (target <= 1e-3)`);
  console.log(`prompt ids equal to the Python layout: ${idsMatch}/${refs.length}`);
  console.log('| metric (held-out) | target | without constraints | with constrained decoding |');
  console.log('|---|---|---|---|');
  for (const [label, key, target] of rows) console.log(`| ${label} | ${target} | ${free.show(key)} | ${constrained.show(key)} |`);
  if (verbose) for (const f of failures) console.log(`  - ${f}`);
  else if (failures.length > 0) console.log(`(${failures.length} misses over both columns; --verbose lists them)`);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});

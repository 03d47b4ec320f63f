/**
 * Constrained-decoding benchmark: mask time per token and grammar compile time at ChatGLM3's
 * 65,024-token vocabulary, and decode speed with and without a constraint on the 1.7B-shape GGUF.
 *
 *   npx tsc -p . && node dist/tools/constrain/bench.js [--gguf FILE] [--decode-tokens 48] [--runs 3] [--no-decode]
 *
 * The vocabulary is synthetic but shaped like ChatGLM3's: <unk> <s> </s>, 256 byte-fallback
 * pieces, English word pieces with and without the U+2581 word marker, numbers, punctuation runs,
 * code fragments, single Chinese characters and pairs, then ChatGLM3's 9 specials (65,024 ids).
 * Mask time is the whole hook: xgrammar's bitmask, the UTF-8 guard, and applying the mask to
 * 65,024 logits. Two drivers: following realistic tool calls token by token (longest allowed
 * token that continues the target text), and sampling from random logits (a stress test: long
 * strings of arbitrary characters). Also timed for comparison: one walk over a token trie of the
 * same vocabulary that visits every token (what our own matcher would do, at least, whenever
 * a string is open and no cached mask applies).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { loadChatModel } from '../../src/api.js';
import { replyGrammar, toolSpecs } from '../../src/chat/reply-grammar.js';
import { chatglm3 } from '../../src/chat/chatglm3.js';
import { GrammarEngine } from '../../src/grammar/engine.js';
import { GrammarConstraint } from '../../src/grammar/grammar-constraint.js';
import { applyTokenBitmask } from '../../src/generate/logits-constraint.js';
import { ChatGLMTokenizer } from '../../src/tokenizer/chatglm.js';
import { PieceType, type PieceTypeValue } from '../../src/tokenizer/sentencepiece-model.js';
import { SentencePieceTokenizer, type SentencePieceEntry } from '../../src/tokenizer/sentencepiece.js';
import { writeSyntheticModel } from '../bench-synth.js';
import { EVAL_TOOLS } from './eval-set.js';
import type { JsonValue } from '../../src/chat/python-literal.js';
import { getFamily } from '../../src/families/registry.js';

const VOCAB = 65024;

/** Two tools as OpenAI-style requests usually declare them: typed properties, enums, a date pattern. */
const TYPICAL_TOOLS: JsonValue = [
  {
    type: 'function',
    function: {
      name: 'lookup_city_climate',
      parameters: { type: 'object', properties: { city_name: { type: 'string' }, unit: { enum: ['celsius', 'fahrenheit'] } }, required: ['city_name'] },
    },
  },
  {
    type: 'function',
    function: {
      name: 'search_flights',
      parameters: {
        type: 'object',
        properties: { origin: { type: 'string' }, destination: { type: 'string' }, date: { type: 'string', pattern: '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' } },
        required: ['origin', 'destination', 'date'],
      },
    },
  },
];

function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32;
  };
}

/** A ChatGLM3-shaped vocabulary of exactly 65,024 ids (see the header). */
export function chatglm3ShapedTokenizer(): ChatGLMTokenizer {
  const pieces: SentencePieceEntry[] = [
    { piece: '<unk>', score: 0, type: PieceType.UNKNOWN },
    { piece: '<s>', score: 0, type: PieceType.CONTROL },
    { piece: '</s>', score: 0, type: PieceType.CONTROL },
  ];
  for (let b = 0; b < 256; b++) pieces.push({ piece: `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`, score: 0, type: PieceType.BYTE });
  const seen = new Set<string>();
  const target = VOCAB - 9;
  const add = (p: string): void => {
    if (pieces.length >= target || p === '' || seen.has(p)) return;
    seen.add(p);
    pieces.push({ piece: p, score: -pieces.length, type: PieceType.NORMAL as PieceTypeValue });
  };
  const W = '\u2581';
  for (const p of ['tool', '_call', 'tool_call', '```', 'python', '="', '",', '":', '"}', '{"', '("', '")', '\n', '▁{', '▁[', '▁"', 'celsius', 'Paris', 'city', '_name']) add(p.replace('▁', W));
  const punct = '()[]{}<>"\',.:;=_-+*/|!?@#$%^&~`';
  for (const a of punct) {
    add(a);
    add(W + a);
    for (const b of punct) add(a + b);
  }
  for (let n = 0; n < 1000; n++) {
    add(String(n));
    add(W + n);
  }
  const r = rng(7);
  const cons = 'bcdfghjklmnprstvwxyz';
  const vows = 'aeiou';
  // Chinese: single characters, then pairs, about 40% of the vocabulary (as in ChatGLM3's).
  for (let cp = 0x4e00; cp < 0x4e00 + 9000; cp++) add(String.fromCodePoint(cp));
  while (pieces.length < 0.4 * target) add(String.fromCodePoint(0x4e00 + Math.floor(r() * 9000), 0x4e00 + Math.floor(r() * 9000)));
  while (pieces.length < target) {
    const syll = 1 + Math.floor(r() * 3);
    let w = '';
    for (let i = 0; i < syll; i++) w += cons[Math.floor(r() * cons.length)]! + vows[Math.floor(r() * vows.length)]! + (r() < 0.3 ? cons[Math.floor(r() * cons.length)]! : '');
    const form = r();
    add(form < 0.5 ? W + w : form < 0.6 ? W + w[0]!.toUpperCase() + w.slice(1) : w);
  }
  const tok = new ChatGLMTokenizer(SentencePieceTokenizer.fromPieces(pieces), getFamily('chatglm3'));
  if (tok.vocabSize !== VOCAB) throw new Error(`vocabulary has ${tok.vocabSize} ids, expected ${VOCAB}`);
  return tok;
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

const us = (ms: number): string => `${(ms * 1000).toFixed(1)} µs`;

/** Mask times following `targets` (texts the grammar accepts), each through a fresh constraint. */
async function followTargets(
  engine: GrammarEngine,
  ebnf: string,
  freeText: boolean,
  stopIds: number[],
  targets: string[],
  repeat: number,
  bitmaskTimes: number[],
): Promise<number[]> {
  const compiled = await engine.compile(ebnf);
  const byBytes = new Map<string, number>();
  engine.tokenBytes.forEach((b, id) => {
    if (b) byBytes.set(Buffer.from(b).toString('latin1'), id);
  });
  const times: number[] = [];
  const logits = new Float32Array(VOCAB);
  for (let k = 0; k < repeat; k++) {
    for (const text of targets) {
      const c = await GrammarConstraint.create(engine, compiled, { stopIds, freeText });
      let rest = Buffer.from(text, 'utf8').toString('latin1');
      for (;;) {
        logits.fill(0);
        const t0 = performance.now();
        const bits = await c.allowed();
        const t1 = performance.now();
        applyTokenBitmask(logits, bits);
        times.push(performance.now() - t0);
        bitmaskTimes.push(t1 - t0);
        if (rest.length === 0) {
          if (logits[stopIds[0]!] === -Infinity) throw new Error(`the grammar cannot end after ${JSON.stringify(text)}`);
          c.accept(stopIds[0]!);
          break;
        }
        let id = -1;
        for (let len = Math.min(16, rest.length); len > 0 && id < 0; len--) {
          const cand = byBytes.get(rest.slice(0, len));
          if (cand !== undefined && logits[cand] !== -Infinity) {
            id = cand;
            rest = rest.slice(len);
          }
        }
        if (id < 0) throw new Error(`no allowed token continues ${JSON.stringify(rest)} in ${JSON.stringify(text)}`);
        c.accept(id);
      }
      c.dispose();
    }
  }
  return times;
}

/** Mask times while sampling from random logits under the grammar (stress). */
async function randomWalk(engine: GrammarEngine, ebnf: string, stopIds: number[], steps: number): Promise<number[]> {
  const compiled = await engine.compile(ebnf);
  const r = rng(11);
  const times: number[] = [];
  const logits = new Float32Array(VOCAB);
  let c = await GrammarConstraint.create(engine, compiled, { stopIds });
  for (let i = 0; i < steps; i++) {
    for (let j = 0; j < VOCAB; j++) logits[j] = r();
    const t0 = performance.now();
    await c.mask(logits);
    times.push(performance.now() - t0);
    let best = -1;
    for (let j = 0; j < VOCAB; j++) if (logits[j] !== -Infinity && (best < 0 || logits[j]! > logits[best]!)) best = j;
    c.accept(best);
    if (stopIds.includes(best)) {
      c.dispose();
      c = await GrammarConstraint.create(engine, compiled, { stopIds });
    }
  }
  c.dispose();
  return times;
}

/** One walk over a byte trie of the vocabulary visiting every node with a trivial per-byte check. */
function trieWalkMs(tokenBytes: readonly (Uint8Array | null)[]): number {
  type Node = { next: Map<number, Node>; ids: number[] };
  const root: Node = { next: new Map(), ids: [] };
  for (let id = 0; id < tokenBytes.length; id++) {
    const b = tokenBytes[id];
    if (!b) continue;
    let n = root;
    for (const x of b) {
      let m = n.next.get(x);
      if (!m) n.next.set(x, (m = { next: new Map(), ids: [] }));
      n = m;
    }
    n.ids.push(id);
  }
  const mask = new Int32Array(Math.ceil(tokenBytes.length / 32));
  const walk = (n: Node): void => {
    for (const id of n.ids) mask[id >> 5]! |= 1 << (id & 31);
    for (const [byte, m] of n.next) if (byte !== 0x22 && byte !== 0x5c && byte >= 0x20) walk(m);
  };
  const times: number[] = [];
  for (let i = 0; i < 20; i++) {
    mask.fill(0);
    const t0 = performance.now();
    walk(root);
    times.push(performance.now() - t0);
  }
  return quantile(times, 0.5);
}

async function decodeBench(file: string, tokens: number, runs: number): Promise<{ free: number[]; constrained: number[]; hookShare: number[] }> {
  const model = await loadChatModel(file, { contextLength: 1024 });
  try {
    const prompt = model.renderPrompt([{ role: 'user', content: 'Write a long note.' }]).ids;
    const factory = await model.buildConstraint({
      tools: [{ type: 'function', function: { name: 'write_note', parameters: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] } } }],
      tool_choice: 'required',
    });
    const hookShare: number[] = [];
    const one = async (constrained: boolean, seed: number): Promise<number> => {
      const inner = constrained ? await factory!() : undefined;
      // The hook's own time inside the same steps: robust to the machine's load, unlike comparing runs.
      let hookMs = 0;
      const constraint = inner && {
        mask: async (l: Float32Array) => {
          const t = performance.now();
          await inner.mask(l);
          hookMs += performance.now() - t;
        },
        accept: (id: number) => {
          const t = performance.now();
          inner.accept(id);
          hookMs += performance.now() - t;
        },
      };
      const stamps: number[] = [];
      try {
        const it = model.generateStream(prompt, { temperature: 1, seed, maxNewTokens: tokens, stopIds: model.stopIds(), ...(constraint ? { constraint } : {}) });
        for (;;) {
          const r = await it.next();
          if (r.done) break;
          if (r.value.id !== undefined) stamps.push(performance.now());
        }
      } finally {
        inner?.dispose();
      }
      if (stamps.length < 8) throw new Error(`only ${stamps.length} tokens generated`);
      const wall = stamps[stamps.length - 1]! - stamps[0]!;
      if (inner) hookShare.push(hookMs / wall);
      return ((stamps.length - 1) * 1000) / wall;
    };
    await one(false, 1); // warm-up
    const free: number[] = [];
    const constrained: number[] = [];
    for (let i = 0; i < runs; i++) {
      // Alternate which goes first, so a load change hits both alike.
      if (i % 2 === 0) free.push(await one(false, 100 + i));
      constrained.push(await one(true, 100 + i));
      if (i % 2 === 1) free.push(await one(false, 100 + i));
    }
    return { free, constrained, hookShare };
  } finally {
    model.dispose();
  }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const arg = (name: string, def: string): string => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1]! : def;
  };
  const out: string[] = [];
  const log = (s: string): void => {
    out.push(s);
    process.stderr.write(s + '\n');
  };
  let t0 = performance.now();
  const tok = chatglm3ShapedTokenizer();
  log(`vocabulary: ${tok.vocabSize} ids (built in ${(performance.now() - t0).toFixed(0)} ms)`);
  t0 = performance.now();
  const engine = await GrammarEngine.create(tok);
  log(`grammar engine for the vocabulary (token bytes + xgrammar tokenizer info, once per tokenizer): ${(performance.now() - t0).toFixed(0)} ms`);

  const stopIds = chatglm3.stopIds(tok);
  const toolSets = [
    [EVAL_TOOLS.climate, EVAL_TOOLS.flights],
    [EVAL_TOOLS.rng],
    [EVAL_TOOLS.math, EVAL_TOOLS.stock, EVAL_TOOLS.alarm],
    [EVAL_TOOLS.flights],
    [EVAL_TOOLS.climate, EVAL_TOOLS.rng, EVAL_TOOLS.math, EVAL_TOOLS.flights, EVAL_TOOLS.stock, EVAL_TOOLS.alarm],
  ];
  const compileMs: number[] = [];
  for (const family of ['chatglm3', 'glm4'] as const) {
    for (const set of toolSets) {
      const t = performance.now();
      const g = replyGrammar({ family: getFamily(family), tools: toolSpecs(set as never) });
      await engine.compile(g.ebnf);
      compileMs.push(performance.now() - t);
    }
  }
  log(`schema compile (tool grammars: 1-6 tools, ChatGLM3 and GLM-4 forms; ${compileMs.length} grammars): median ${quantile(compileMs, 0.5).toFixed(0)} ms, max ${Math.max(...compileMs).toFixed(0)} ms`);

  const pyGrammar = replyGrammar({ family: getFamily('chatglm3'), tools: toolSpecs(TYPICAL_TOOLS) });
  const pyTargets = [
    ' lookup_city_climate\n ```python\ntool_call(city_name="Paris", unit="celsius")\n```',
    ' search_flights\n ```python\ntool_call(origin="北京", destination="San Francisco", date="2024-05-01")\n```',
  ];
  const pyBits: number[] = [];
  const pyTimes = await followTargets(engine, pyGrammar.ebnf, pyGrammar.freeText, stopIds, pyTargets, 40, pyBits);
  const jsGrammar = replyGrammar({ family: getFamily('glm4'), tools: toolSpecs(TYPICAL_TOOLS) });
  const jsTargets = ['lookup_city_climate\n{"city_name": "Paris", "unit": "celsius"}', 'search_flights\n{"origin": "北京", "destination": "San Francisco", "date": "2024-05-01"}'];
  const jsBits: number[] = [];
  const jsTimes = await followTargets(engine, jsGrammar.ebnf, jsGrammar.freeText, stopIds, jsTargets, 40, jsBits);
  const walk = await randomWalk(engine, pyGrammar.ebnf, stopIds, 1500);
  for (const [name, t] of [
    ['tool call, ChatGLM3 form (following real calls), bitmask only', pyBits],
    ['tool call, ChatGLM3 form (following real calls), bitmask + applied to the logits', pyTimes],
    ['tool call, GLM-4 JSON form (following real calls), bitmask only', jsBits],
    ['tool call, GLM-4 JSON form (following real calls), bitmask + applied to the logits', jsTimes],
    ['tool call, ChatGLM3 form (random logits, stress)', walk],
  ] as const) {
    log(`mask per token, ${name}: median ${us(quantile(t, 0.5))}, p99 ${us(quantile(t, 0.99))}, max ${us(Math.max(...t))} (${t.length} tokens)`);
  }
  log(`for comparison, one full walk of a token trie of this vocabulary in JS (no grammar work): ${trieWalkMs(engine.tokenBytes).toFixed(2)} ms`);
  engine.dispose();

  if (!args.includes('--no-decode')) {
    const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
    let file = arg('gguf', '');
    if (file === '') {
      const shared = '/work/bench-models/chatglm-1.7b-q4_0.gguf';
      file = existsSync(shared) ? shared : await writeSyntheticModel(path.join(root, '.bench', 'models'), '1.7b', 'q4_0', (s) => process.stderr.write(`${s}\n`));
    }
    const tokens = Number(arg('decode-tokens', '48'));
    const runs = Number(arg('runs', '3'));
    const d = await decodeBench(file, tokens, runs);
    const med = (xs: number[]): number => quantile(xs, 0.5);
    log(
      `decode, ${path.basename(file)}, ${tokens} tokens x ${runs} runs alternating: unconstrained ${d.free.map((x) => x.toFixed(2)).join(' / ')} tok/s, ` +
        `constrained ${d.constrained.map((x) => x.toFixed(2)).join(' / ')} tok/s; median ratio ${((100 * med(d.constrained)) / med(d.free)).toFixed(1)}%; ` +
        `the constraint's own share of the constrained runs' time: ${d.hookShare.map((x) => `${(100 * x).toFixed(2)}%`).join(' / ')} ` +
        `(decode speed with the constraint = ${(100 * (1 - Math.max(...d.hookShare))).toFixed(1)}% or more of the same steps without it)`,
    );
  }
  process.stdout.write(out.join('\n') + '\n');
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exitCode = 1;
  });
}

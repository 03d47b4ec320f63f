/**
 * Time to first token of a ChatGLM3 tool conversation with and without a prompt cache file.
 *
 * The first conversation starts cold (no file), prefills a tools system prompt plus a user message
 * and writes the prompt's KV to the file; the second, with another user message, restores the file
 * into a fresh KV cache and prefills only what differs. Both times include everything from the
 * start of the conversation to its first token (reading the file, for the second).
 *
 *   node dist/tools/bench-prompt-cache.js [--model PATH | --synth 1.7b] [--tools 9] [--prefix-tokens N] [--threads N] [--runs 3]
 *
 * --synth writes a random-weight q4_0 GGUF of that shape under /tmp/chatglm-bench (see bench-synth.ts).
 */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadChatModel } from '../src/api.js';
import { CachedSequence } from '../src/generate/sequence.js';
import { generateAll } from '../src/generate/generator.js';
import { loadPromptCache, modelIdentity, savePromptCache } from '../src/generate/prompt-cache.js';
import type { JsonValue } from '../src/chat/python-literal.js';
import { writeSyntheticModel } from './bench-synth.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/** Tool definitions of the size real agents send (a description and typed parameters each). */
function tools(count: number): JsonValue {
  const out: JsonValue[] = [];
  for (let i = 0; i < count; i++) {
    out.push({
      name: `tool_${i}_lookup`,
      description: `Looks up record ${i} in the company inventory database and returns its current status, owner, location and the date it was last audited.`,
      parameters: {
        type: 'object',
        properties: {
          record_id: { type: 'string', description: 'The identifier of the record, as printed on its label.' },
          include_history: { type: 'boolean', description: 'Whether to return the full audit history as well.' },
          limit: { type: 'integer', description: 'At most this many history entries.' },
        },
        required: ['record_id'],
      },
    });
  }
  return out;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function main(): Promise<void> {
  const synth = arg('synth');
  const modelPath = synth !== undefined ? await writeSyntheticModel('/tmp/chatglm-bench', synth, 'q4_0', (s) => process.stderr.write(s + '\n')) : arg('model');
  const threads = arg('threads') !== undefined ? Number(arg('threads')) : undefined;
  const runs = Number(arg('runs') ?? '3');
  const toolCount = Number(arg('tools') ?? '9');
  const chat = await loadChatModel(modelPath, { backend: 'native', ...(threads !== undefined ? { threads } : {}) });
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'chatglm-bench-pc-'));
  const file = path.join(dir, 'tools.kvc');
  try {
    const system = chat.format.toolSystemMessage(tools(toolCount));
    // --prefix-tokens N keeps the first N ids of the tools prompt (a byte-level vocabulary, as the
    // synthetic files have, makes the full prompt many thousands of ids) and the last 24 (the
    // user message and the assistant tag), so the two conversations share exactly N ids.
    const prefixTokens = arg('prefix-tokens') !== undefined ? Number(arg('prefix-tokens')) : undefined;
    const prompt = (user: string): number[] => {
      const ids = chat.renderPrompt([system, { role: 'user', content: user }]).ids;
      return prefixTokens === undefined ? ids : [...ids.slice(0, prefixTokens), ...ids.slice(-24)];
    };
    const identity = await modelIdentity(modelPath ?? path.resolve('models/chatglm3-demo'), 'quantize=none');
    /** One conversation: restore (if a file is there), prefill, first token. */
    const conversation = async (user: string): Promise<{ ms: number; prefilled: number; restored: number; promptTokens: number }> => {
      const ids = prompt(user);
      const t0 = performance.now();
      const seq = new CachedSequence(chat.model.newCache(Math.min(chat.contextLength, 4096)));
      const r = await loadPromptCache(file, seq, identity);
      if (r.notice !== undefined) throw new Error(r.notice);
      const g = await generateAll(chat.model, ids, { greedy: true, maxNewTokens: 1, sequence: seq });
      const ms = performance.now() - t0;
      if (r.restored === 0) await savePromptCache(file, seq, identity, ids.length);
      return { ms, prefilled: g.usage.prefill_tokens, restored: r.restored, promptTokens: ids.length };
    };
    // Warm-up: page the weights in and start the threads.
    await conversation('Warm up.');
    const cold: number[] = [];
    const warm: number[] = [];
    let last: { first: Awaited<ReturnType<typeof conversation>>; second: Awaited<ReturnType<typeof conversation>> } | undefined;
    for (let i = 0; i < runs; i++) {
      await fs.rm(file, { force: true });
      const first = await conversation('What is the status of record A-1043?');
      const second = await conversation('Who owns record B-77, and where is it?');
      cold.push(first.ms);
      warm.push(second.ms);
      last = { first, second };
    }
    const fileBytes = (await fs.stat(file)).size;
    console.log(
      JSON.stringify({
        model: modelPath ?? 'bundled demo model',
        prompt_tokens_first: last!.first.promptTokens,
        prompt_tokens_second: last!.second.promptTokens,
        restored_tokens: last!.second.restored,
        prefilled_second: last!.second.prefilled,
        ttft_first_ms: { min: Math.min(...cold), median: median(cold), max: Math.max(...cold) },
        ttft_second_ms: { min: Math.min(...warm), median: median(warm), max: Math.max(...warm) },
        ratio_median: median(warm) / median(cold),
        file_bytes: fileBytes,
        loadavg: os.loadavg().map((x) => Number(x.toFixed(2))),
      }),
    );
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
    chat.dispose();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench-prompt-cache: ${(err as Error).message}\n`);
  process.exitCode = 1;
});

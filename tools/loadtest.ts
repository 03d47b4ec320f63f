/**
 * `npm run loadtest`: a bounded load test of `chatglm serve` on loopback with the bundled demo
 * model and the official openai client. Not a unit test; it prints figures and exits non-zero on a
 * wrong answer.
 *
 * 32 streaming chat requests with mixed prompts (greetings, tool calls, code requests, a long
 * system prompt) and output lengths, 16 in flight at a time, every 4th client disconnecting after
 * its first few chunks. Every completed response must equal the same request run alone (greedy,
 * one request at a time on the same server); the server must end with no busy slot, no queued
 * request and no queued step; the whole round runs twice and the memory after the second round
 * (after GC) must be back to the level after the first (nothing retained per request).
 *
 * Options: --slots N (default 8)  --requests N (32)  --concurrency N (16)  --backend native|reference
 */
import OpenAI from 'openai';
import { loadChatModel } from '../src/api.js';
import type { BackendName } from '../src/backend/select.js';
import { startServer } from '../src/server/server.js';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

const WEATHER = {
  type: 'function' as const,
  function: {
    name: 'get_current_weather',
    description: 'Get the current weather in a given city',
    parameters: { type: 'object', properties: { location: { type: 'string' } }, required: ['location'] },
  },
};

const QUESTIONS = [
  'Hello, who are you?',
  '你好',
  'Tell me about yourself.',
  "What's the weather like in Oslo?",
  'What is the weather in Berlin today?',
  'Compute the sum of the integers from 1 to 250.',
  'Plot y = sin(x) from 0 to 10.',
  'What can you do?',
];
const LONG_SYSTEM = 'You are a helpful assistant. Answer briefly and politely. '.repeat(12);

interface Outcome {
  text: string;
  toolCalls: string;
  finish: string | null;
  completionTokens: number;
  ttftMs: number;
  aborted: boolean;
}

function request(i: number): { params: OpenAI.ChatCompletionCreateParamsStreaming; abortAfter: number | undefined } {
  const q = QUESTIONS[i % QUESTIONS.length]!;
  const messages: OpenAI.ChatCompletionMessageParam[] = i % 3 === 2 ? [{ role: 'system', content: LONG_SYSTEM }, { role: 'user', content: q }] : [{ role: 'user', content: q }];
  const tools = /weather/.test(q) ? [WEATHER] : undefined;
  return {
    params: { model: 'chatglm3-demo', messages, ...(tools ? { tools } : {}), temperature: 0, max_tokens: 8 + ((i * 37) % 120), stream: true, stream_options: { include_usage: true } },
    abortAfter: i % 4 === 3 ? 2 + (i % 5) : undefined,
  };
}

async function run(client: OpenAI, i: number, abortable: boolean): Promise<Outcome> {
  const { params, abortAfter } = request(i);
  const ac = new AbortController();
  const t0 = performance.now();
  const stream = await client.chat.completions.create(params, { signal: ac.signal });
  const out: Outcome = { text: '', toolCalls: '', finish: null, completionTokens: 0, ttftMs: NaN, aborted: false };
  let chunks = 0;
  const dbg = process.env['LOADTEST_DEBUG'] !== undefined && abortable;
  for await (const c of stream) {
    if (dbg && i === Number(process.env['LOADTEST_DEBUG'])) console.error(`#${i}`, JSON.stringify(c).slice(0, 200));
    if (c.usage) out.completionTokens = c.usage.completion_tokens;
    const d = c.choices[0]?.delta;
    if (d === undefined) continue;
    if (Number.isNaN(out.ttftMs) && ((d.content ?? '') !== '' || d.tool_calls !== undefined)) out.ttftMs = performance.now() - t0;
    out.text += d.content ?? '';
    if (d.tool_calls) out.toolCalls += JSON.stringify(d.tool_calls.map((t) => [t.index, t.type, t.function]));
    out.finish = c.choices[0]!.finish_reason ?? out.finish;
    if (abortable && abortAfter !== undefined && ++chunks === abortAfter) {
      out.aborted = true;
      // Leave the loop too: the client's iterator can stall when the abort lands after the last byte arrived.
      ac.abort();
      break;
    }
  }
  return out;
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

async function settle(): Promise<number> {
  for (let i = 0; i < 3; i++) {
    (globalThis as { gc?: () => void }).gc?.();
    await new Promise((r) => setTimeout(r, 20));
  }
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

async function main(): Promise<void> {
  const slots = Number(arg('slots', '8'));
  const total = Number(arg('requests', '32'));
  const concurrency = Number(arg('concurrency', '16'));
  const backend = arg('backend', 'native') as BackendName;
  if ((globalThis as { gc?: () => void }).gc === undefined) console.error('loadtest: run with node --expose-gc for the memory check (npm run loadtest does)');
  const chat = await loadChatModel(undefined, { backend });
  const server = await startServer({ model: chat, port: 0, host: '127.0.0.1', parallel: slots, maxQueue: total });
  await server.whenReady();
  const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'none', maxRetries: 0, timeout: 60_000 });
  let failures = 0;
  const fail = (msg: string): void => {
    failures++;
    console.error(`FAIL ${msg}`);
  };
  try {
    // Each request alone, one at a time: the reference answers.
    const alone: Outcome[] = [];
    const aloneStart = performance.now();
    for (let i = 0; i < total; i++) {
      alone.push(await run(client, i, false));
      if (process.env["LOADTEST_DEBUG"]) console.error(`alone ${i}`, JSON.stringify(alone[i]));
    }
    const aloneMs = performance.now() - aloneStart;
    const aloneTokens = alone.reduce((n, o) => n + o.completionTokens, 0);
    const idle = await settle();
    const memory: number[] = [];
    const rounds: { wallMs: number; tokens: number; ttft: number[]; completed: number; aborted: number; width: number }[] = [];
    for (let round = 0; round < 2; round++) {
      const results: Outcome[] = new Array<Outcome>(total);
      let next = 0;
      const t0 = performance.now();
      const before = { ...server.pool!.scheduler.stats };
      const watchdog = process.env['LOADTEST_DEBUG']
        ? setInterval(() => {
            const p = server.pool!;
            console.error(`busy ${p.busyCount} queued ${p.queueDepth} steps ${p.scheduler.pending} lanes ${p.slots.map((s) => (s.lane.busy ? 'B' : '.')).join('')} done ${results.filter(Boolean).length} missing ${[...Array(total).keys()].filter((i) => results[i] === undefined && i < next).join(',')}`);
          }, 2000)
        : undefined;
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (next < total) {
            const i = next++;
            results[i] = await run(client, i, true);
          }
        }),
      );
      clearInterval(watchdog);
      const wallMs = performance.now() - t0;
      let tokens = 0;
      let completed = 0;
      let aborted = 0;
      const ttft: number[] = [];
      results.forEach((r, i) => {
        if (!Number.isNaN(r.ttftMs)) ttft.push(r.ttftMs);
        if (r.aborted) {
          aborted++;
          return;
        }
        completed++;
        tokens += r.completionTokens;
        const a = alone[i]!;
        if (r.text !== a.text || r.toolCalls !== a.toolCalls || r.finish !== a.finish || r.completionTokens !== a.completionTokens) {
          fail(`request ${i} differs from the same request alone:\n  batched: ${JSON.stringify(r)}\n  alone:   ${JSON.stringify(a)}`);
        }
      });
      const pool = server.pool!;
      for (let k = 0; k < 200 && pool.busyCount > 0; k++) await new Promise((r) => setTimeout(r, 10));
      if (pool.busyCount !== 0 || pool.queueDepth !== 0 || pool.scheduler.pending !== 0) fail(`after round ${round + 1}: ${pool.busyCount} busy slots, ${pool.queueDepth} queued, ${pool.scheduler.pending} queued steps`);
      memory.push(await settle());
      const after = server.pool!.scheduler.stats;
      rounds.push({ wallMs, tokens, ttft, completed, aborted, width: (after.sequences - before.sequences) / (after.ticks - before.ticks) });
    }
    const growth = memory[1]! - memory[0]!;
    if (growth > 4 * 1024 * 1024) fail(`memory grew by ${(growth / 1048576).toFixed(1)} MiB from round 1 to round 2`);
    console.log(`alone (one request at a time): ${aloneTokens} tokens in ${(aloneMs / 1000).toFixed(2)} s = ${((aloneTokens * 1000) / aloneMs).toFixed(0)} tokens/s`);
    for (const [k, r] of rounds.entries()) {
      console.log(
        `round ${k + 1}: ${r.completed} completed (all equal to alone: ${failures === 0 ? 'yes' : 'NO'}), ${r.aborted} disconnected; ` +
          `TTFT p50 ${percentile(r.ttft, 50).toFixed(0)} ms, p95 ${percentile(r.ttft, 95).toFixed(0)} ms; ` +
          `${r.tokens} tokens in ${(r.wallMs / 1000).toFixed(2)} s = ${((r.tokens * 1000) / r.wallMs).toFixed(0)} tokens/s aggregate; ${r.width.toFixed(2)} sequences per forward step`,
      );
    }
    console.log(`memory (heap + array buffers after GC): idle ${(idle / 1048576).toFixed(1)} MiB, after round 1 ${(memory[0]! / 1048576).toFixed(1)} MiB, after round 2 ${(memory[1]! / 1048576).toFixed(1)} MiB`);
    console.log(`${slots} slots, ${concurrency} clients, ${total} requests per round, backend ${backend}`);
  } finally {
    await server.close(1000);
    chat.dispose();
  }
  if (failures > 0) {
    console.error(`loadtest: ${failures} failure(s)`);
    process.exitCode = 1;
  } else {
    console.log('loadtest: ok');
  }
}

await main();

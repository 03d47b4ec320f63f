/**
 * Time to first token of a new tool conversation on the server when another idle slot already holds
 * the same tools system prompt (its K/V rows are copied, only the rest is prefilled) against the
 * same request on a server whose slots hold nothing it shares (the whole prompt is prefilled).
 *
 * Each run starts two servers (2 slots each, 127.0.0.1) and sends each one earlier request with a
 * long user message: with the tools prompt on the first server, without tools on the second. Then
 * the same new conversation goes to both; with max_tokens 1 its request time is its time to first
 * token (queueing is nil: the other slot is idle).
 *
 *   node dist/tools/bench-hot-prefix.js [--model PATH] [--tools 1] [--threads 1] [--runs 5]
 */
import { loadChatModel } from '../src/api.js';
import { startServer, type ChatGLMServer } from '../src/server/server.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function tools(count: number): unknown[] {
  return Array.from({ length: count }, (_, i) => ({
    type: 'function',
    function: {
      name: `tool_${i}_lookup`,
      description: `Looks up record ${i} in the company inventory database and returns its current status, owner and location.`,
      parameters: { type: 'object', properties: { record_id: { type: 'string', description: 'The identifier of the record.' } }, required: ['record_id'] },
    },
  }));
}

interface Usage {
  prompt_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
}

async function ask(s: ChatGLMServer, model: string, content: string, withTools: unknown[] | undefined): Promise<{ ms: number; usage: Usage }> {
  const t0 = performance.now();
  const res = await fetch(`${s.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, messages: [{ role: 'user', content }], ...(withTools ? { tools: withTools } : {}), temperature: 0, max_tokens: 1 }),
  });
  const body = (await res.json()) as { usage: Usage };
  if (res.status !== 200) throw new Error(JSON.stringify(body));
  return { ms: performance.now() - t0, usage: body.usage };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const threads = Number(arg('threads') ?? 1);
  const runs = Number(arg('runs') ?? 5);
  const defs = tools(Number(arg('tools') ?? 1));
  const modelPath = arg('model');
  const chat = await loadChatModel(modelPath, { threads });
  const long = 'Here is a long report about the inventory, the audits and the owners of every record. '.repeat(16);
  const copied: number[] = [];
  const cold: number[] = [];
  let detail = '';
  try {
    for (let r = 0; r < runs; r++) {
      const question = `Where is record ${r}?`;
      const hot = await startServer({ model: chat, port: 0, parallel: 2 });
      await hot.whenReady();
      await ask(hot, chat.name, long, defs);
      const a = await ask(hot, chat.name, question, defs);
      // The copy counter tells a copied prefix from one the slot choice reused (then this is 0).
      const shared = /^chatglm_prompt_tokens_shared_total (\d+)$/m.exec(await (await fetch(`${hot.url}/metrics`)).text())?.[1];
      await hot.close(0);
      const plain = await startServer({ model: chat, port: 0, parallel: 2 });
      await plain.whenReady();
      await ask(plain, chat.name, long, undefined);
      const b = await ask(plain, chat.name, question, defs);
      await plain.close(0);
      copied.push(a.ms);
      cold.push(b.ms);
      detail = `prompt ${a.usage.prompt_tokens} tokens: ${a.usage.prompt_tokens_details.cached_tokens} cached (${shared} copied from the other slot) vs ${b.usage.prompt_tokens_details.cached_tokens} cached`;
    }
  } finally {
    chat.dispose();
  }
  console.log(`${chat.name}, ${threads} thread(s), ${runs} runs; ${detail}`);
  console.log(`TTFT of the new conversation, median: prefix copied ${median(copied).toFixed(1)} ms, whole prompt prefilled ${median(cold).toFixed(1)} ms`);
  console.log(`  copied: ${copied.map((x) => x.toFixed(1)).join(' ')}; prefilled: ${cold.map((x) => x.toFixed(1)).join(' ')}`);
}

await main();

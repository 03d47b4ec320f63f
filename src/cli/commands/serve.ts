/**
 * `chatglm serve`: the OpenAI-compatible server (src/server). Listens at once (GET /health is 503
 * until the model has loaded), prints the URL on stdout when ready, and on SIGTERM or SIGINT
 * stops accepting requests, lets in-flight ones finish (up to --drain seconds), and exits.
 */
import type { Command } from 'commander';
import { ChatGLMError } from '../../errors.js';
import { loadChatModel } from '../../api.js';
import { startServer } from '../../server/server.js';
import { resolveModelPath } from '../default-model.js';
import { addModelOptions, loadOptionsFromCli, type ModelCliOptions } from './generate.js';
import { toolsFromCli, type ToolCliOptions } from '../agent-tools.js';
import { addInterpreterOptions, interpreterFromCli, type InterpreterCliOptions } from '../interpreter-cli.js';
import type { AgentRouteOptions } from '../../server/agent-route.js';

interface ServeCliOptions extends ModelCliOptions, ToolCliOptions, InterpreterCliOptions {
  host: string;
  port: string;
  parallel: string;
  ctxSize?: string;
  apiKey?: string;
  cors?: string;
  queue: string;
  drain: string;
}

function int(value: string, flag: string, min: number): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isSafeInteger(n) || n < min) throw new ChatGLMError('BAD_ARGUMENT', `${flag} must be an integer >= ${min}, got ${JSON.stringify(value)}`);
  return n;
}

export function register(program: Command): void {
  const cmd = program.command('serve').description('an OpenAI-compatible HTTP server with continuous batching (POST /v1/chat/completions, /v1/completions; GET /v1/models, /health, /metrics)');
  addModelOptions(cmd);
  cmd
    .option('--host <addr>', 'address to bind (only loopback unless you say otherwise)', '127.0.0.1')
    .option('--port <n>', 'TCP port (0 = any free one)', '8000')
    .option('--parallel <n>', 'slots: requests generated together, one batched forward step per token', '4')
    .option('--ctx-size <n>', 'positions per slot, prompt + reply (default: --context or the model seq_length)')
    .option('--api-key <key>', 'require "Authorization: Bearer KEY" (default: $CHATGLM_API_KEY, else no key)')
    .option('--cors <origin>', 'send Access-Control-Allow-Origin: ORIGIN (e.g. "*") so browser pages can call the server')
    .option('--queue <n>', 'requests that may wait for a slot; more get 503 with Retry-After', '64')
    .option('--drain <seconds>', 'on SIGTERM, how long in-flight requests may finish before they are cancelled', '10')
    .option('--tools-module <file>', 'server-side tools for POST /chatglm/agent and the web page (an ES module exporting an array of defineTool tools)')
    .option('--builtin-tools <names>', 'built-in server-side tools, comma-separated: calculator,get_current_time,random_number_generator');
  addInterpreterOptions(cmd);
  cmd
    .action(async (opts: ServeCliOptions) => {
      const loadOptions = loadOptionsFromCli(opts);
      const apiKey = opts.apiKey ?? (process.env['CHATGLM_API_KEY'] || undefined);
      const modelPath = resolveModelPath(opts.model);
      const agent = await agentFromCli(opts);
      const loading = loadChatModel(modelPath, loadOptions);
      // The server owns no rejection handler until it is constructed: keep an early failure from crashing the process.
      loading.catch(() => {});
      const server = await startServer({
        model: loading,
        host: opts.host,
        port: int(opts.port, '--port', 0),
        parallel: int(opts.parallel, '--parallel', 1),
        maxQueue: int(opts.queue, '--queue', 0),
        ...(opts.ctxSize !== undefined ? { ctxSize: int(opts.ctxSize, '--ctx-size', 2) } : {}),
        ...(apiKey !== undefined ? { apiKey } : {}),
        ...(opts.cors !== undefined ? { cors: opts.cors } : {}),
        ...(agent !== undefined ? { agent } : {}),
      });
      process.stderr.write(`chatglm serve: listening on ${server.url}, loading ${modelPath}\n`);
      const stop = new Promise<string>((resolve) => {
        process.once('SIGTERM', () => resolve('SIGTERM'));
        process.once('SIGINT', () => resolve('SIGINT'));
      });
      try {
        await server.whenReady();
      } catch (err) {
        await server.close(0);
        throw err;
      }
      const chat = await loading;
      const pool = server.pool!;
      process.stdout.write(`chatglm serve: ready at ${server.url}/v1 (model "${chat.name}", ${pool.slots.length} slots x ${pool.contextSize} positions)\n`);
      const signal = await stop;
      process.stderr.write(`chatglm serve: ${signal}: finishing in-flight requests\n`);
      await server.close(int(opts.drain, '--drain', 0) * 1000);
      chat.dispose();
      process.stderr.write('chatglm serve: stopped\n');
    });
}

/** The server-side tools and interpreter the flags ask for (checked now: a missing sandbox fails at start). */
async function agentFromCli(opts: ServeCliOptions): Promise<AgentRouteOptions | undefined> {
  const tools = await toolsFromCli(opts);
  const probe = await interpreterFromCli(opts);
  if (probe === undefined) return tools.length > 0 ? { tools } : undefined;
  await probe.close();
  return { tools, createInterpreter: async () => (await interpreterFromCli(opts))! };
}

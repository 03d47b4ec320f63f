/**
 * `chatglm agent`: runs the agent loop on one conversation: the model calls tools, the tools run,
 * their results go back, until the model answers. Against the local model, or a remote
 * OpenAI-compatible endpoint with --endpoint. With --json it prints {"messages": [...]}, every new
 * message in OpenAI shape; without, each step as it happens.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { ChatGLMError } from '../../errors.js';
import type { ChatCompletionMessageParam } from '../../api.js';
import { loadChatModelForCli } from '../load-model.js';
import { runAgent, type AgentEvent, type AgentMessage, type RunAgentOptions } from '../../agent/loop.js';
import { remoteCompleter } from '../../agent/remote.js';
import type { CodeInterpreterLike } from '../../agent/interpreter-types.js';
import { planToolChoice, type ChatCompletionToolChoice } from '../../chat/tool-choice.js';
import { resolveModelPath } from '../default-model.js';
import { addPromptCacheOption, CliPromptCache, type PromptCacheCliOption } from '../prompt-cache-cli.js';
import { toolResultLine, toolsFromCli, type ToolCliOptions } from '../agent-tools.js';
import { addInterpreterOptions, interpreterFromCli, type InterpreterCliOptions } from '../interpreter-cli.js';
import { addModelOptions, addSamplingOptions, loadOptionsFromCli, samplingFromCli, type ModelCliOptions, type SamplingCliOptions } from './generate.js';
import { readJsonFile } from './prompt.js';

export interface AgentCliOptions extends ModelCliOptions, SamplingCliOptions, ToolCliOptions, PromptCacheCliOption {
  messages?: string;
  prompt?: string;
  maxRounds?: string;
  toolTimeout?: string;
  toolChoice?: string;
  parallelTools?: boolean;
  endpoint?: string;
  apiKey?: string;
  remoteModel?: string;
  outDir?: string;
  json?: boolean;
}

/** What the CLI runner can be given besides the flags (the code interpreter, output streams). */
export interface AgentCliContext {
  interpreter?: CodeInterpreterLike;
  stdout?: NodeJS.WritableStream;
  stderr?: NodeJS.WritableStream;
}

export function register(program: Command): void {
  const cmd = program.command('agent').description('run tools for the model until it answers: one conversation from --messages FILE.json or --prompt TEXT');
  addModelOptions(cmd);
  addSamplingOptions(cmd);
  addPromptCacheOption(cmd);
  cmd
    .option('--messages <file>', 'JSON array of messages (OpenAI shape) ending with the one to answer')
    .option('--prompt <text>', 'a single user message (instead of --messages)')
    .option('--tools-module <file>', 'ES module whose default export is an array of defineTool(...) tools')
    .option('--builtin-tools <names>', 'comma-separated: random_number_generator,calculator,get_current_time')
    .option('--max-rounds <n>', 'most model replies before giving up (default 5)')
    .option('--tool-timeout <ms>', 'time limit per tool run in milliseconds (default 30000)')
    .option('--tool-choice <choice>', 'auto | none | required | NAME (force that tool in the first reply)')
    .option('--parallel-tools', 'run several calls of one reply at the same time')
    .option('--endpoint <url>', 'use a remote OpenAI-compatible endpoint (e.g. http://127.0.0.1:8000/v1) instead of a local model')
    .option('--api-key <key>', 'API key for --endpoint')
    .option('--remote-model <name>', 'model name sent to --endpoint (default: the first one it lists)')
    .option('--out-dir <dir>', 'write images from the code interpreter here (named in the --json output)')
    .option('--json', 'print {"messages": [...]}: every new message in OpenAI shape');
  addInterpreterOptions(cmd);
  cmd.action(async (opts: AgentCliOptions & InterpreterCliOptions) => {
    // The sandbox starts before the model loads, so a machine without it fails at once.
    const interpreter = await interpreterFromCli(opts);
    try {
      await runAgentCli(opts, interpreter !== undefined ? { interpreter } : {});
    } finally {
      await interpreter?.close();
    }
  });
}

function positiveInt(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 1) throw new ChatGLMError('BAD_ARGUMENT', `${flag} must be a positive integer, got ${JSON.stringify(text)}`);
  return n;
}

function toolChoiceFromCli(text: string | undefined): ChatCompletionToolChoice | undefined {
  if (text === undefined) return undefined;
  if (text === 'auto' || text === 'none' || text === 'required') return text;
  return { type: 'function', function: { name: text } };
}

async function messagesFromCli(opts: AgentCliOptions): Promise<ChatCompletionMessageParam[]> {
  if (opts.messages !== undefined && opts.prompt !== undefined) throw new ChatGLMError('BAD_ARGUMENT', 'give --messages FILE or --prompt TEXT, not both');
  if (opts.prompt !== undefined) return [{ role: 'user', content: opts.prompt }];
  if (opts.messages === undefined) throw new ChatGLMError('BAD_ARGUMENT', 'agent needs --messages FILE.json or --prompt TEXT');
  const messages = await readJsonFile(opts.messages, 'messages');
  if (!Array.isArray(messages) || messages.length === 0) {
    throw new ChatGLMError('BAD_ARGUMENT', `${opts.messages}: expected a non-empty JSON array of messages like [{"role": "user", "content": "Hi"}]`);
  }
  return messages as ChatCompletionMessageParam[];
}

/** The whole command; `context.interpreter` runs ChatGLM3 code blocks when given. */
export async function runAgentCli(opts: AgentCliOptions, context: AgentCliContext = {}): Promise<void> {
  const out = context.stdout ?? process.stdout;
  const err = context.stderr ?? process.stderr;
  const messages = await messagesFromCli(opts);
  const tools = await toolsFromCli(opts);
  const sampling = samplingFromCli(opts);
  if (sampling.topK !== undefined || sampling.repetitionPenalty !== undefined) {
    throw new ChatGLMError('BAD_ARGUMENT', 'agent takes --temperature, --top-p, --greedy, --seed and --max-new-tokens (not --top-k or --repetition-penalty)');
  }
  const maxRounds = positiveInt(opts.maxRounds, '--max-rounds');
  const toolTimeoutMs = positiveInt(opts.toolTimeout, '--tool-timeout');
  const toolChoice = toolChoiceFromCli(opts.toolChoice);
  // Before a model is loaded: "required" and unknown names fail at once.
  planToolChoice(toolChoice, tools.length > 0 ? tools.map((t) => t.name) : undefined);
  if (opts.endpoint !== undefined && opts.model !== undefined) throw new ChatGLMError('BAD_ARGUMENT', '--endpoint runs a remote model; leave out --model');
  if (opts.endpoint !== undefined && opts.promptCache !== undefined) throw new ChatGLMError('BAD_ARGUMENT', '--prompt-cache keeps a local model\'s KV cache; leave it out with --endpoint');

  const base: RunAgentOptions = {
    messages,
    tools,
    ...(toolChoice !== undefined ? { toolChoice } : {}),
    ...(context.interpreter !== undefined ? { interpreter: context.interpreter } : {}),
    ...(maxRounds !== undefined ? { maxRounds } : {}),
    ...(toolTimeoutMs !== undefined ? { toolTimeoutMs } : {}),
    ...(opts.parallelTools === true ? { parallelToolCalls: true } : {}),
    ...(sampling.greedy === true ? { temperature: 0 } : {}),
    ...(sampling.temperature !== undefined ? { temperature: sampling.temperature } : {}),
    ...(sampling.topP !== undefined ? { top_p: sampling.topP } : {}),
    ...(sampling.seed !== undefined ? { seed: sampling.seed } : {}),
    ...(sampling.maxNewTokens !== undefined ? { max_tokens: sampling.maxNewTokens } : {}),
  };
  if (opts.endpoint !== undefined) {
    const completer = remoteCompleter({
      endpoint: opts.endpoint,
      ...(opts.apiKey !== undefined ? { apiKey: opts.apiKey } : {}),
      ...(opts.remoteModel !== undefined ? { model: opts.remoteModel } : {}),
    });
    await printRun(runAgent({ ...base, completer }), opts, out, err);
    return;
  }
  const model = await loadChatModelForCli(resolveModelPath(opts.model), loadOptionsFromCli(opts));
  try {
    const cache =
      opts.promptCache !== undefined
        ? await CliPromptCache.open(opts.promptCache, resolveModelPath(opts.model), loadOptionsFromCli(opts), model.model, model.contextLength, (line) => err.write(line + '\n'))
        : undefined;
    if (cache === undefined) {
      await printRun(runAgent({ ...base, model }), opts, out, err);
    } else {
      // The rounds share the model's conversation cache; the file keeps the first round's prompt.
      model.useSequence(cache.sequence);
      let firstPrompt: number | undefined;
      async function* watch(run: AsyncIterable<AgentEvent>): AsyncGenerator<AgentEvent> {
        for await (const ev of run) {
          if (ev.type === 'usage' && firstPrompt === undefined) firstPrompt = ev.usage.prompt_tokens;
          yield ev;
        }
      }
      await printRun(watch(runAgent({ ...base, model })), opts, out, err);
      if (firstPrompt !== undefined) await cache.saveFirst(firstPrompt);
    }
  } finally {
    model.dispose();
  }
}

async function printRun(run: AsyncIterable<AgentEvent>, opts: AgentCliOptions, out: NodeJS.WritableStream, err: NodeJS.WritableStream): Promise<void> {
  const json = opts.json === true;
  let midLine = false;
  const endLine = (): void => {
    if (midLine) out.write('\n');
    midLine = false;
  };
  for await (const ev of run) {
    switch (ev.type) {
      case 'text':
        if (!json) {
          out.write(ev.delta);
          midLine = !ev.delta.endsWith('\n');
        }
        break;
      case 'tool_result':
        if (!json) {
          endLine();
          out.write(toolResultLine(ev) + '\n');
        }
        break;
      case 'done': {
        endLine();
        const messages = await withImageFiles(ev.messages, opts.outDir, err);
        if (json) out.write(JSON.stringify({ messages }) + '\n');
        if (ev.stopReason === 'max_rounds') err.write(`chatglm: stopped after ${ev.rounds} rounds with the model still calling tools (raise --max-rounds)\n`);
        if (ev.stopReason === 'aborted') err.write('chatglm: stopped\n');
        break;
      }
      default:
        break;
    }
  }
}

type JsonMessage = Omit<AgentMessage, 'images'> & { images?: string[] };

/** Interpreter images go to --out-dir as PNG files; the JSON names them instead of carrying bytes. */
async function withImageFiles(messages: AgentMessage[], outDir: string | undefined, err: NodeJS.WritableStream): Promise<JsonMessage[]> {
  const result: JsonMessage[] = [];
  let unsaved = 0;
  for (const m of messages) {
    if (m.role !== 'tool') {
      result.push(m);
      continue;
    }
    const { images, ...rest } = m;
    if (images === undefined || images.length === 0) {
      result.push(rest);
      continue;
    }
    if (outDir === undefined) {
      unsaved += images.length;
      result.push(rest);
      continue;
    }
    await mkdir(outDir, { recursive: true });
    const names: string[] = [];
    for (let i = 0; i < images.length; i++) {
      // The call id comes from the model or server: keep only safe file-name characters.
      const name = `${m.tool_call_id.replace(/[^A-Za-z0-9_-]/g, '_')}-${i + 1}.png`;
      await writeFile(path.join(outDir, name), images[i]!.data);
      names.push(name);
    }
    result.push({ ...rest, images: names });
  }
  if (unsaved > 0) err.write(`chatglm: ${unsaved} image(s) from the code interpreter not saved; pass --out-dir DIR\n`);
  return result;
}

/**
 * The interactive `chat` with tools that run by themselves (--tools-module, --builtin-tools): each
 * user message goes through the agent loop, calls are shown as `[tool] name {args} -> result`, and
 * --confirm-tools asks before each run. Commands: /reset, /exit. Ctrl-C stops the answer or the
 * tool being run, not the program.
 */
import readline from 'node:readline';
import type { Command } from 'commander';
import type { ChatCompletionMessageParam, ChatModel } from '../api.js';
import { runAgent, type AgentToolCall, type RunAgentOptions } from '../agent/loop.js';
import type { CodeInterpreterLike } from '../agent/interpreter-types.js';
import { ChatGLMError } from '../errors.js';
import { toolResultLine, toolsFromCli, type ToolCliOptions } from './agent-tools.js';
import { addInterpreterOptions, DEFAULT_CHAT_OUT_DIR, interpreterRunText, type InterpreterCliOptions } from './interpreter-cli.js';

export interface ToolChatCliOptions extends ToolCliOptions, InterpreterCliOptions {
  confirmTools?: boolean;
  outDir?: string;
  system?: string;
  tools?: string;
}

export function addToolChatOptions(cmd: Command): Command {
  addInterpreterOptions(cmd);
  return (
    cmd
      .option('--out-dir <dir>', `with --interpreter: where plots are saved as PNG files (default ./${DEFAULT_CHAT_OUT_DIR}/)`)
      .option('--tools-module <file>', 'run tools from this ES module (default export: an array of defineTool(...) tools)')
      .option('--builtin-tools <names>', 'run built-in tools: random_number_generator,calculator,get_current_time')
      .option('--confirm-tools', 'with --tools-module / --builtin-tools: ask before running each tool call')
      // Checks the combination before the model is loaded.
      .hook('preAction', (command) => {
        wantsToolChat(command.opts());
      })
  );
}

/** Whether the flags ask for the tool-running chat (they only apply to the interactive chat). */
export function wantsToolChat(opts: ToolChatCliOptions & { messages?: string }): boolean {
  const wanted = opts.toolsModule !== undefined || opts.builtinTools !== undefined || opts.interpreter === true;
  if (wanted && opts.messages !== undefined) {
    throw new ChatGLMError('BAD_ARGUMENT', 'to run tools or code on one conversation from a file, use: chatglm agent --messages FILE.json --tools-module M.mjs (or --interpreter)');
  }
  if (opts.outDir !== undefined && opts.interpreter !== true) throw new ChatGLMError('BAD_ARGUMENT', '--out-dir needs --interpreter');
  if (!wanted && opts.confirmTools === true) throw new ChatGLMError('BAD_ARGUMENT', '--confirm-tools needs --tools-module or --builtin-tools');
  return wanted;
}

/** Sampling flags as the chat command parses them (samplingFromCli). */
export interface ToolChatSampling {
  greedy?: boolean;
  temperature?: number;
  topP?: number;
  topK?: number;
  repetitionPenalty?: number;
  seed?: number;
  maxNewTokens?: number;
}

export async function toolChat(
  model: ChatModel,
  opts: ToolChatCliOptions,
  sampling: ToolChatSampling,
  extra: { interpreter?: CodeInterpreterLike; input?: NodeJS.ReadableStream; output?: NodeJS.WritableStream } = {},
): Promise<void> {
  if (opts.tools !== undefined) throw new ChatGLMError('BAD_ARGUMENT', '--tools (definitions only, you type the results) cannot be combined with --tools-module / --builtin-tools');
  const tools = await toolsFromCli(opts);
  const input = extra.input ?? process.stdin;
  const out = extra.output ?? process.stdout;
  const tty = (input as { isTTY?: boolean }).isTTY === true;
  const rl = readline.createInterface({ input, output: out, terminal: tty });
  const lines = new LineQueue(rl);
  let history: ChatCompletionMessageParam[] = [];
  let answering: AbortController | undefined;
  const onInterrupt = (): void => {
    if (answering !== undefined) answering.abort();
    else rl.close();
  };
  rl.on('SIGINT', onInterrupt);
  process.on('SIGINT', onInterrupt);

  const confirm = async (call: AgentToolCall, { signal }: { signal?: AbortSignal }): Promise<boolean> => {
    out.write(`[tool] run ${call.name} ${call.arguments}? [y/N] `);
    const answer = await lines.next(signal);
    return answer !== undefined && /^y(es)?$/i.test(answer.trim());
  };
  const names = [...tools.map((t) => t.name), ...(extra.interpreter !== undefined ? ['code interpreter'] : [])];
  process.stderr.write(`chatglm: chatting with ${model.name}, tools: ${names.join(', ')}. Commands: /reset, /exit. Ctrl-C stops an answer.\n`);
  const outDir = opts.outDir ?? DEFAULT_CHAT_OUT_DIR;
  let runs = 0;
  const prompt = (): void => {
    if (tty) out.write('you> ');
  };
  prompt();
  try {
    for (;;) {
      const raw = await lines.next();
      if (raw === undefined) break;
      const line = raw.trim();
      if (line === '/exit' || line === '/quit') break;
      if (line === '/reset') {
        history = [];
        out.write('(conversation cleared)\n');
      } else if (line !== '') {
        const user: ChatCompletionMessageParam = { role: 'user', content: raw };
        const system: ChatCompletionMessageParam[] = opts.system !== undefined && opts.system !== '' ? [{ role: 'system', content: opts.system }] : [];
        answering = new AbortController();
        const run: RunAgentOptions = {
          model,
          messages: [...system, ...history, user],
          tools,
          signal: answering.signal,
          ...(sampling.greedy === true ? { temperature: 0 } : {}),
          ...(sampling.temperature !== undefined ? { temperature: sampling.temperature } : {}),
          ...(sampling.topP !== undefined ? { top_p: sampling.topP } : {}),
          ...(sampling.seed !== undefined ? { seed: sampling.seed } : {}),
          ...(sampling.maxNewTokens !== undefined ? { max_tokens: sampling.maxNewTokens } : {}),
          ...(opts.confirmTools === true ? { confirm } : {}),
          ...(extra.interpreter !== undefined ? { interpreter: extra.interpreter } : {}),
        };
        let midLine = false;
        try {
          for await (const ev of runAgent(run)) {
            if (ev.type === 'text') {
              out.write(ev.delta);
              midLine = !ev.delta.endsWith('\n');
            } else if (ev.type === 'tool_result') {
              if (midLine) out.write('\n');
              midLine = false;
              const codeRun = extra.interpreter !== undefined ? await interpreterRunText(ev, outDir, `plot-${Date.now()}-${++runs}`) : undefined;
              out.write((codeRun ?? toolResultLine(ev)) + '\n');
            } else if (ev.type === 'done') {
              if (midLine) out.write('\n');
              midLine = false;
              if (ev.stopReason === 'aborted') out.write('[stopped]\n');
              if (ev.stopReason === 'max_rounds') out.write(`[stopped after ${ev.rounds} rounds of tool calls]\n`);
              // Keep what was completed, so the next message continues this conversation.
              history.push(user, ...(ev.messages as ChatCompletionMessageParam[]));
            }
          }
        } catch (err) {
          // A message the model cannot take must not end the conversation.
          if (!(err instanceof ChatGLMError)) throw err;
          if (midLine) out.write('\n');
          process.stderr.write(`chatglm: ${err.message}\n`);
        } finally {
          answering = undefined;
        }
      }
      prompt();
    }
  } finally {
    process.off('SIGINT', onInterrupt);
    rl.close();
  }
}

/** Lines from readline, taken one at a time (the chat loop and the confirm question share them). */
class LineQueue {
  private readonly queued: string[] = [];
  private waiting: ((line: string | undefined) => void) | undefined;
  private closed = false;

  constructor(rl: readline.Interface) {
    rl.on('line', (line) => {
      if (this.waiting !== undefined) {
        const w = this.waiting;
        this.waiting = undefined;
        w(line);
      } else {
        this.queued.push(line);
      }
    });
    rl.on('close', () => {
      this.closed = true;
      this.waiting?.(undefined);
      this.waiting = undefined;
    });
  }

  /** The next line; undefined at the end of input, or when `signal` aborts (the line is then left for the next caller). */
  next(signal?: AbortSignal): Promise<string | undefined> {
    const line = this.queued.shift();
    if (line !== undefined) return Promise.resolve(line);
    if (this.closed || signal?.aborted) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const onAbort = (): void => {
        if (this.waiting === waiter) this.waiting = undefined;
        resolve(undefined);
      };
      const waiter = (l: string | undefined): void => {
        signal?.removeEventListener('abort', onAbort);
        resolve(l);
      };
      this.waiting = waiter;
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}

/**
 * `chatglm chat`: an interactive terminal chat (streaming; /help lists the commands, see
 * ../interactive-commands.ts; Ctrl-C stops the answer being written, not the program), or with
 * --messages FILE.json one non-interactive turn whose parsed assistant message is printed (as JSON
 * with --json).
 */
import readline from 'node:readline';
import type { Command } from 'commander';
import { ChatGLMError } from '../../errors.js';
import { type ChatCompletionMessageParam, type ChatCompletionRequest, type ChatModel } from '../../api.js';
import type { JsonValue } from '../../chat/python-literal.js';
import type { ChatMessage } from '../../chat/types.js';
import type { ChatReply, ReplyOptions } from '../../chat/session.js';
import { ChatSession } from '../../chat/session.js';
import { addPromptCacheOption, CliPromptCache, type PromptCacheCliOption } from '../prompt-cache-cli.js';
import { resolveModelPath } from '../default-model.js';
import { addModelOptions, addSamplingOptions, loadOptionsFromCli, samplingFromCli, type ModelCliOptions, type SamplingCliOptions } from './generate.js';
import { readJsonFile } from './prompt.js';
import { requestToChatMessages, toolSystemMessages } from '../../api/request-messages.js';
import { validateRequestMessages } from '../../api/validate-request.js';
import { loadChatModelForCli } from '../load-model.js';
import { usageInWords } from '../usage-words.js';
import { CHAT_HELP, ChatInputReader } from '../interactive-commands.js';
import { addToolChatOptions, toolChat, wantsToolChat } from '../chat-tools.js';
import { interpreterFromCli, type InterpreterCliOptions } from '../interpreter-cli.js';
import type { ConstraintRequest } from '../../api-constraints.js';
import type { ConstraintFactory } from '../../generate/logits-constraint.js';
import { DEFAULT_TEMPERATURE, defaultReplyTokens } from '../../generate/defaults.js';

interface ChatCliOptions extends ModelCliOptions, SamplingCliOptions, InterpreterCliOptions, PromptCacheCliOption {
  messages?: string;
  tools?: string;
  system?: string;
  json?: boolean;
  stats?: boolean;
  verbose?: boolean;
  jsonSchema?: string;
  constrain?: boolean;
}

export function register(program: Command): void {
  const cmd = program.command('chat').description('chat with a model: interactive, or one turn from --messages FILE.json');
  addModelOptions(cmd);
  addSamplingOptions(cmd);
  addToolChatOptions(cmd);
  addPromptCacheOption(cmd);
  cmd
    .option('--messages <file>', 'JSON array of messages: answer the conversation once and exit')
    .option('--tools <file>', 'JSON tool list (OpenAI style or ChatGLM3 style) for the system prompt')
    .option('--system <text>', 'system prompt for the interactive chat (kept with --tools: the tools go with it)')
    .option('--json', 'with --messages: print the assistant message {role, content, tool_calls?} as JSON')
    .option('--stats', 'print token counts and speed to stderr after each answer, as JSON')
    .option('--verbose', 'print token counts and speed to stderr after each answer, in words')
    .option('--json-schema <file>', 'answer with JSON that satisfies this JSON Schema (constrained decoding)')
    .option('--no-constrain', 'do not constrain tool calls to the declared tools and their schemas')
    .action(async (opts: ChatCliOptions) => {
      const sampling = samplingFromCli(opts);
      const loadOptions = loadOptionsFromCli(opts);
      const tools = opts.tools !== undefined ? ((await readJsonFile(opts.tools, 'tools')) as JsonValue) : undefined;
      const messages = opts.messages !== undefined ? await readJsonFile(opts.messages, 'messages') : undefined;
      if (messages !== undefined && !Array.isArray(messages)) {
        throw new ChatGLMError('BAD_ARGUMENT', `${opts.messages}: expected a JSON array of messages like [{"role": "user", "content": "Hi"}]`);
      }
      if (messages !== undefined) validateRequestMessages(messages, opts.messages!);
      const schema = opts.jsonSchema !== undefined ? ((await readJsonFile(opts.jsonSchema, 'JSON schema')) as JsonValue) : undefined;
      const chat = await loadChatModelForCli(resolveModelPath(opts.model), loadOptions);
      try {
        const constraint: ConstraintRequest = {
          ...(tools !== undefined ? { tools } : {}),
          ...(schema !== undefined ? { response_format: { type: 'json_schema', json_schema: { name: 'cli', schema } } } : {}),
          constrain: opts.constrain !== false,
        };
        if (opts.promptCache !== undefined && messages === undefined && wantsToolChat(opts)) {
          throw new ChatGLMError('BAD_ARGUMENT', '--prompt-cache works with the interactive chat (with or without --tools), --messages, generate and agent, not with tool running in chat');
        }
        if (messages !== undefined) {
          // The conversion createChatCompletion runs, here so that its errors name the file.
          requestToChatMessages(messages as ChatCompletionMessageParam[], tools, chat.format, undefined, opts.messages);
          const cache =
            opts.promptCache !== undefined
              ? await CliPromptCache.open(opts.promptCache, resolveModelPath(opts.model), loadOptions, chat.model, chat.contextLength, (line) => process.stderr.write(line + '\n'))
              : undefined;
          if (cache !== undefined) chat.useSequence(cache.sequence);
          const promptTokens = await oneTurn(chat, messages as ChatCompletionMessageParam[], tools, sampling, opts, constraint);
          await cache?.saveFirst(promptTokens);
        } else if (wantsToolChat(opts)) {
          if (schema !== undefined) throw new ChatGLMError('BAD_ARGUMENT', '--json-schema applies to plain chat, not to --tools-module / --builtin-tools / --interpreter');
          const interpreter = await interpreterFromCli(opts);
          try {
            await toolChat(chat, opts, sampling, interpreter !== undefined ? { interpreter } : {});
          } finally {
            await interpreter?.close();
          }
        } else {
          await interactive(chat, tools, sampling, opts, await chat.buildConstraint(constraint));
        }
      } finally {
        chat.dispose();
      }
    });
}

type Sampling = ReturnType<typeof samplingFromCli>;

async function oneTurn(
  chat: ChatModel,
  messages: ChatCompletionMessageParam[],
  tools: JsonValue | undefined,
  s: Sampling,
  opts: ChatCliOptions,
  constraint: ConstraintRequest,
): Promise<number> {
  const request: ChatCompletionRequest = {
    ...(constraint.response_format !== undefined ? { response_format: constraint.response_format } : {}),
    ...(constraint.constrain === false ? { constrain: false } : {}),
    messages,
    temperature: s.greedy === true ? 0 : (s.temperature ?? DEFAULT_TEMPERATURE),
    ...(s.topP !== undefined ? { top_p: s.topP } : {}),
    ...(s.topK !== undefined ? { top_k: s.topK } : {}),
    ...(s.repetitionPenalty !== undefined ? { repetition_penalty: s.repetitionPenalty } : {}),
    ...(s.seed !== undefined ? { seed: s.seed } : {}),
    ...(s.maxNewTokens !== undefined ? { max_tokens: s.maxNewTokens } : {}),
    ...(tools !== undefined ? { tools } : {}),
  };
  const t0 = performance.now();
  const r = await chat.createChatCompletion({ ...request, stream: false });
  const m = r.choices[0].message;
  if (opts.json === true) {
    process.stdout.write(JSON.stringify(m) + '\n');
  } else if (m.tool_calls !== undefined) {
    if (m.content !== null) process.stdout.write(m.content + '\n');
    for (const c of m.tool_calls) process.stdout.write(`[tool call] ${c.function.name} ${c.function.arguments}\n`);
  } else {
    process.stdout.write((m.content ?? '') + '\n');
    if (m.invalid_tool_call !== undefined) process.stderr.write(`chatglm: the model wrote a tool call that does not parse: ${m.invalid_tool_call.error}\n`);
  }
  if (opts.json !== true && r.choices[0].finish_reason === 'length') process.stdout.write('[stopped: length]\n');
  if (opts.stats === true) process.stderr.write(JSON.stringify({ finish_reason: r.choices[0].finish_reason, seed: r.seed, usage: r.usage }) + '\n');
  if (opts.verbose === true) process.stderr.write(usageInWords(r.usage, performance.now() - t0, r.choices[0].finish_reason));
  return r.usage.prompt_tokens;
}

/** The interactive chat's reply options from the sampling flags. */
function replyOptionsFromCli(chat: ChatModel, tools: JsonValue | undefined, s: Sampling, constraint: ConstraintFactory | undefined): ReplyOptions {
  return {
    ...(s.greedy === true ? { greedy: true } : {}),
    ...(s.temperature !== undefined ? { temperature: s.temperature } : {}),
    ...(s.topP !== undefined ? { topP: s.topP } : {}),
    ...(s.topK !== undefined ? { topK: s.topK } : {}),
    ...(s.repetitionPenalty !== undefined ? { repetitionPenalty: s.repetitionPenalty } : {}),
    ...(s.seed !== undefined ? { seed: s.seed } : {}),
    maxNewTokens: s.maxNewTokens ?? defaultReplyTokens(chat.contextLength),
    tools: tools !== undefined,
    ...(constraint !== undefined ? { constraint } : {}),
  };
}

/** After a streamed reply: why it stopped, a tool call or code to answer, stats. Returns whether an observation is expected next. */
function showReplyEnd(reply: ChatReply, opts: ChatCliOptions, t0: number): boolean {
  const p = reply.parsed;
  let expectObservation = false;
  if (reply.result.finishReason === 'abort') process.stdout.write(' [stopped]');
  else if (reply.result.finishReason === 'length') process.stdout.write(' [stopped: length]');
  process.stdout.write('\n');
  if (p.type === 'tool_call') {
    process.stdout.write(`[tool call] ${p.name} ${JSON.stringify(p.arguments)}\n(type the tool's result)\n`);
    expectObservation = true;
  } else if (p.type === 'code') {
    process.stdout.write(`[${p.name}]\n${p.content}\n(type the result of running it)\n`);
    expectObservation = true;
  } else if (p.type === 'invalid_tool_call') {
    process.stdout.write(`[tool call ${p.name}, arguments do not parse: ${p.error}]\n${p.content}\n`);
  }
  if (reply.dropped > 0) process.stderr.write(`chatglm: dropped the ${reply.dropped} oldest messages to fit the context\n`);
  if (opts.stats === true) process.stderr.write(JSON.stringify({ finish_reason: reply.result.finishReason, usage: reply.result.usage }) + '\n');
  if (opts.verbose === true) process.stderr.write(usageInWords(reply.result.usage, performance.now() - t0, reply.result.finishReason));
  return expectObservation;
}

/**
 * Bracketed paste: the terminal marks pasted text, readline reports the marks as keypresses, and
 * each line is tagged (in order) with whether it ended inside a paste.
 */
function trackPastes(rl: readline.Interface, tty: boolean): { pastedLines: boolean[]; stop: () => void } {
  let pasting = false;
  const pastedLines: boolean[] = [];
  const onKey = (_s: string | undefined, key: { name?: string } | undefined): void => {
    if (key?.name === 'paste-start') pasting = true;
    else if (key?.name === 'paste-end') pasting = false;
  };
  rl.on('line', () => pastedLines.push(pasting));
  if (tty) {
    process.stdin.on('keypress', onKey);
    process.stdout.write('\x1b[?2004h');
  }
  const stop = (): void => {
    if (!tty) return;
    process.stdout.write('\x1b[?2004l');
    process.stdin.off('keypress', onKey);
  };
  return { pastedLines, stop };
}

/** The interactive chat's session: on the --prompt-cache file's sequence when one is given. */
async function openSession(chat: ChatModel, opts: ChatCliOptions): Promise<{ cache: CliPromptCache | undefined; session: ChatSession }> {
  const cache =
    opts.promptCache !== undefined
      ? await CliPromptCache.open(opts.promptCache, resolveModelPath(opts.model), loadOptionsFromCli(opts), chat.model, chat.contextLength, (line) => process.stderr.write(line + '\n'))
      : undefined;
  const session =
    cache !== undefined
      ? new ChatSession({ model: chat.model, tokenizer: chat.tokenizer, format: chat.format, contextLength: chat.contextLength }, cache.sequence)
      : chat.createSession();
  return { cache, session };
}

async function interactive(
  chat: ChatModel,
  tools: JsonValue | undefined,
  s: Sampling,
  opts: ChatCliOptions,
  constraint: ConstraintFactory | undefined,
): Promise<void> {
  const tty = process.stdin.isTTY === true;
  const rl = readline.createInterface({ input: process.stdin, output: process.stdout, terminal: tty });
  const { cache, session } = await openSession(chat, opts);
  // The cache file keeps the first prompt of the conversation (the system prompt and tools with it).
  let firstPrompt = true;
  let system = opts.system;
  let history: ChatMessage[] = [];
  let expectObservation = false;
  let answering: AbortController | undefined;
  let interruptAtPrompt = false;
  const input = new ChatInputReader();

  const onInterrupt = (): void => {
    if (answering !== undefined) {
      answering.abort();
      return;
    }
    if (interruptAtPrompt) {
      rl.close();
      return;
    }
    interruptAtPrompt = true;
    input.cancel();
    process.stdout.write('\n(Ctrl-C again, Ctrl-D or /exit to quit)\n');
    rl.setPrompt(promptText());
    rl.prompt();
  };
  rl.on('SIGINT', onInterrupt);
  process.on('SIGINT', onInterrupt);

  const options = replyOptionsFromCli(chat, tools, s, constraint);
  const preamble = (): ChatMessage[] => {
    if (tools !== undefined) return toolSystemMessages(chat.format, tools, system);
    return system !== undefined && system !== '' ? [{ role: 'system', content: system }] : [];
  };
  const promptText = (): string => (input.pending ? '... ' : expectObservation ? 'observation> ' : 'you> ');
  process.stderr.write(`chatglm: chatting with ${chat.name} (${chat.family}). /help lists the commands; Ctrl-C stops an answer.\n`);
  const pastes = trackPastes(rl, tty);
  rl.setPrompt(promptText());
  if (tty) rl.prompt();

  try {
    for await (const raw of rl) {
      interruptAtPrompt = false;
      const got = input.push(raw, pastes.pastedLines.shift() ?? false);
      if (got.kind === 'exit') break;
      if (got.kind === 'help') {
        process.stdout.write(CHAT_HELP + '\n');
      } else if (got.kind === 'unknown') {
        process.stdout.write(`(unknown command ${got.command}; /help lists the commands)\n`);
      } else if (got.kind === 'reset' || got.kind === 'system') {
        if (got.kind === 'system') system = got.text;
        history = [];
        expectObservation = false;
        session.reset();
        const what = got.kind === 'reset' ? '' : system === '' ? 'system prompt removed; ' : 'system prompt set; ';
        process.stdout.write(`(${what}conversation cleared)\n`);
      } else if (got.kind === 'message') {
        const wasObservation: boolean = expectObservation;
        history.push({ role: wasObservation ? 'observation' : 'user', content: got.text });
        expectObservation = false;
        answering = new AbortController();
        let reply;
        const t0 = performance.now();
        try {
          reply = await session.reply([...preamble(), ...history], { ...options, signal: answering.signal }, (text) => process.stdout.write(text));
        } catch (err) {
          // A message the model cannot take (longer than the context, say) must not end the
          // conversation: report it, forget that message, and keep what came before.
          if (!(err instanceof ChatGLMError)) throw err;
          history.pop();
          expectObservation = wasObservation;
          process.stderr.write(`chatglm: ${err.message}\n`);
          rl.setPrompt(promptText());
          if (tty) rl.prompt();
          continue;
        } finally {
          answering = undefined;
        }
        for (const seg of reply.parsed.segments) history.push({ role: 'assistant', metadata: seg.metadata.trim(), content: seg.content });
        if (cache !== undefined && firstPrompt) await cache.afterPrompt(reply.promptIds);
        firstPrompt = false;
        expectObservation = showReplyEnd(reply, opts, t0);
      }
      rl.setPrompt(promptText());
      if (tty) rl.prompt();
    }
  } finally {
    pastes.stop();
    process.off('SIGINT', onInterrupt);
    rl.close();
  }
}

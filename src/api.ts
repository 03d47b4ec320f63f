/**
 * The library API: load a model, then talk to it in the shape of OpenAI's Chat Completions
 * (`createChatCompletion`), or generate over token ids. Everything here is a thin layer over
 * chat/ and generate/.
 *
 *   const model = await loadChatModel('path/to/chatglm3-6b');
 *   const r = await model.createChatCompletion({ messages: [{ role: 'user', content: '你好' }] });
 *   console.log(r.choices[0].message.content);
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ChatGLMError } from './errors.js';
import { hubModelName, resolveModelRef } from './hub/cache.js';
import type { Backend } from './backend/types.js';
import type { BackendName } from './backend/select.js';
import { openModel, type QuantizeType } from './model/open.js';
import { checkModelPath } from './model/check-path.js';
import { validateChatCompletionRequest, withoutNullFields } from './api/validate-request.js';
import { requestToChatMessages } from './api/request-messages.js';
import type { LoadProgress } from './model/load.js';
import { loadTokenizerFile, loadTokenizerForModel } from './tokenizer/load.js';
import { tokenizerFromGguf } from './tokenizer/from-gguf.js';
import { GgufReader } from './formats/gguf.js';
import { readGgufTokenizer } from './formats/gguf-checkpoint.js';
import type { ModelFamily, Tokenizer } from './tokenizer/types.js';
import { getChatFormat } from './chat/formats.js';
import { encodePieces, piecesToText } from './chat/prompt-pieces.js';
import type { JsonValue } from './chat/python-literal.js';
import { ChatSession, type ChatReply, type ReplyOptions } from './chat/session.js';
import type { TruncationPolicy } from './chat/fit.js';
import type { ChatFormat, ChatMessage, ParsedReply } from './chat/types.js';
import { generate, generateAll, type GenerateOptions, type GenerationStep } from './generate/generator.js';
import type { CausalLM, GenerationResult, GenerationUsage } from './generate/types.js';
import { forcedCallPieces, planToolChoice, toolNamesOf, type ChatCompletionToolChoice } from './chat/tool-choice.js';
import { buildRequestConstraint, type ConstraintRequest, type ResponseFormat, type ToolChoice } from './api-constraints.js';
import type { ConstraintFactory } from './generate/logits-constraint.js';
import type { CachedSequence } from './generate/sequence.js';
import type { KVType } from './backend/kv-type.js';
import { GrammarEngine } from './grammar/engine.js';

// ---------------------------------------------------------------- OpenAI-shaped types

export interface ChatCompletionTool {
  type: 'function';
  function: { name: string; description?: string; parameters?: JsonValue };
}

export interface ChatCompletionMessageToolCall {
  id: string;
  type: 'function';
  function: { name: string; /** JSON text, as OpenAI sends it. */ arguments: string };
}

export type ChatCompletionContent = string | { type: 'text'; text: string }[];

export type ChatCompletionMessageParam =
  | { role: 'system'; content: ChatCompletionContent; /** ChatGLM3: tool definitions carried by this system message. */ tools?: JsonValue }
  | { role: 'user'; content: ChatCompletionContent }
  | {
      role: 'assistant';
      content?: ChatCompletionContent | null;
      tool_calls?: ChatCompletionMessageToolCall[];
      /** ChatGLM header metadata (a tool name, 'interpreter'), for replaying native transcripts. */
      metadata?: string;
    }
  | { role: 'tool'; content: ChatCompletionContent; tool_call_id?: string }
  | { role: 'function'; content: ChatCompletionContent; name?: string }
  | { role: 'observation'; content: ChatCompletionContent };

export interface ChatCompletionRequest {
  messages: ChatCompletionMessageParam[];
  /** OpenAI-style tool list (or any JSON the model was trained on): put in the system prompt verbatim. */
  tools?: ChatCompletionTool[] | JsonValue;
  /** Default 0.8 (ChatGLM's own default); 0 means greedy. */
  temperature?: number;
  /** Default 0.8 (ChatGLM's own default). */
  top_p?: number;
  /** Default 0 (off). */
  top_k?: number;
  /** Default 1 (off). */
  repetition_penalty?: number;
  /**
   * Most tokens to generate (an integer >= 1). Default: a quarter of the context length, at most
   * 1024 (the demo model: 256); that much room is kept free for the reply when old turns must be
   * dropped to fit the context.
   */
  max_tokens?: number;
  seed?: number;
  stop?: string | string[];
  stream?: boolean;
  signal?: AbortSignal;
  /** When the conversation does not fit: drop the oldest turns (default) or fail. */
  truncation?: TruncationPolicy;
  /**
   * "auto" (default), "none" (the tools are left out of the prompt), "required" (the reply starts
   * with a call to one of the declared tools: constrained decoding), or
   * {"type": "function", "function": {"name"}} (the reply calls that tool: constrained decoding,
   * or with `constrain: false` the start of the call written into the prompt).
   */
  tool_choice?: ChatCompletionToolChoice;
  /** JSON output: {type: "json_object"} or {type: "json_schema", json_schema: {schema}} (constrained decoding). */
  response_format?: ResponseFormat;
  /**
   * With tools declared, calls are constrained to declared names and schemas; false turns that
   * default off (an explicit response_format or tool_choice "required" is still enforced). Default true.
   */
  constrain?: boolean;
}

export interface ChatCompletionMessage {
  role: 'assistant';
  content: string | null;
  tool_calls?: ChatCompletionMessageToolCall[];
  /** Set when the model tried to call a tool but wrote arguments that do not parse. */
  invalid_tool_call?: { name: string; error: string; content: string };
}

export type FinishReason = 'stop' | 'length' | 'tool_calls';

export interface ChatCompletionUsage extends GenerationUsage {}

export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: [{ index: 0; message: ChatCompletionMessage; finish_reason: FinishReason }];
  usage: ChatCompletionUsage;
  /** The seed used (given or drawn), to repeat a sampled answer. */
  seed: number;
}

export interface ChatCompletionChunkToolCall {
  index: number;
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

export interface ChatCompletionChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  choices: [
    {
      index: 0;
      delta: {
        role?: 'assistant';
        content?: string;
        tool_calls?: ChatCompletionChunkToolCall[];
        /** As on ChatCompletionMessage: a call whose arguments do not parse (its text is in `content`). */
        invalid_tool_call?: { name: string; error: string; content: string };
      };
      finish_reason: FinishReason | null;
    },
  ];
  /** On the last chunk only. */
  usage?: ChatCompletionUsage;
}

// ---------------------------------------------------------------- loading

export interface LoadChatModelOptions {
  /** A backend instance or name: 'auto' (default: native when built, else reference), 'native', 'reference'. */
  backend?: Backend | BackendName;
  /** Quantize weights while loading. */
  quantize?: QuantizeType;
  onProgress?: (p: LoadProgress) => void;
  /** Chat format / family, overriding what the model directory says. */
  family?: ModelFamily;
  /** A tokenizer file to use instead of the model directory's tokenizer.model (or the .gguf file's own vocabulary). */
  tokenizer?: string;
  /** Positions a conversation may use (default: the model's seq_length; more is an error). */
  contextLength?: number;
  /** Threads of the native backend (default: all cores). */
  threads?: number;
  /** Element type of the KV caches: 'f16' (default) or 'q8_0' (about half the memory). */
  kvType?: KVType;
}

/** models/chatglm3-demo inside this package: the tiny demonstration model used when no model is given. */
export function bundledModelPath(): string {
  // This file is dist/src/api.js once built; the package root is two levels up.
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../models/chatglm3-demo');
}

/**
 * The tokenizer a .gguf file carries in its tokenizer.ggml.* metadata, and the family it shows
 * (`family` overrides it). ChatGLMError when the file has no usable vocabulary.
 */
export async function loadGgufTokenizer(file: string, family?: ModelFamily): Promise<{ tokenizer: Tokenizer; family: ModelFamily }> {
  const reader = await GgufReader.open(file);
  try {
    return tokenizerFromGguf(readGgufTokenizer(reader.header), { file, ...(family !== undefined ? { family } : {}) });
  } finally {
    await reader.close();
  }
}

/** Loads a model directory or .gguf file for chat; no path = the bundled demo model. */
export async function loadChatModel(modelPath?: string, options: LoadChatModelOptions = {}): Promise<ChatModel> {
  // A path, or a model name (OWNER/NAME[@rev]) found in the Hugging Face cache.
  const dir = modelPath !== undefined ? resolveModelRef(modelPath) : bundledModelPath();
  // What the path is decides how it is read (not its name), and a bad path fails here, before the tokenizer.
  const isGguf = (await checkModelPath(dir)) === 'gguf';
  if (options.contextLength !== undefined && (!Number.isSafeInteger(options.contextLength) || options.contextLength < 2)) {
    throw new ChatGLMError('BAD_ARGUMENT', `contextLength must be an integer >= 2, got ${options.contextLength}`);
  }
  // The tokenizer first: it is small, and a wrong path should fail before gigabytes are read.
  let tokenizer: Tokenizer | undefined;
  let family: ModelFamily | undefined = options.family;
  if (isGguf && options.tokenizer === undefined) {
    // The file's own vocabulary; read before the weights so a file without one fails fast.
    ({ tokenizer, family } = await loadGgufTokenizer(dir, options.family));
  } else if (!isGguf) {
    const t = await loadTokenizerForModel(dir, options.tokenizer);
    family ??= t.family;
    tokenizer = family === t.family ? t.tokenizer : (await loadTokenizerFile(options.tokenizer ?? path.join(dir, 'tokenizer.model'), family)).tokenizer;
  }
  const opened = await openModel(dir, {
    ...(options.backend !== undefined ? { backend: options.backend } : {}),
    ...(options.quantize !== undefined ? { quantize: options.quantize } : {}),
    ...(options.onProgress !== undefined ? { onProgress: options.onProgress } : {}),
    ...(options.family !== undefined ? { family: options.family } : {}),
    ...(options.threads !== undefined ? { threads: options.threads } : {}),
    ...(options.kvType !== undefined ? { kvType: options.kvType } : {}),
  });
  const disposeOwned = (): void => {
    if (typeof options.backend !== 'object') opened.backend.dispose?.();
  };
  if (tokenizer === undefined || family === undefined) {
    // A .gguf file: its family comes from the checkpoint, the tokenizer from the given file.
    family ??= opened.config.family;
    try {
      tokenizer = (await loadTokenizerFile(options.tokenizer!, family)).tokenizer;
    } catch (err) {
      disposeOwned();
      throw err;
    }
  }
  if (tokenizer.vocabSize > opened.config.vocabSize) {
    disposeOwned();
    throw new ChatGLMError(
      'MODEL_MISMATCH',
      `${dir}: the tokenizer has ${tokenizer.vocabSize} ids but the model only ${opened.config.vocabSize} rows; the tokenizer does not belong to this model`,
      { file: dir },
    );
  }
  if (options.contextLength !== undefined && options.contextLength > opened.config.seqLength) {
    disposeOwned();
    throw new ChatGLMError(
      'BAD_ARGUMENT',
      `contextLength ${options.contextLength} is larger than the model's trained context (${opened.config.seqLength} tokens); use ${opened.config.seqLength} or less`,
    );
  }
  const contextLength = options.contextLength ?? opened.config.seqLength;
  return new ChatModel({
    model: opened.model,
    tokenizer,
    format: getChatFormat(family),
    contextLength,
    name: hubModelName(dir) ?? path.basename(dir),
    // A backend instance the caller passed in stays the caller's to dispose.
    ...(typeof options.backend === 'object' ? {} : { backend: opened.backend }),
  });
}

// ---------------------------------------------------------------- the model

export interface ChatModelParts {
  /** The loaded GLM model (anything with newCache/forward works, e.g. a stand-in in tests). */
  model: CausalLM;
  tokenizer: Tokenizer;
  format: ChatFormat;
  contextLength: number;
  /** Shown as `model` in completions. */
  name: string;
  /** A backend this model owns: dispose() frees it. */
  backend?: Backend;
}

/** Options of the low-level generate over ids. */
export type GenerateIdsOptions = Omit<GenerateOptions, 'tokenizer' | 'sequence'>;

const DEFAULT_MAX_TOKENS = 1024;

export class ChatModel {
  readonly model: CausalLM;
  readonly tokenizer: Tokenizer;
  readonly format: ChatFormat;
  readonly family: ModelFamily;
  readonly contextLength: number;
  readonly name: string;
  private readonly backend: Backend | undefined;
  /** Reused by successive calls, so a conversation that grows by a turn prefills only that turn. */
  private session: ChatSession;
  private sessionBusy = false;
  /** The exact text of tool calls this model produced, by call id, to replay them verbatim. */
  private readonly callText = new Map<string, { metadata: string; content: string }>();
  /** Grammar matching over this model's vocabulary, made on first use by a constrained request. */
  private grammarEngine: Promise<GrammarEngine> | undefined;

  constructor(parts: ChatModelParts) {
    this.model = parts.model;
    this.tokenizer = parts.tokenizer;
    this.format = parts.format;
    this.family = parts.format.name;
    this.contextLength = parts.contextLength;
    this.name = parts.name;
    this.backend = parts.backend;
    this.session = new ChatSession(this.engine());
  }

  /**
   * Makes `sequence` the KV cache of the conversation createChatCompletion reuses (one restored
   * from a prompt cache file, say). Call it before the first completion.
   */
  useSequence(sequence: CachedSequence): void {
    this.session = new ChatSession(this.engine(), sequence);
  }

  /** A conversation with its own KV cache (the CLI's interactive chat uses one). */
  createSession(): ChatSession {
    return new ChatSession(this.engine());
  }

  /** The prompt for ChatGLM-native messages, as ids and as text with specials by name. */
  renderPrompt(messages: readonly ChatMessage[]): { ids: number[]; text: string } {
    const pieces = this.format.render(messages).pieces;
    return { ids: encodePieces(pieces, this.tokenizer), text: piecesToText(pieces) };
  }

  /** Low-level: generates from token ids (no chat template); returns ids, text and usage. */
  async generate(ids: readonly number[], options: GenerateIdsOptions = {}, onStep?: (s: GenerationStep) => void): Promise<GenerationResult> {
    return generateAll(this.model, ids, { contextLength: this.contextLength, vocabLimit: this.tokenizer.vocabSize, ...options, tokenizer: this.tokenizer }, onStep);
  }

  /** Low-level streaming: yields {id, text} per generated token, returns the result. */
  generateStream(ids: readonly number[], options: GenerateIdsOptions = {}): AsyncGenerator<GenerationStep, GenerationResult, void> {
    return generate(this.model, ids, { contextLength: this.contextLength, vocabLimit: this.tokenizer.vocabSize, ...options, tokenizer: this.tokenizer });
  }

  /**
   * The grammar constraint for a reply (for ChatSession.reply's `constraint`): JSON output,
   * declared tools, a required call. Compiled now; undefined when nothing is constrained.
   */
  buildConstraint(request: ConstraintRequest): Promise<ConstraintFactory | undefined> {
    return buildRequestConstraint(
      { format: this.format, tokenizer: this.tokenizer, engine: () => (this.grammarEngine ??= GrammarEngine.create(this.tokenizer)) },
      request,
    );
  }

  /** The family's stop ids (what generate() should stop on for chat-style prompts). */
  stopIds(): number[] {
    return this.format.stopIds(this.tokenizer);
  }

  /** OpenAI-style request messages as ChatGLM messages, the way createChatCompletion converts them (the server runs them on its own sessions). */
  chatMessagesOf(request: ChatCompletionRequest): ChatMessage[] {
    return this.toChatMessages(request);
  }

  /** A finished reply as the completion createChatCompletion returns (tool calls get ids that a later request can replay). */
  completionOf(id: string, created: number, reply: ChatReply): ChatCompletion {
    return this.completion(id, created, reply);
  }

  createChatCompletion(request: ChatCompletionRequest & { stream: true }): Promise<AsyncIterable<ChatCompletionChunk>>;
  createChatCompletion(request: ChatCompletionRequest & { stream?: false }): Promise<ChatCompletion>;
  createChatCompletion(request: ChatCompletionRequest): Promise<ChatCompletion | AsyncIterable<ChatCompletionChunk>>;
  async createChatCompletion(request: ChatCompletionRequest): Promise<ChatCompletion | AsyncIterable<ChatCompletionChunk>> {
    validateChatCompletionRequest(request);
    request = withoutNullFields(request);
    // Tools come in the request, or in ChatGLM-native system messages ({role: 'system', tools}).
    const systemTools = Array.isArray(request.messages)
      ? request.messages.flatMap((m) => (m?.role === 'system' && m.tools !== undefined ? [m.tools] : []))
      : [];
    const declared =
      request.tools !== undefined ? toolNamesOf(request.tools as JsonValue) : systemTools.length > 0 ? systemTools.flatMap(toolNamesOf) : undefined;
    const plan = planToolChoice(request.tool_choice, declared);
    let messages = this.toChatMessages(plan.offerTools ? request : { ...request, tools: undefined });
    if (!plan.offerTools) messages = messages.map(({ tools: _dropped, ...m }) => m);
    const hasTools = plan.offerTools && messages.some((m) => m.role === 'system' && m.tools !== undefined);
    const stop = request.stop === undefined ? [] : Array.isArray(request.stop) ? request.stop : [request.stop];
    // A named tool is forced by the grammar; with `constrain: false`, by writing its call's start into the prompt.
    const forcedByPrefix = plan.forced !== undefined && request.constrain === false;
    const constraint = await this.buildConstraint({
      ...(plan.offerTools && request.tools !== undefined ? { tools: request.tools as JsonValue } : {}),
      ...(request.tool_choice !== undefined && !forcedByPrefix ? { tool_choice: request.tool_choice } : {}),
      ...(request.response_format !== undefined ? { response_format: request.response_format } : {}),
      ...(request.constrain !== undefined ? { constrain: request.constrain } : {}),
    });
    const options = {
      temperature: request.temperature ?? 0.8,
      topP: request.top_p ?? 0.8,
      topK: request.top_k ?? 0,
      repetitionPenalty: request.repetition_penalty ?? 1,
      maxNewTokens: request.max_tokens ?? DEFAULT_MAX_TOKENS,
      stop,
      tools: hasTools,
      truncation: request.truncation ?? 'drop_oldest',
      ...(forcedByPrefix ? { replyPrefix: forcedCallPieces(this.format, plan.forced!) } : {}),
      ...(request.seed !== undefined ? { seed: request.seed } : {}),
      ...(request.signal !== undefined ? { signal: request.signal } : {}),
      ...(constraint !== undefined ? { constraint } : {}),
    };
    if (request.max_tokens === undefined) {
      // Without an explicit max_tokens, keep whole turns rather than reserving 1024 positions:
      // generation simply stops at the end of the context.
      options.maxNewTokens = Math.min(DEFAULT_MAX_TOKENS, Math.max(1, Math.floor(this.contextLength / 4)));
    }
    const id = `chatcmpl-${randomBytes(12).toString('hex')}`;
    const created = Math.floor(Date.now() / 1000);
    if (request.stream !== true) {
      const { session, release } = this.claimSession();
      try {
        const reply = await session.reply(messages, options);
        return this.completion(id, created, reply);
      } finally {
        release();
      }
    }
    return this.chunks(id, created, messages, options);
  }

  /**
   * One conversation at a time uses the shared cache; a concurrent call gets a fresh one. (A
   * stream claims it when its iteration starts, so an abandoned, never-read stream holds nothing.)
   */
  private claimSession(): { session: ChatSession; release: () => void } {
    if (this.sessionBusy) return { session: this.createSession(), release: () => {} };
    this.sessionBusy = true;
    return {
      session: this.session,
      release: () => {
        this.sessionBusy = false;
      },
    };
  }

  /** Frees backend resources (native thread pool). */
  dispose(): void {
    this.backend?.dispose?.();
    this.grammarEngine?.then((e) => e.dispose(), () => {});
  }

  private engine(): { model: CausalLM; tokenizer: Tokenizer; format: ChatFormat; contextLength: number } {
    return { model: this.model, tokenizer: this.tokenizer, format: this.format, contextLength: this.contextLength };
  }

  private async *chunks(
    id: string,
    created: number,
    messages: ChatMessage[],
    options: ReplyOptions,
  ): AsyncGenerator<ChatCompletionChunk, void, void> {
    const chunk = (delta: ChatCompletionChunk['choices'][0]['delta'], finish: FinishReason | null, usage?: ChatCompletionUsage): ChatCompletionChunk => ({
      id,
      object: 'chat.completion.chunk',
      created,
      model: this.name,
      choices: [{ index: 0, delta, finish_reason: finish }],
      ...(usage !== undefined ? { usage } : {}),
    });
    const { session, release } = this.claimSession();
    const stream = session.stream(messages, options);
    try {
      yield chunk({ role: 'assistant', content: '' }, null);
      let reply: ChatReply;
      for (;;) {
        const r = await stream.next();
        if (r.done) {
          reply = r.value;
          break;
        }
        yield chunk({ content: r.value }, null);
      }
      const done = this.completion(id, created, reply);
      const message = done.choices[0].message;
      if (message.tool_calls !== undefined) {
        yield chunk({ tool_calls: message.tool_calls.map((c, index) => ({ index, ...c })) }, null);
      } else if (message.invalid_tool_call !== undefined) {
        yield chunk({ content: message.invalid_tool_call.content, invalid_tool_call: message.invalid_tool_call }, null);
      }
      yield chunk({}, done.choices[0].finish_reason, done.usage);
    } finally {
      // Also runs when the caller stops iterating early.
      await stream.return(undefined as never);
      release();
    }
  }

  private completion(id: string, created: number, reply: ChatReply): ChatCompletion {
    if (reply.result.finishReason === 'abort') throw new ChatGLMError('ABORTED', 'the request was aborted');
    const { message, toolCall } = this.toMessage(reply.parsed);
    const finish: FinishReason = toolCall ? 'tool_calls' : reply.result.finishReason === 'length' ? 'length' : 'stop';
    return {
      id,
      object: 'chat.completion',
      created,
      model: this.name,
      choices: [{ index: 0, message, finish_reason: finish }],
      usage: reply.result.usage,
      seed: reply.result.seed,
    };
  }

  private toMessage(p: ParsedReply): { message: ChatCompletionMessage; toolCall: boolean } {
    const toolCall = (text: string, name: string, args: unknown): { message: ChatCompletionMessage; toolCall: boolean } => {
      const callId = `call_${randomBytes(12).toString('hex')}`;
      const last = p.segments[p.segments.length - 1]!;
      this.callText.set(callId, { metadata: last.metadata.trim(), content: last.content });
      // Bounded: old calls fall back to re-rendering from their arguments.
      if (this.callText.size > 1000) this.callText.delete(this.callText.keys().next().value!);
      return {
        message: {
          role: 'assistant',
          content: text === '' ? null : text,
          tool_calls: [{ id: callId, type: 'function', function: { name, arguments: JSON.stringify(args) } }],
        },
        toolCall: true,
      };
    };
    switch (p.type) {
      case 'text':
        return { message: { role: 'assistant', content: p.content }, toolCall: false };
      case 'tool_call':
        return toolCall(p.text, p.name, p.arguments);
      case 'code':
        return toolCall(p.text, p.name, { code: p.code });
      case 'invalid_tool_call':
        return {
          message: { role: 'assistant', content: p.text === '' ? null : p.text, invalid_tool_call: { name: p.name, error: p.error, content: p.content } },
          toolCall: false,
        };
    }
  }

  /** OpenAI-style request messages to ChatGLM messages (tools into the system prompt); see api/request-messages.ts. */
  private toChatMessages(request: ChatCompletionRequest): ChatMessage[] {
    return requestToChatMessages(request.messages, request.tools as JsonValue | undefined, this.format, (id) => this.callText.get(id));
  }
}

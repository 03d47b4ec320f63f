/** ChatModel: a loaded model that answers OpenAI-shaped chat requests or generates over token ids. */
import { randomBytes } from 'node:crypto';
import type { Backend } from '../backend/types.js';
import { validateChatCompletionRequest, withoutNullFields } from './validate-request.js';
import { requestToChatMessages } from './request-messages.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { encodePieces, piecesToText } from '../chat/prompt-pieces.js';
import type { JsonValue } from '../chat/python-literal.js';
import { ChatSession, type ChatReply, type ReplyOptions } from '../chat/session.js';
import type { ChatFormat, ChatMessage } from '../chat/types.js';
import { generate, generateAll, type GenerateOptions, type GenerationStep } from '../generate/generator.js';
import type { CausalLM, GenerationResult } from '../generate/types.js';
import { forcedCallPieces, planToolChoice, toolNamesOf } from '../chat/tool-choice.js';
import { buildRequestConstraint, type ConstraintRequest } from '../api-constraints.js';
import type { ConstraintFactory } from '../generate/logits-constraint.js';
import type { CachedSequence } from '../generate/sequence.js';
import { GrammarEngine } from '../grammar/engine.js';
import { replyOptionsOf } from './reply-options.js';
import { completionOf, type CallTextStore } from './reply-message.js';
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionRequest,
  ChatCompletionUsage,
  FinishReason,
} from './types.js';

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

export class ChatModel {
  readonly model: CausalLM;
  readonly tokenizer: Tokenizer;
  readonly format: ChatFormat;
  readonly family: string;
  readonly contextLength: number;
  readonly name: string;
  private readonly backend: Backend | undefined;
  /** Reused by successive calls, so a conversation that grows by a turn prefills only that turn. */
  private session: ChatSession;
  private sessionBusy = false;
  /** The exact text of tool calls this model produced, by call id, to replay them verbatim. */
  private readonly callText: CallTextStore = new Map();
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
    // A named tool is forced by the grammar; with `constrain: false`, by writing its call's start into the prompt.
    const forcedByPrefix = plan.forced !== undefined && request.constrain === false;
    const constraint = await this.buildConstraint({
      ...(plan.offerTools && request.tools !== undefined ? { tools: request.tools as JsonValue } : {}),
      ...(request.tool_choice !== undefined && !forcedByPrefix ? { tool_choice: request.tool_choice } : {}),
      ...(request.response_format !== undefined ? { response_format: request.response_format } : {}),
      ...(request.constrain !== undefined ? { constrain: request.constrain } : {}),
    });
    const options = replyOptionsOf(request, {
      contextLength: this.contextLength,
      tools: hasTools,
      ...(forcedByPrefix ? { replyPrefix: forcedCallPieces(this.format, plan.forced!) } : {}),
      ...(constraint !== undefined ? { constraint } : {}),
    });
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
    return completionOf(id, created, this.name, reply, this.callText);
  }

  /** OpenAI-style request messages to ChatGLM messages (tools into the system prompt); see api/request-messages.ts. */
  private toChatMessages(request: ChatCompletionRequest): ChatMessage[] {
    return requestToChatMessages(request.messages, request.tools as JsonValue | undefined, this.format, (id) => this.callText.get(id));
  }
}

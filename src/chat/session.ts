/**
 * A conversation with a model: renders the messages in the model's chat format, fits them into
 * the context, generates with the family's stop ids, and parses the reply. The session keeps its
 * KV cache between calls, so the next turn prefills only the tokens after the common prefix.
 */
import { ChatGLMError } from '../errors.js';
import { drain, generate, type GenerateOptions } from '../generate/generator.js';
import { CachedSequence } from '../generate/sequence.js';
import { DEFAULT_MAX_NEW_TOKENS } from '../generate/defaults.js';
import type { SamplingOptions } from '../generate/sampler.js';
import type { ConstraintFactory } from '../generate/logits-constraint.js';
import type { BatchedCausalLM, CausalLM, GenerationResult } from '../generate/types.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { fitConversation, type TruncationPolicy } from './fit.js';
import { ReplyStream } from './reply-stream.js';
import { StopStringMatcher } from '../generate/stop-strings.js';
import type { ChatFormat, ChatMessage, ParsedReply, PromptPiece } from './types.js';
import { encodePieces } from './prompt-pieces.js';

export interface ChatEngine {
  model: CausalLM | BatchedCausalLM;
  tokenizer: Tokenizer;
  format: ChatFormat;
  /** Positions the session's KV cache holds (prompt + reply). */
  contextLength: number;
}

export interface ReplyOptions extends SamplingOptions {
  /** Default 256. */
  maxNewTokens?: number;
  seed?: number;
  /** Extra stop strings (the family's stop ids always apply). */
  stop?: readonly string[];
  signal?: AbortSignal;
  /** Whether the conversation declares tools (decides how a call segment is parsed). */
  tools?: boolean;
  /** What to do when the conversation does not fit: drop the oldest turns (default) or fail. */
  truncation?: TruncationPolicy;
  /**
   * The start of the reply, written into the prompt after the assistant header (a forced tool
   * call). It is part of the reply that is parsed, not of the visible text.
   */
  replyPrefix?: readonly PromptPiece[];
  /** Makes the grammar constraint for this reply (constrained decoding); none by default. */
  constraint?: ConstraintFactory;
}

export interface ChatReply {
  parsed: ParsedReply;
  /** The raw reply text (segments joined with the segment token), before parsing. */
  raw: string;
  result: GenerationResult;
  promptIds: number[];
  /** Messages dropped from the start of the conversation to fit the context. */
  dropped: number;
}

export class ChatSession {
  private sequence: CachedSequence | undefined;

  /** `sequence`: a KV cache to hold the conversation in (a server slot's); default: one made on first use. */
  constructor(
    readonly engine: ChatEngine,
    sequence?: CachedSequence,
  ) {
    this.sequence = sequence;
  }

  /** Ids currently in the KV cache (what the next prompt can reuse). */
  get cachedIds(): readonly number[] {
    return this.sequence?.ids ?? [];
  }

  reset(): void {
    this.sequence?.reset();
  }

  /**
   * Streams the visible reply text for `messages` (the conversation so far, ending with the
   * message to answer) and returns the parsed reply.
   */
  async *stream(messages: readonly ChatMessage[], options: ReplyOptions = {}): AsyncGenerator<string, ChatReply, void> {
    const { model, tokenizer, format, contextLength } = this.engine;
    if (messages.length === 0) throw new ChatGLMError('BAD_ARGUMENT', 'chat: no messages to answer');
    const maxNewTokens = options.maxNewTokens ?? DEFAULT_MAX_NEW_TOKENS;
    const prefixIds = options.replyPrefix !== undefined ? encodePieces(options.replyPrefix, tokenizer) : [];
    const fitted = fitConversation(format, tokenizer, messages, maxNewTokens + prefixIds.length, contextLength, options.truncation ?? 'drop_oldest');
    const promptIds = prefixIds.length > 0 ? [...fitted.ids, ...prefixIds] : fitted.ids;
    this.sequence ??= new CachedSequence(model.newCache(contextLength));
    const genOptions: GenerateOptions = {
      ...samplingOnly(options),
      maxNewTokens,
      stopIds: format.stopIds(tokenizer),
      vocabLimit: tokenizer.vocabSize,
      stopStrings: options.stop ?? [],
      // The reply text is decoded per segment below; the loop needs a tokenizer only for stop strings.
      ...(options.stop !== undefined && options.stop.length > 0 ? { tokenizer } : {}),
      sequence: this.sequence,
      ...(options.seed !== undefined ? { seed: options.seed } : {}),
      ...(options.signal !== undefined ? { signal: options.signal } : {}),
    };
    const reply = new ReplyStream(tokenizer, format.segmentToken, format.segmentToken === undefined, format.trainingDate, options.tools ?? false);
    // The forced start belongs to the reply's first segment (a call header shows no text).
    for (const id of prefixIds) reply.push(id);
    // The loop stops on stop strings in the raw text; the visible text is cut by its own matcher
    // so that no part of a stop string is ever shown.
    const visibleStop = new StopStringMatcher(options.stop ?? []);
    let cut = false;
    // Whitespace before a stop string is stripped by the parser, so it is only shown once more text follows.
    const trailingSpace = new TrailingSpaceHolder();
    const constraint = options.constraint ? await options.constraint() : undefined;
    if (constraint) genOptions.constraint = constraint;
    const it = generate(model, promptIds, genOptions);
    let result: GenerationResult;
    try {
      for (;;) {
        const r = await it.next();
        if (r.done) {
          result = r.value;
          break;
        }
        if (r.value.id === undefined) continue;
        // Every id reaches the reply (its segments are split on ids); only the visible text stops at a cut.
        const delta = reply.push(r.value.id);
        if (!cut) {
          const check = visibleStop.push(delta);
          if (check.stop !== undefined) cut = true;
          const shown = trailingSpace.push(check.text);
          if (shown) yield shown;
        }
      }
    } finally {
      // Also when the caller stops iterating early.
      await it.return(undefined as never);
      constraint?.dispose();
    }
    if (!cut) {
      const check = visibleStop.push(reply.flush());
      const tail = trailingSpace.push(check.text + (check.stop === undefined && result.stopString === undefined ? visibleStop.flush() : ''));
      if (tail) yield tail;
    }
    // A stop string cuts the text mid-token; then the cut text is what gets parsed. Segments are
    // always split on the segment token's id, never on its text (the reply stream holds the ids,
    // a forced start included).
    const segments =
      result.stopString !== undefined
        ? format.segmentToken !== undefined
          ? reply.segmentTextsBefore(options.stop ?? [], format.segmentToken)
          : [(prefixIds.length > 0 ? tokenizer.decode(prefixIds) : '') + result.text]
        : reply.segmentTexts();
    const parsed = format.parse(segments, { tools: options.tools ?? false });
    return {
      parsed,
      raw: segments.join(format.segmentToken ?? ''),
      result,
      promptIds,
      dropped: fitted.dropped,
    };
  }

  /** Runs a whole reply; `onText` receives the visible text as it is generated. */
  async reply(messages: readonly ChatMessage[], options: ReplyOptions = {}, onText?: (delta: string) => void): Promise<ChatReply> {
    return drain(this.stream(messages, options), onText);
  }
}

function samplingOnly(o: SamplingOptions): SamplingOptions {
  const out: SamplingOptions = {};
  if (o.greedy !== undefined) out.greedy = o.greedy;
  if (o.temperature !== undefined) out.temperature = o.temperature;
  if (o.topK !== undefined) out.topK = o.topK;
  if (o.topP !== undefined) out.topP = o.topP;
  if (o.repetitionPenalty !== undefined) out.repetitionPenalty = o.repetitionPenalty;
  return out;
}

/** Holds back trailing whitespace until non-space text follows (the parser strips the reply's end). */
class TrailingSpaceHolder {
  private held = '';
  push(text: string): string {
    const all = this.held + text;
    const m = /\s+$/.exec(all);
    this.held = m ? m[0] : '';
    return m ? all.slice(0, m.index) : all;
  }
}

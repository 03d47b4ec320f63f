/**
 * The generation loop: prefill (in chunks, reusing a cached prefix), then one token per step until
 * a stop id, a stop string, the token limit, the end of the context, or an abort. It is an async
 * generator that yields to the event loop between steps, so an AbortSignal fired from a timer or a
 * Ctrl-C handler stops it after the current step.
 */
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { ChatGLMError } from '../errors.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { checkFiniteLogits } from './finite-logits.js';
import { createRng, randomSeed, type Rng } from './rng.js';
import { sampleToken, validateSampling, type SamplingOptions } from './sampler.js';
import { CachedSequence } from './sequence.js';
import { StopStringMatcher } from './stop-strings.js';
import { TextStream } from './text-stream.js';
import type { LogitsConstraint } from './logits-constraint.js';
import type { BatchedCausalLM, CausalLM, FinishReason, GenerationResult } from './types.js';
import { DEFAULT_MAX_NEW_TOKENS } from './defaults.js';

export interface GenerateOptions extends SamplingOptions {
  /** Most ids to generate, the stop id included. Default 256. */
  maxNewTokens?: number;
  /** Most ids in prompt + generated (Hugging Face max_length). Default: the context length. */
  maxLength?: number;
  /** Seed for sampling; the same seed and inputs give the same ids. Default: drawn at random. */
  seed?: number;
  /** Ids that end generation and are not part of the result. */
  stopIds?: readonly number[];
  /** Strings that end generation (needs `tokenizer`); the text is cut before the match. */
  stopStrings?: readonly string[];
  /** Turns ids into text deltas; without it only ids are produced. */
  tokenizer?: Tokenizer;
  signal?: AbortSignal;
  /** A sequence with a KV cache to reuse across calls (multi-turn); default: a fresh cache. */
  sequence?: CachedSequence;
  /** Context length for a fresh cache; default the model's seq_length. */
  contextLength?: number;
  /**
   * Only ids below this are ever generated. Checkpoints pad the output layer beyond the tokenizer
   * (ChatGLM3: 65024 rows for 64798 ids); a padding id has no text, so it is never sampled.
   */
  vocabLimit?: number;
  /** Prompt ids per forward step during prefill (bounds memory and abort latency). Default 256. */
  prefillChunk?: number;
  /** Removes disallowed ids before each draw (a grammar); told every sampled id, stop ids included. */
  constraint?: LogitsConstraint;
}

/**
 * One generated token: its id and the text it completed ('' mid-character or without a tokenizer).
 * The last step of a generation may carry no id: text that was held back (a possible start of a
 * stop string) and turned out to be plain text.
 */
export interface GenerationStep {
  id?: number;
  text: string;
}

/** One generation in progress: its limits, the text/stop machinery, and what it has produced. */
interface Run {
  readonly model: CausalLM | BatchedCausalLM;
  readonly prompt: readonly number[];
  readonly options: GenerateOptions;
  readonly seq: CachedSequence;
  readonly maxNew: number;
  readonly seed: number;
  readonly rng: Rng;
  readonly stopIds: Set<number>;
  readonly text: TextStream | undefined;
  readonly stopper: StopStringMatcher;
  readonly start: number;
  /** Prompt and generated ids, for the repetition penalty. */
  readonly history: number[];
  readonly generated: number[];
  outText: string;
  finishReason: FinishReason;
  stopId?: number;
  stopString?: string;
  prefillMs: number;
  firstTokenMs: number;
  decodeMs: number;
  decodeSteps: number;
  prefilled: number;
  /** Sampled ids, the stop id included. */
  completion: number;
}

/**
 * Generates from `prompt`; yields each generated id (never the stop id) with its text delta and
 * returns the result when done. If the consumer stops iterating early, the cache stays consistent.
 */
export async function* generate(
  model: CausalLM | BatchedCausalLM,
  prompt: readonly number[],
  options: GenerateOptions = {},
): AsyncGenerator<GenerationStep, GenerationResult, void> {
  const run = startRun(model, prompt, options);
  try {
    const logits = await prefill(run);
    if (logits !== undefined) yield* decode(run, logits);
  } catch (err) {
    // A failed forward step may leave the cache half-written: start the next call from scratch.
    run.seq.reset();
    throw err;
  }
  const tail = flushText(run);
  if (tail) yield { text: tail };
  return resultOf(run);
}

/** Checks the request and sets up a run: the sequence, the token budget, the sampler's RNG. */
function startRun(model: CausalLM | BatchedCausalLM, prompt: readonly number[], options: GenerateOptions): Run {
  const start = performance.now();
  validateSampling(options);
  if (prompt.length === 0) throw new ChatGLMError('BAD_ARGUMENT', 'generate: the prompt has no tokens');
  if (options.stopStrings && options.stopStrings.length > 0 && !options.tokenizer) {
    throw new ChatGLMError('BAD_ARGUMENT', 'generate: stop strings need a tokenizer');
  }
  const seq = options.sequence ?? new CachedSequence(model.newCache(options.contextLength ?? model.config.seqLength));
  const context = seq.capacity;
  if (prompt.length >= context) {
    throw new ChatGLMError(
      'CONTEXT_OVERFLOW',
      `the prompt has ${prompt.length} tokens but the context holds ${context}; shorten the conversation or use a larger context length`,
    );
  }
  const maxNew = Math.min(
    options.maxNewTokens ?? DEFAULT_MAX_NEW_TOKENS,
    (options.maxLength ?? context) - prompt.length,
    // The last generated id is never fed back, so prompt + generated may reach the context length.
    context - prompt.length,
  );
  const seed = options.seed ?? randomSeed();
  return {
    model,
    prompt,
    options,
    seq,
    maxNew,
    seed,
    rng: createRng(seed),
    stopIds: new Set(options.stopIds ?? []),
    text: options.tokenizer ? new TextStream(options.tokenizer) : undefined,
    stopper: new StopStringMatcher(options.stopStrings ?? []),
    start,
    history: [...prompt],
    generated: [],
    outText: '',
    finishReason: 'length',
    prefillMs: 0,
    firstTokenMs: 0,
    decodeMs: 0,
    decodeSteps: 0,
    prefilled: 0,
    completion: 0,
  };
}

/**
 * Feeds the prompt ids after the cached common prefix, `prefillChunk` at a time; returns the
 * logits after the last one (undefined when aborted, or when the whole prompt was cached).
 */
async function prefill(run: Run): Promise<Float32Array | undefined> {
  const { prompt, seq, options } = run;
  const chunk = Math.max(1, options.prefillChunk ?? 256);
  let pos = seq.reuse(prompt);
  let logits: Float32Array | undefined;
  const prefillStart = performance.now();
  while (pos < prompt.length) {
    if (options.signal?.aborted) {
      run.finishReason = 'abort';
      logits = undefined;
      break;
    }
    const ids = prompt.slice(pos, pos + chunk);
    logits = (await run.model.forward([{ cache: seq.cache, ids }]))[0];
    seq.appended(ids);
    pos += ids.length;
    run.prefilled += ids.length;
    if (pos < prompt.length) await yieldToEventLoop();
  }
  run.prefillMs = performance.now() - prefillStart;
  return logits;
}

/** The decode loop: sample, stop or yield, feed the id back; until a stop, the budget or an abort. */
async function* decode(run: Run, first: Float32Array): AsyncGenerator<GenerationStep, void, void> {
  const { options, seq } = run;
  let logits = first;
  let steps = 0;
  for (;;) {
    if (steps >= run.maxNew) {
      run.finishReason = 'length';
      return;
    }
    if (options.vocabLimit !== undefined && options.vocabLimit < logits.length) logits.fill(-Infinity, options.vocabLimit);
    checkFiniteLogits(logits);
    if (options.constraint) await options.constraint.mask(logits);
    const id = sampleToken(logits, run.history, options, run.rng);
    options.constraint?.accept(id);
    steps++;
    run.completion++;
    if (steps === 1) run.firstTokenMs = performance.now() - run.start;
    if (run.stopIds.has(id)) {
      run.finishReason = 'stop';
      run.stopId = id;
      return;
    }
    run.generated.push(id);
    run.history.push(id);
    const delta = pushText(run, id);
    run.outText += delta;
    yield { id, text: delta };
    if (run.stopString !== undefined) {
      run.finishReason = 'stop';
      return;
    }
    if (steps >= run.maxNew) {
      run.finishReason = 'length';
      return;
    }
    await yieldToEventLoop();
    if (options.signal?.aborted) {
      run.finishReason = 'abort';
      return;
    }
    const t0 = performance.now();
    logits = (await run.model.forward([{ cache: seq.cache, ids: [id] }]))[0]!;
    seq.appended([id]);
    run.decodeMs += performance.now() - t0;
    run.decodeSteps++;
  }
}

/** The text one id adds, held back while it may be the start of a stop string. */
function pushText(run: Run, id: number): string {
  if (!run.text) return '';
  const check = run.stopper.push(run.text.push(id));
  if (check.stop !== undefined) run.stopString = check.stop;
  return check.text;
}

/** At the end: the text still held by the detokenizer and the stop-string matcher (a stop string may complete here). */
function flushText(run: Run): string {
  if (!run.text || run.stopString !== undefined) return '';
  const check = run.stopper.push(run.text.flush());
  let tail = check.text;
  if (check.stop !== undefined) {
    run.stopString = check.stop;
    run.finishReason = 'stop';
  } else {
    tail += run.stopper.flush();
  }
  run.outText += tail;
  return tail;
}

function resultOf(run: Run): GenerationResult {
  const promptTokens = run.prompt.length;
  return {
    ids: run.generated,
    text: run.outText,
    ...(run.stopId !== undefined ? { stopId: run.stopId } : {}),
    ...(run.stopString !== undefined ? { stopString: run.stopString } : {}),
    finishReason: run.finishReason,
    seed: run.seed,
    usage: {
      prompt_tokens: promptTokens,
      completion_tokens: run.completion,
      total_tokens: promptTokens + run.completion,
      prefill_tokens: run.prefilled,
      prefill_tokens_per_second: run.prefillMs > 0 ? (run.prefilled * 1000) / run.prefillMs : 0,
      decode_tokens_per_second: run.decodeMs > 0 ? (run.decodeSteps * 1000) / run.decodeMs : 0,
      time_to_first_token_ms: run.firstTokenMs,
    },
  };
}

/** Runs a generation to the end; `onStep` sees every step (for streaming to a terminal). */
export async function generateAll(
  model: CausalLM | BatchedCausalLM,
  prompt: readonly number[],
  options: GenerateOptions = {},
  onStep?: (step: GenerationStep) => void,
): Promise<GenerationResult> {
  return drain(generate(model, prompt, options), onStep);
}

/** Runs an async generator to its end, handing each yielded value to `onValue`; returns its result. */
export async function drain<T, R>(it: AsyncGenerator<T, R, void>, onValue?: (value: T) => void): Promise<R> {
  for (;;) {
    const r = await it.next();
    if (r.done) return r.value;
    onValue?.(r.value);
  }
}

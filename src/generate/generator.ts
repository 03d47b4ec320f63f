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
import { createRng, randomSeed } from './rng.js';
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

/**
 * Generates from `prompt`; yields each generated id (never the stop id) with its text delta and
 * returns the result when done. If the consumer stops iterating early, the cache stays consistent.
 */
export async function* generate(
  model: CausalLM | BatchedCausalLM,
  prompt: readonly number[],
  options: GenerateOptions = {},
): AsyncGenerator<GenerationStep, GenerationResult, void> {
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
  const rng = createRng(seed);
  const stopIds = new Set(options.stopIds ?? []);
  const text = options.tokenizer ? new TextStream(options.tokenizer) : undefined;
  const stopper = new StopStringMatcher(options.stopStrings ?? []);
  const chunk = Math.max(1, options.prefillChunk ?? 256);
  const signal = options.signal;

  const history: number[] = [...prompt];
  const generated: number[] = [];
  let outText = '';
  let finishReason: FinishReason = 'length';
  let stopId: number | undefined;
  let stopString: string | undefined;
  let prefillMs = 0;
  let firstTokenMs = 0;
  let decodeMs = 0;
  let decodeSteps = 0;
  let prefilled = 0;
  let completion = 0;

  try {
    // Prefill: only the ids after the cached common prefix.
    let pos = seq.reuse(prompt);
    let logits: Float32Array | undefined;
    const prefillStart = performance.now();
    while (pos < prompt.length) {
      if (signal?.aborted) {
        finishReason = 'abort';
        break;
      }
      const ids = prompt.slice(pos, pos + chunk);
      logits = (await model.forward([{ cache: seq.cache, ids }]))[0];
      seq.appended(ids);
      pos += ids.length;
      prefilled += ids.length;
      if (pos < prompt.length) await yieldToEventLoop();
    }
    prefillMs = performance.now() - prefillStart;

    let steps = 0;
    while (finishReason !== 'abort' && logits !== undefined) {
      if (steps >= maxNew) {
        finishReason = 'length';
        break;
      }
      if (options.vocabLimit !== undefined && options.vocabLimit < logits.length) logits.fill(-Infinity, options.vocabLimit);
      checkFiniteLogits(logits);
      if (options.constraint) await options.constraint.mask(logits);
      const id = sampleToken(logits, history, options, rng);
      options.constraint?.accept(id);
      steps++;
      completion++;
      if (steps === 1) firstTokenMs = performance.now() - start;
      if (stopIds.has(id)) {
        finishReason = 'stop';
        stopId = id;
        break;
      }
      generated.push(id);
      history.push(id);
      let delta = '';
      if (text) {
        const check = stopper.push(text.push(id));
        delta = check.text;
        if (check.stop !== undefined) stopString = check.stop;
      }
      outText += delta;
      yield { id, text: delta };
      if (stopString !== undefined) {
        finishReason = 'stop';
        break;
      }
      if (steps >= maxNew) {
        finishReason = 'length';
        break;
      }
      await yieldToEventLoop();
      if (signal?.aborted) {
        finishReason = 'abort';
        break;
      }
      const t0 = performance.now();
      logits = (await model.forward([{ cache: seq.cache, ids: [id] }]))[0];
      seq.appended([id]);
      decodeMs += performance.now() - t0;
      decodeSteps++;
    }
  } catch (err) {
    // A failed forward step may leave the cache half-written: start the next call from scratch.
    seq.reset();
    throw err;
  }

  if (text && stopString === undefined) {
    const check = stopper.push(text.flush());
    let tail = check.text;
    if (check.stop !== undefined) {
      stopString = check.stop;
      finishReason = 'stop';
    } else {
      tail += stopper.flush();
    }
    if (tail) {
      outText += tail;
      yield { text: tail };
    }
  }
  return {
    ids: generated,
    text: outText,
    ...(stopId !== undefined ? { stopId } : {}),
    ...(stopString !== undefined ? { stopString } : {}),
    finishReason,
    seed,
    usage: {
      prompt_tokens: prompt.length,
      completion_tokens: completion,
      total_tokens: prompt.length + completion,
      prefill_tokens: prefilled,
      prefill_tokens_per_second: prefillMs > 0 ? (prefilled * 1000) / prefillMs : 0,
      decode_tokens_per_second: decodeMs > 0 ? (decodeSteps * 1000) / decodeMs : 0,
      time_to_first_token_ms: firstTokenMs,
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

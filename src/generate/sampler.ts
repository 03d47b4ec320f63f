/**
 * Turning logits into the next token. The order of the steps is Hugging Face's (which ChatGLM's
 * own `chat()` uses): repetition penalty, temperature, top-k, top-p, then a draw from what is left.
 * Probabilities are computed in float64 so the distribution is easy to check by hand.
 */
import { ChatGLMError } from '../errors.js';
import type { Rng } from './rng.js';

export interface SamplingOptions {
  /** Always take the most likely token (after the repetition penalty). Default false. */
  greedy?: boolean;
  /** Divides the logits; <= 1e-5 means greedy (as ChatGLM's OpenAI demo does). Default 1. */
  temperature?: number;
  /** Keep only the k most likely tokens (ties at the k-th value are kept); 0 = off. Default 0. */
  topK?: number;
  /** Keep the smallest set of most likely tokens whose probability reaches p; 1 = off. Default 1. */
  topP?: number;
  /** > 1 discourages tokens already in the sequence: positive logits divided, negative multiplied. Default 1. */
  repetitionPenalty?: number;
}

/** A filtered distribution: candidate ids, most likely first, with probabilities that sum to 1. */
export interface Distribution {
  ids: number[];
  probs: number[];
}

export function validateSampling(o: SamplingOptions): void {
  const bad = (what: string): never => {
    throw new ChatGLMError('BAD_ARGUMENT', `sampling: ${what}`);
  };
  if (o.temperature !== undefined && !(o.temperature >= 0 && Number.isFinite(o.temperature))) bad(`temperature must be >= 0, got ${o.temperature}`);
  if (o.topK !== undefined && !(Number.isInteger(o.topK) && o.topK >= 0)) bad(`top-k must be an integer >= 0, got ${o.topK}`);
  if (o.topP !== undefined && !(o.topP > 0 && o.topP <= 1)) bad(`top-p must be in (0, 1], got ${o.topP}`);
  if (o.repetitionPenalty !== undefined && !(o.repetitionPenalty > 0 && Number.isFinite(o.repetitionPenalty))) {
    bad(`repetition penalty must be > 0, got ${o.repetitionPenalty}`);
  }
}

export function isGreedy(o: SamplingOptions): boolean {
  return o.greedy === true || (o.temperature !== undefined && o.temperature <= 1e-5);
}

/**
 * Returns a penalised copy of `logits` (Hugging Face RepetitionPenaltyLogitsProcessor): every id that
 * occurs in `previous` (prompt and generated ids alike) counts once.
 */
export function applyRepetitionPenalty(logits: Float32Array, previous: readonly number[], penalty: number): Float32Array {
  const out = Float32Array.from(logits);
  if (penalty === 1) return out;
  const seen = new Set<number>();
  for (const id of previous) {
    if (id < 0 || id >= out.length || seen.has(id)) continue;
    seen.add(id);
    const v = out[id]!;
    out[id] = v < 0 ? v * penalty : v / penalty;
  }
  return out;
}

/** Index of the largest value; the lowest index wins ties (as torch.argmax does on CPU). */
export function argmax(x: ArrayLike<number>): number {
  let best = 0;
  let bestV = -Infinity;
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    if (v > bestV) {
      bestV = v;
      best = i;
    }
  }
  return best;
}

/** The distribution the sampler draws from, after every filter (not used on the greedy path). */
export function candidateDistribution(logits: Float32Array, previous: readonly number[], o: SamplingOptions): Distribution {
  const penalised = applyRepetitionPenalty(logits, previous, o.repetitionPenalty ?? 1);
  const temperature = o.temperature ?? 1;
  const n = penalised.length;
  // Sorting all ids only when needed: with top-k we pick the k best first (ties at the boundary kept).
  let order: number[];
  const topK = o.topK ?? 0;
  if (topK > 0 && topK < n) {
    order = topKIndices(penalised, topK);
  } else {
    order = Array.from({ length: n }, (_, i) => i);
  }
  order.sort((a, b) => penalised[b]! - penalised[a]! || a - b);
  // Softmax over the survivors of top-k, of logits / temperature (float64).
  const maxScaled = penalised[order[0]!]! / temperature;
  let probs = order.map((id) => Math.exp(penalised[id]! / temperature - maxScaled));
  let sum = probs.reduce((s, p) => s + p, 0);
  probs = probs.map((p) => p / sum);
  const topP = o.topP ?? 1;
  if (topP < 1) {
    // Hugging Face TopPLogitsWarper: drop a token when it and every less likely token together hold
    // at most 1 - p of the mass; the most likely token always stays.
    let tail = 0;
    let keep = order.length;
    for (let i = order.length - 1; i >= 1; i--) {
      tail += probs[i]!;
      if (tail <= 1 - topP) keep = i;
      else break;
    }
    order = order.slice(0, keep);
    probs = probs.slice(0, keep);
    sum = probs.reduce((s, p) => s + p, 0);
    probs = probs.map((p) => p / sum);
  }
  return { ids: order, probs };
}

/** Ids whose value is at least the k-th largest (so ties at the boundary survive, as in HF). */
function topKIndices(x: Float32Array, k: number): number[] {
  // A sorted copy of the values is simple and fast enough (one typed-array sort per token).
  const sorted = Float32Array.from(x).sort();
  const kth = sorted[sorted.length - k]!;
  const out: number[] = [];
  for (let i = 0; i < x.length; i++) if (x[i]! >= kth) out.push(i);
  return out;
}

/** Inverse-CDF draw: the first candidate whose cumulative probability exceeds u in [0, 1). */
export function drawFrom(dist: Distribution, u: number): number {
  let acc = 0;
  for (let i = 0; i < dist.ids.length; i++) {
    acc += dist.probs[i]!;
    if (u < acc) return dist.ids[i]!;
  }
  return dist.ids[dist.ids.length - 1]!;
}

/** Picks the next token; `previous` is every id of the sequence so far (for the repetition penalty). */
export function sampleToken(logits: Float32Array, previous: readonly number[], o: SamplingOptions, rng: Rng): number {
  if (isGreedy(o)) {
    const p = o.repetitionPenalty ?? 1;
    return argmax(p === 1 ? logits : applyRepetitionPenalty(logits, previous, p));
  }
  return drawFrom(candidateDistribution(logits, previous, o), rng.next());
}

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

/**
 * A filtered distribution: candidate ids with probabilities that sum to 1. With top-k or top-p the
 * ids are ordered most likely first (ties: lower id first); without either they are in id order.
 */
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
  const out = logits.slice();
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

/**
 * The filtered distribution without building per-token JS arrays (a vocabulary has up to 151k
 * ids and this runs for every token): candidate ids, their unnormalised weights, and the order to
 * draw in (positions into `cand`; all of them in id order when no top-k/top-p applies).
 */
interface Filtered {
  cand: Int32Array;
  weight: Float64Array;
  /** Positions into cand/weight, most likely first; undefined = all, in id order. */
  order?: number[];
  total: number;
}

function filter(logits: Float32Array, previous: readonly number[], o: SamplingOptions): Filtered {
  const penalised = (o.repetitionPenalty ?? 1) === 1 ? logits : applyRepetitionPenalty(logits, previous, o.repetitionPenalty!);
  const temperature = o.temperature ?? 1;
  const n = penalised.length;
  const topK = o.topK ?? 0;
  const topP = o.topP ?? 1;
  // Top-k survivors (ties at the k-th value kept), or every id.
  let cand: Int32Array;
  if (topK > 0 && topK < n) {
    cand = topKIndices(penalised, topK);
  } else {
    cand = new Int32Array(n);
    for (let i = 0; i < n; i++) cand[i] = i;
  }
  // Softmax over the candidates of logits / temperature, in float64 (normalised at the end).
  let max = -Infinity;
  for (let j = 0; j < cand.length; j++) max = Math.max(max, penalised[cand[j]!]!);
  const weight = new Float64Array(cand.length);
  let sum = 0;
  let maxW = 0;
  for (let j = 0; j < cand.length; j++) {
    const w = Math.exp((penalised[cand[j]!]! - max) / temperature);
    weight[j] = w;
    sum += w;
    if (w > maxW) maxW = w;
  }
  const byProbability = (a: number, b: number): number => weight[b]! - weight[a]! || cand[a]! - cand[b]!;
  if (topP >= 1) {
    if (topK <= 0) return { cand, weight, total: sum };
    const order = Array.from({ length: cand.length }, (_, j) => j).sort(byProbability);
    return { cand, weight, order, total: sum };
  }
  // Hugging Face TopPLogitsWarper: a token goes when it and every less likely token together hold
  // at most 1 - p of the mass. So, most likely first, a token stays while the mass before it is
  // below p (the most likely token always stays). Only the head needs sorting: if the tokens of
  // probability >= t already hold p, every token below t goes. Lower t until that holds.
  const need = topP * sum;
  let threshold = 1e-3 * maxW;
  for (;;) {
    const head: number[] = [];
    let mass = 0;
    for (let j = 0; j < cand.length; j++) {
      if (weight[j]! >= threshold) {
        head.push(j);
        mass += weight[j]!;
      }
    }
    if (mass >= need || threshold === 0) {
      head.sort(byProbability);
      let before = 0;
      let keep = 0;
      while (keep < head.length && (keep === 0 || before < need)) before += weight[head[keep++]!]!;
      return { cand, weight, order: head.slice(0, keep), total: before };
    }
    threshold = threshold > 1e-300 ? threshold * 1e-4 : 0;
  }
}

/** The distribution the sampler draws from, after every filter (not used on the greedy path). */
export function candidateDistribution(logits: Float32Array, previous: readonly number[], o: SamplingOptions): Distribution {
  const f = filter(logits, previous, o);
  const order = f.order ?? Array.from({ length: f.cand.length }, (_, j) => j);
  return { ids: order.map((j) => f.cand[j]!), probs: order.map((j) => f.weight[j]! / f.total) };
}

/** Ids whose value is at least the k-th largest (so ties at the boundary survive, as in HF). */
function topKIndices(x: Float32Array, k: number): Int32Array {
  let kth: number;
  if (k <= 256) {
    // The k largest values so far, ascending; most values fail the first comparison.
    const best = new Float64Array(k).fill(-Infinity);
    for (let i = 0; i < x.length; i++) {
      const v = x[i]!;
      if (v <= best[0]!) continue;
      let p = 1;
      while (p < k && best[p]! < v) {
        best[p - 1] = best[p]!;
        p++;
      }
      best[p - 1] = v;
    }
    kth = best[0]!;
  } else {
    const sorted = x.slice().sort();
    kth = sorted[sorted.length - k]!;
  }
  let count = 0;
  for (let i = 0; i < x.length; i++) if (x[i]! >= kth) count++;
  const out = new Int32Array(count);
  let c = 0;
  for (let i = 0; i < x.length; i++) if (x[i]! >= kth) out[c++] = i;
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
  const f = filter(logits, previous, o);
  const target = rng.next() * f.total;
  let acc = 0;
  const count = f.order ? f.order.length : f.cand.length;
  for (let k = 0; k < count; k++) {
    const j = f.order ? f.order[k]! : k;
    acc += f.weight[j]!;
    if (target < acc) return f.cand[j]!;
  }
  return f.cand[f.order ? f.order[count - 1]! : count - 1]!;
}

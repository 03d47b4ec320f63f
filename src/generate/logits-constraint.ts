/**
 * The sampler's grammar hook: before each token is drawn, a constraint removes the ids it does
 * not allow (their logits become -Infinity); after the draw it is told which id was taken.
 * Masking only removes candidates, so when the unconstrained greedy choice is allowed it stays
 * the greedy choice.
 */

export interface LogitsConstraint {
  /** Sets the logits of disallowed ids to -Infinity (in place). */
  mask(logits: Float32Array): void | Promise<void>;
  /** Advances past the id that was sampled (stop ids included). */
  accept(id: number): void;
}

/**
 * Keeps only the ids whose bit is set in `bitmask` (bit i&31 of word i>>5, xgrammar's layout);
 * ids beyond the mask's words are removed too (rows a checkpoint pads past its tokenizer).
 */
export function applyTokenBitmask(logits: Float32Array, bitmask: Int32Array): void {
  const n = logits.length;
  const words = Math.min(bitmask.length, Math.ceil(n / 32));
  // Runs of all-zero words are filled in one call: a mask often allows a handful of ids.
  let zeroFrom = -1;
  for (let w = 0; w < words; w++) {
    const bits = bitmask[w]!;
    if (bits === 0) {
      if (zeroFrom < 0) zeroFrom = w;
      continue;
    }
    if (zeroFrom >= 0) {
      logits.fill(-Infinity, zeroFrom * 32, w * 32);
      zeroFrom = -1;
    }
    if (bits === -1) continue;
    const base = w * 32;
    const end = Math.min(base + 32, n);
    for (let i = base; i < end; i++) if (((bits >>> (i - base)) & 1) === 0) logits[i] = -Infinity;
  }
  logits.fill(-Infinity, (zeroFrom >= 0 ? zeroFrom : words) * 32);
}

/** A constraint that holds resources (a matcher) until disposed. */
export interface DisposableConstraint extends LogitsConstraint {
  dispose(): void;
}

/** Makes a fresh constraint for one generation (the grammar is compiled beforehand). */
export type ConstraintFactory = () => Promise<DisposableConstraint>;

/**
 * NaN or +Inf in the logits means the forward pass produced garbage, almost always from corrupt
 * weights or a file whose quantization type does not match its bytes. Without this check greedy
 * decoding emits id 0 forever (NaN compares false) and sampling returns undefined. One pass over
 * the row per token: cheap next to the forward pass that produced it.
 */
import { ChatGLMError } from '../errors.js';

/** Throws NON_FINITE unless `logits[0, limit)` has no NaN/+Inf and at least one finite value (-Inf marks banned ids). */
export function checkFiniteLogits(logits: Float32Array, limit = logits.length): void {
  const n = Math.min(limit, logits.length);
  let finite = false;
  for (let i = 0; i < n; i++) {
    const v = logits[i]!;
    // v !== v is NaN; -Infinity is allowed (ids masked out on purpose).
    if (v !== v || v === Infinity) throw nonFinite(v !== v ? 'NaN' : 'Infinity', i);
    if (v !== -Infinity) finite = true;
  }
  if (!finite && n > 0) throw nonFinite('-Infinity for every id', 0);
}

function nonFinite(what: string, id: number): ChatGLMError {
  return new ChatGLMError(
    'NON_FINITE',
    `the model produced ${what} in its output (logit of id ${id}); the weights are likely corrupt or quantized with a type that does not match the file: re-download or re-convert the model`,
  );
}

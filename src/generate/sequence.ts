/**
 * A sequence whose KV cache outlives one generation (a conversation). The next prompt reuses the
 * longest common prefix with what is cached and only the rest runs through the model: for a chat,
 * the second turn prefills just the new user message instead of the whole history.
 */
import { ChatGLMError } from '../errors.js';
import type { KVCache } from '../backend/types.js';

export class CachedSequence {
  /** The ids whose keys/values are in the cache, position by position. */
  private cached: number[] = [];
  /**
   * Positions a fresh cache already holds before any id (a P-Tuning v2 prefix); they are part of
   * every sequence and never truncated.
   */
  private readonly base: number;

  /** `cache` must be fresh (as the model's newCache returns it). */
  constructor(readonly cache: KVCache) {
    this.base = cache.length;
  }

  /** Ids the cache can hold. */
  get capacity(): number {
    return this.cache.capacity - this.base;
  }

  get ids(): readonly number[] {
    return this.cached;
  }

  /**
   * Keeps the longest common prefix of the cache and `prompt`, drops the rest, and returns how many
   * prompt ids are already cached. At least one prompt id is always left to run, because the
   * logits for the next token come from the last prompt position.
   */
  reuse(prompt: readonly number[]): number {
    const limit = Math.min(this.cached.length, prompt.length, this.cache.length - this.base);
    let n = 0;
    while (n < limit && this.cached[n] === prompt[n]) n++;
    if (n === prompt.length) n = Math.max(0, n - 1);
    this.cache.truncate(this.base + n);
    this.cached.length = n;
    return n;
  }

  /** Records ids that were just run through the model (and are now in the cache). */
  appended(ids: readonly number[]): void {
    for (const id of ids) this.cached.push(id);
  }

  /**
   * Records that the cache, emptied to its base, now holds `ids` (its keys/values were written
   * straight into the storage, e.g. restored from a prompt cache file).
   */
  adopt(ids: readonly number[]): void {
    if (this.cached.length !== 0 || this.cache.length !== this.base + ids.length) {
      throw new ChatGLMError('BAD_ARGUMENT', `CachedSequence.adopt: the cache holds ${this.cache.length - this.base} positions, not the ${ids.length} ids given`);
    }
    this.cached = [...ids];
  }

  /** Forgets everything (after an error left the cache in an unknown state, or on /reset). */
  reset(): void {
    this.cache.truncate(this.base);
    this.cached = [];
  }
}

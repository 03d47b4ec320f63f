/**
 * Slots: N sequences, each with its own KV cache, served together by one BatchScheduler. A
 * request takes the idle slot whose cache holds the longest common prefix with its prompt (so a
 * multi-turn client prefills only its new tokens; see pick() for when a prefix counts), else the
 * least recently used one; when all are
 * busy it waits in a bounded queue, and a full queue is a 503 with Retry-After. When another idle
 * slot holds a longer prefix of the prompt than the chosen one (a tools system prompt that a new
 * conversation shares with an old one), its keys/values are copied into the chosen slot first, so
 * a shared prefix is prefilled once per server, not once per conversation.
 */
import { ChatGLMError } from '../errors.js';
import { BatchScheduler, type BatchLane } from '../generate/batch-scheduler.js';
import { copySequencePrefix } from '../generate/prompt-cache.js';
import { CachedSequence } from '../generate/sequence.js';
import type { CausalLM } from '../generate/types.js';
import { HttpError } from './errors.js';

export interface Slot {
  readonly index: number;
  readonly lane: BatchLane;
  readonly sequence: CachedSequence;
  busy: boolean;
  lastUsed: number;
}

interface Waiter {
  prompt: readonly number[];
  resolve: (slot: Slot) => void;
  reject: (err: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: () => void;
}

export interface SlotPoolOptions {
  slots: number;
  /** Positions each slot's cache holds (prompt + reply). */
  contextSize: number;
  /** Requests that may wait for a slot; more get a 503. */
  maxQueue: number;
  prefillBudget?: number;
  /** Called once per finished step of a sequence (a token is sampled after each). */
  onSampled?: () => void;
  /**
   * Fewest prompt ids a copy from another idle slot must add to what the chosen slot already
   * holds. Default 32: a shorter shared prefix (the template's few header tokens) is cheaper to
   * prefill than to look for.
   */
  minSharedPrefix?: number;
}

/** Ids `a` and `b` have in common from the start. */
function commonPrefix(a: readonly number[], b: readonly number[]): number {
  let n = 0;
  while (n < a.length && n < b.length && a[n] === b[n]) n++;
  return n;
}

export class SlotPool {
  readonly scheduler: BatchScheduler;
  readonly slots: Slot[];
  readonly contextSize: number;
  private readonly maxQueue: number;
  private readonly waiting: Waiter[] = [];
  private readonly minSharedPrefix: number;
  private clock = 0;
  /** Prompt ids whose keys/values were copied from another slot instead of being prefilled. */
  sharedPrefixTokens = 0;

  constructor(model: CausalLM, options: SlotPoolOptions) {
    this.scheduler = new BatchScheduler(model, {
      ...(options.prefillBudget !== undefined ? { prefillBudget: options.prefillBudget } : {}),
      ...(options.onSampled !== undefined ? { onResolved: options.onSampled } : {}),
    });
    this.contextSize = options.contextSize;
    this.maxQueue = options.maxQueue;
    this.minSharedPrefix = options.minSharedPrefix ?? 32;
    this.slots = Array.from({ length: options.slots }, (_, index) => {
      const lane = this.scheduler.lane();
      return { index, lane, sequence: new CachedSequence(lane.newCache(options.contextSize)), busy: false, lastUsed: 0 };
    });
  }

  get busyCount(): number {
    return this.slots.filter((s) => s.busy).length;
  }

  get queueDepth(): number {
    return this.waiting.length;
  }

  /** A slot for `prompt`, now or when one frees up; the slot's lane is busy until release(). */
  acquire(prompt: readonly number[], signal?: AbortSignal): Promise<Slot> {
    if (signal?.aborted === true) return Promise.reject(new ChatGLMError('ABORTED', 'the request was aborted'));
    const slot = this.pick(prompt);
    if (slot !== undefined) return Promise.resolve(this.take(slot, prompt, signal));
    if (this.waiting.length >= this.maxQueue) {
      return Promise.reject(
        new HttpError(503, 'unavailable_error', 'queue_full', `all ${this.slots.length} slots are busy and ${this.maxQueue} requests are already waiting; retry shortly`, {}, { 'retry-after': '1' }),
      );
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        prompt,
        resolve,
        reject,
        signal,
        onAbort: () => {
          const i = this.waiting.indexOf(waiter);
          if (i >= 0) this.waiting.splice(i, 1);
          reject(new ChatGLMError('ABORTED', 'the request was aborted'));
        },
      };
      signal?.addEventListener('abort', waiter.onAbort, { once: true });
      this.waiting.push(waiter);
    });
  }

  release(slot: Slot): void {
    slot.lane.end();
    slot.busy = false;
    const next = this.waiting.shift();
    if (next === undefined) return;
    next.signal?.removeEventListener('abort', next.onAbort);
    next.resolve(this.take(this.pick(next.prompt)!, next.prompt, next.signal));
  }

  /** Rejects every waiting request (shutdown). */
  rejectWaiting(err: unknown): void {
    for (const w of this.waiting.splice(0)) {
      w.signal?.removeEventListener('abort', w.onAbort);
      w.reject(err);
    }
  }

  private take(slot: Slot, prompt: readonly number[], signal: AbortSignal | undefined): Slot {
    slot.busy = true;
    slot.lastUsed = ++this.clock;
    this.sharePrefix(slot, prompt);
    slot.lane.begin(signal);
    return slot;
  }

  /**
   * Copies into `slot` the longest prefix of `prompt` that another idle slot holds, when it is
   * longer than what `slot` holds by at least minSharedPrefix ids. Only idle slots are sources: a
   * busy slot's cache is rewritten while it generates (its ids are truncated and extended by its own
   * request). The copy runs synchronously here, between the scheduler's forward steps, and the
   * source keeps its contents, so its own conversation still continues from its slot.
   */
  private sharePrefix(slot: Slot, prompt: readonly number[]): void {
    const have = commonPrefix(slot.sequence.ids, prompt);
    let source: Slot | undefined;
    let best = have;
    for (const other of this.slots) {
      if (other === slot || other.busy) continue;
      const n = commonPrefix(other.sequence.ids, prompt);
      if (n > best) {
        source = other;
        best = n;
      }
    }
    if (source === undefined || best - have < this.minSharedPrefix) return;
    this.sharedPrefixTokens += copySequencePrefix(source.sequence, slot.sequence, best);
  }

  /**
   * The idle slot with the longest cached prefix of `prompt`, when that prefix covers more than a
   * tenth of the prompt (llama-server's rule) and at least half of what the slot holds (the request
   * continues that slot's conversation); else the least recently used idle slot. So a shared
   * template header alone does not send a new conversation into a slot holding another one's history.
   */
  private pick(prompt: readonly number[]): Slot | undefined {
    let best: Slot | undefined;
    let bestLen = 0;
    let lru: Slot | undefined;
    for (const slot of this.slots) {
      if (slot.busy) continue;
      if (lru === undefined || slot.lastUsed < lru.lastUsed) lru = slot;
      const ids = slot.sequence.ids;
      let n = 0;
      while (n < ids.length && n < prompt.length && ids[n] === prompt[n]) n++;
      if (n > bestLen && n > 0.1 * prompt.length && 2 * n >= ids.length) {
        best = slot;
        bestLen = n;
      }
    }
    return best ?? lru;
  }
}

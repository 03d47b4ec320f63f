/**
 * Continuous batching: many sequences, one forward step per tick.
 *
 * Each sequence talks to the model through a `BatchLane`, a BatchedCausalLM whose forward() only
 * queues the ids and resolves when they have run. A tick gathers every queued step into ONE
 * model.forward call: the next token of every generating sequence plus a chunk of any pending
 * prompt (at most `prefillBudget` prompt ids per tick, so a long prompt spans ticks while the
 * others keep generating). The linear layers then read their weights once for all rows;
 * attention runs per sequence on its own cache.
 *
 * Batching does not change results: GLMModel.forward computes every row as the single-sequence
 * path does (row-wise matmul kernels, per-sequence attention), and splitting a prompt into chunks
 * gives the same logits as running it whole (test/server-batching.test.ts checks both, bit for bit).
 *
 * A tick waits until every lane that is `busy` (generating for a request) has queued its next
 * step, so the sequences move in lockstep and share each pass over the weights; a lane that does
 * not queue within `maxWaitMs` (its consumer is slow) is left for the next tick.
 */
import { ChatGLMError } from '../errors.js';
import type { KVCache } from '../backend/types.js';
import type { BatchedCausalLM, CausalLM, ForwardInput } from './types.js';

export interface BatchSchedulerOptions {
  /** Prompt ids per tick over all sequences (decode rows are not counted). Default 128. */
  prefillBudget?: number;
  /** How long a tick waits for busy lanes that have not queued yet. Default 2 ms. */
  maxWaitMs?: number;
  /** Called for every step that finished (the sequence samples its next token from it). */
  onResolved?: () => void;
}

export interface BatchStats {
  /** Forward steps run. */
  ticks: number;
  /** Rows over all ticks (tokens that ran through the model). */
  rows: number;
  /** Sequences over all ticks (ticks x batch width). */
  sequences: number;
  /** Milliseconds spent inside model.forward. */
  forwardMs: number;
}

interface Job {
  lane: BatchLane;
  cache: KVCache;
  ids: readonly number[];
  /** Ids of `ids` already run. */
  done: number;
  resolve: (logits: Float32Array[]) => void;
  reject: (err: unknown) => void;
}

export class BatchScheduler {
  readonly stats: BatchStats = { ticks: 0, rows: 0, sequences: 0, forwardMs: 0 };
  private readonly queue: Job[] = [];
  private readonly lanes = new Set<BatchLane>();
  private readonly prefillBudget: number;
  private readonly maxWaitMs: number;
  private readonly onResolved: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private closed = false;

  constructor(
    readonly model: CausalLM,
    options: BatchSchedulerOptions = {},
  ) {
    this.prefillBudget = Math.max(1, options.prefillBudget ?? 128);
    this.maxWaitMs = Math.max(0, options.maxWaitMs ?? 2);
    this.onResolved = options.onResolved;
  }

  /** A new lane: one sequence's way into the batch. */
  lane(): BatchLane {
    const lane = new BatchLane(this);
    this.lanes.add(lane);
    return lane;
  }

  /** Jobs waiting for a tick. */
  get pending(): number {
    return this.queue.length;
  }

  /** Rejects queued work and refuses new work (server shutdown). */
  close(): void {
    this.closed = true;
    this.clearTimers();
    for (const job of this.queue.splice(0)) job.reject(new ChatGLMError('ABORTED', 'the server is shutting down'));
  }

  /** @internal */
  enqueue(job: Job): void {
    if (this.closed) {
      job.reject(new ChatGLMError('ABORTED', 'the server is shutting down'));
      return;
    }
    if (this.queue.some((j) => j.cache === job.cache)) {
      job.reject(new ChatGLMError('BAD_ARGUMENT', 'batch: a sequence queued a step before its previous one finished'));
      return;
    }
    const free = job.cache.capacity - job.cache.length;
    if (job.ids.length === 0 || job.ids.length > free) {
      job.reject(
        job.ids.length === 0
          ? new ChatGLMError('BAD_ARGUMENT', 'forward: a sequence needs at least one token')
          : new ChatGLMError('CONTEXT_OVERFLOW', `the context is full: ${job.ids.length} new tokens do not fit the ${free} positions left; use a larger context`),
      );
      return;
    }
    this.queue.push(job);
    this.schedule();
  }

  /** @internal A lane stopped waiting (abort): drop its queued step. */
  cancel(lane: BatchLane, reason: unknown): void {
    const i = this.queue.findIndex((j) => j.lane === lane);
    if (i >= 0) this.queue.splice(i, 1)[0]!.reject(reason);
  }

  /** @internal */
  changed(): void {
    if (this.queue.length > 0) this.schedule();
  }

  /** @internal */
  dropLane(lane: BatchLane): void {
    this.lanes.delete(lane);
    this.changed();
  }

  private schedule(): void {
    if (this.immediate !== undefined) return;
    let waiting = 0;
    for (const lane of this.lanes) if (lane.busy && !this.queue.some((j) => j.lane === lane)) waiting++;
    if (waiting === 0 || this.maxWaitMs === 0) {
      this.clearTimers();
      this.immediate = setImmediate(() => this.tick());
    } else {
      this.timer ??= setTimeout(() => {
        this.timer = undefined;
        if (this.immediate === undefined) this.immediate = setImmediate(() => this.tick());
      }, this.maxWaitMs);
    }
  }

  private clearTimers(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.immediate !== undefined) clearImmediate(this.immediate);
    this.timer = undefined;
    this.immediate = undefined;
  }

  /** One forward step over every queued job: decode rows first, then prompt chunks within the budget. */
  private tick(): void {
    this.clearTimers();
    if (this.queue.length === 0) return;
    const batch: { job: Job; n: number }[] = [];
    let budget = this.prefillBudget;
    // Decode steps (one id) always go; prompts share the budget in arrival order.
    for (const job of this.queue) if (job.ids.length - job.done === 1) batch.push({ job, n: 1 });
    for (const job of this.queue) {
      const left = job.ids.length - job.done;
      if (left === 1 || budget === 0) continue;
      const n = Math.min(left, budget);
      budget -= n;
      batch.push({ job, n });
    }
    const inputs: ForwardInput[] = batch.map(({ job, n }) => ({ cache: job.cache, ids: job.ids.slice(job.done, job.done + n) }));
    const t0 = performance.now();
    let logits: Float32Array[];
    try {
      logits = this.model.forward(inputs);
    } catch (err) {
      // The caches of this step may be half-written: fail every job in it (generate() resets them).
      for (const { job } of batch) this.remove(job).reject(err);
      this.changed();
      return;
    }
    this.stats.forwardMs += performance.now() - t0;
    this.stats.ticks++;
    this.stats.sequences += batch.length;
    for (const input of inputs) this.stats.rows += input.ids.length;
    batch.forEach(({ job, n }, i) => {
      job.done += n;
      if (job.done === job.ids.length) {
        this.remove(job).resolve([logits[i]!]);
        this.onResolved?.();
      }
    });
    this.changed();
  }

  private remove(job: Job): Job {
    const i = this.queue.indexOf(job);
    if (i >= 0) this.queue.splice(i, 1);
    return job;
  }
}

/**
 * One sequence's handle on the scheduler, usable wherever generate() takes a model. `busy` tells
 * the scheduler to wait for this lane's next step before starting a tick.
 */
export class BatchLane implements BatchedCausalLM {
  private active = false;
  private signal: AbortSignal | undefined;
  private readonly onAbort = (): void => {
    this.scheduler.cancel(this, new ChatGLMError('ABORTED', 'the request was aborted'));
  };

  constructor(private readonly scheduler: BatchScheduler) {}

  get config(): CausalLM['config'] {
    return this.scheduler.model.config;
  }

  get busy(): boolean {
    return this.active;
  }

  newCache(capacity?: number): KVCache {
    return this.scheduler.model.newCache(capacity);
  }

  /**
   * Marks the lane as generating (ticks wait for it) until `end()`. An abort of `signal` drops its
   * queued step at once: the pending forward() rejects with ABORTED.
   */
  begin(signal?: AbortSignal): void {
    this.end();
    this.active = true;
    this.signal = signal;
    signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  end(): void {
    this.signal?.removeEventListener('abort', this.onAbort);
    this.signal = undefined;
    if (this.active) {
      this.active = false;
      this.scheduler.changed();
    }
  }

  /** Leaves the scheduler for good. */
  close(): void {
    this.end();
    this.scheduler.dropLane(this);
  }

  forward(inputs: ForwardInput[]): Promise<Float32Array[]> {
    if (inputs.length !== 1 || inputs[0]!.allLogits === true) {
      return Promise.reject(new ChatGLMError('BAD_ARGUMENT', 'a batch lane runs one sequence and returns the logits of its last token'));
    }
    if (this.signal?.aborted === true) return Promise.reject(new ChatGLMError('ABORTED', 'the request was aborted'));
    const input = inputs[0]!;
    return new Promise((resolve, reject) => {
      this.scheduler.enqueue({ lane: this, cache: input.cache, ids: input.ids, done: 0, resolve, reject });
    });
  }
}

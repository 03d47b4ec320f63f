/**
 * Server counters in the Prometheus text format (GET /metrics): requests, prompt and generated
 * tokens, recent generation speed, queue depth, busy slots, time to first token, batch widths.
 */
import type { BatchStats } from '../generate/batch-scheduler.js';

const TTFT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Window over which chatglm_tokens_per_second is measured. */
const RATE_WINDOW_MS = 10_000;

export class ServerMetrics {
  private readonly requests = new Map<string, number>();
  promptTokens = 0;
  cachedPromptTokens = 0;
  generatedTokens = 0;
  private readonly ttftCounts = new Array<number>(TTFT_BUCKETS.length).fill(0);
  private ttftSum = 0;
  private ttftCount = 0;
  /** Timestamps (ms) of recently generated tokens, bucketed per 100 ms. */
  private readonly recent = new Map<number, number>();

  request(endpoint: string, status: number): void {
    const key = `endpoint="${endpoint}",status="${status}"`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
  }

  firstToken(seconds: number): void {
    this.ttftSum += seconds;
    this.ttftCount++;
    TTFT_BUCKETS.forEach((b, i) => {
      if (seconds <= b) this.ttftCounts[i]!++;
    });
  }

  token(now = performance.now()): void {
    this.generatedTokens++;
    const bucket = Math.floor(now / 100);
    this.recent.set(bucket, (this.recent.get(bucket) ?? 0) + 1);
  }

  tokensPerSecond(now = performance.now()): number {
    const oldest = Math.floor((now - RATE_WINDOW_MS) / 100);
    let n = 0;
    for (const [bucket, count] of this.recent) {
      if (bucket < oldest) this.recent.delete(bucket);
      else n += count;
    }
    return n / (RATE_WINDOW_MS / 1000);
  }

  render(state: { queueDepth: number; busySlots: number; slots: number; batch: BatchStats; sharedPrefixTokens?: number }): string {
    const lines: string[] = [];
    const metric = (name: string, type: string, help: string, values: [string, number][]): void => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, v] of values) lines.push(`${name}${labels ? `{${labels}}` : ''} ${v}`);
    };
    metric('chatglm_requests_total', 'counter', 'HTTP requests answered, by endpoint and status.', [...this.requests.entries()]);
    metric('chatglm_prompt_tokens_total', 'counter', 'Prompt tokens of completed requests (cached ones included).', [['', this.promptTokens]]);
    metric('chatglm_prompt_tokens_cached_total', 'counter', 'Prompt tokens taken from a slot\'s KV cache instead of being run again.', [['', this.cachedPromptTokens]]);
    metric('chatglm_prompt_tokens_shared_total', 'counter', 'Prompt tokens whose keys/values were copied from another idle slot holding the same prefix (counted in the cached total too).', [['', state.sharedPrefixTokens ?? 0]]);
    metric('chatglm_generated_tokens_total', 'counter', 'Tokens generated.', [['', this.generatedTokens]]);
    metric('chatglm_tokens_per_second', 'gauge', `Tokens generated per second over the last ${RATE_WINDOW_MS / 1000} s, all slots together.`, [['', this.tokensPerSecond()]]);
    metric('chatglm_queue_depth', 'gauge', 'Requests waiting for a free slot.', [['', state.queueDepth]]);
    metric('chatglm_slots_busy', 'gauge', 'Slots generating for a request.', [['', state.busySlots]]);
    metric('chatglm_slots_total', 'gauge', 'Slots (sequences decoded together).', [['', state.slots]]);
    metric('chatglm_batch_ticks_total', 'counter', 'Forward steps run (each covers every active sequence).', [['', state.batch.ticks]]);
    metric('chatglm_batch_sequences_total', 'counter', 'Sequences over all forward steps (divide by ticks for the mean batch width).', [['', state.batch.sequences]]);
    metric('chatglm_batch_rows_total', 'counter', 'Token rows over all forward steps.', [['', state.batch.rows]]);
    metric('chatglm_forward_seconds_total', 'counter', 'Time spent in forward steps.', [['', state.batch.forwardMs / 1000]]);
    lines.push('# HELP chatglm_time_to_first_token_seconds Time from request arrival to its first generated token.');
    lines.push('# TYPE chatglm_time_to_first_token_seconds histogram');
    TTFT_BUCKETS.forEach((b, i) => lines.push(`chatglm_time_to_first_token_seconds_bucket{le="${b}"} ${this.ttftCounts[i]}`));
    lines.push(`chatglm_time_to_first_token_seconds_bucket{le="+Inf"} ${this.ttftCount}`);
    lines.push(`chatglm_time_to_first_token_seconds_sum ${this.ttftSum}`);
    lines.push(`chatglm_time_to_first_token_seconds_count ${this.ttftCount}`);
    return lines.join('\n') + '\n';
  }
}

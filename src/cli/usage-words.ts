/**
 * --verbose: a reply's token counts and speed in words, one fact per line, like `ollama run
 * --verbose` (--stats prints the same numbers as JSON for scripts).
 */
import type { GenerationUsage } from '../generate/types.js';

function rate(tokensPerSecond: number): string {
  return Number.isFinite(tokensPerSecond) && tokensPerSecond > 0 ? `${tokensPerSecond.toFixed(2)} tokens/s` : 'n/a';
}

export function usageInWords(usage: GenerationUsage, totalMs: number, finishReason?: string): string {
  const cached = usage.prompt_tokens - usage.prefill_tokens;
  const lines = [
    `total duration:       ${(totalMs / 1000).toFixed(2)} s`,
    `prompt tokens:        ${usage.prompt_tokens}${cached > 0 ? ` (${cached} reused from the cache, ${usage.prefill_tokens} run)` : ''}`,
    `prompt rate:          ${usage.prefill_tokens > 0 ? rate(usage.prefill_tokens_per_second) : 'n/a (all from the cache)'}`,
    `time to first token:  ${(usage.time_to_first_token_ms / 1000).toFixed(2)} s`,
    `reply tokens:         ${usage.completion_tokens}`,
    `reply rate:           ${rate(usage.decode_tokens_per_second)}`,
  ];
  if (finishReason !== undefined) lines.push(`finished because:     ${finishReason === 'length' ? 'length (the token limit)' : finishReason}`);
  return lines.join('\n') + '\n';
}

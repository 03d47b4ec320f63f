/**
 * `--prompt-cache FILE` for the CLI commands: before the first prompt, the file's prefix is
 * restored into the sequence the command generates with; after it, the prompt's keys/values are
 * written back when the file did not already hold that whole prompt. A file that cannot be used
 * is reported on one line and then overwritten.
 */
import type { Command } from 'commander';
import type { LoadChatModelOptions } from '../api.js';
import type { CausalLM } from '../generate/types.js';
import { CachedSequence } from '../generate/sequence.js';
import { loadPromptCache, modelIdentity, savePromptCache } from '../generate/prompt-cache.js';

export interface PromptCacheCliOption {
  promptCache?: string;
}

export function addPromptCacheOption(cmd: Command): Command {
  return cmd.option('--prompt-cache <file>', "keep the prompt's KV cache in FILE and reuse its longest common prefix next time (e.g. a long tools system prompt)");
}

export class CliPromptCache {
  private constructor(
    readonly file: string,
    readonly sequence: CachedSequence,
    private readonly identity: string,
    /** The ids the file holds (after a successful load or save). */
    private held: readonly number[],
  ) {}

  /** Opens the cache for `model` (loaded from `modelPath` with `load`); prints a notice for a file it cannot use. */
  static async open(file: string, modelPath: string, load: LoadChatModelOptions, model: CausalLM, contextLength: number, warn: (line: string) => void): Promise<CliPromptCache> {
    // Options that change the cached numbers are part of the key; the backend's element type is checked by the file's layout.
    const identity = await modelIdentity(modelPath, `quantize=${load.quantize ?? 'none'}`);
    const sequence = new CachedSequence(model.newCache(contextLength));
    const r = await loadPromptCache(file, sequence, identity);
    if (r.notice !== undefined) warn(`chatglm: ${r.notice}`);
    return new CliPromptCache(file, sequence, identity, sequence.ids.slice());
  }

  /** Saves the first `n` ids the sequence holds (the first prompt, when only its length is known). */
  async saveFirst(n: number): Promise<void> {
    await this.afterPrompt(this.sequence.ids.slice(0, n));
  }

  /** After a reply to `promptIds`: saves the prompt's keys/values unless the file holds exactly them already. */
  async afterPrompt(promptIds: readonly number[]): Promise<void> {
    const ids = this.sequence.ids;
    if (ids.length < promptIds.length || promptIds.some((id, i) => ids[i] !== id)) return;
    if (this.held.length === promptIds.length && promptIds.every((id, i) => this.held[i] === id)) return;
    await savePromptCache(this.file, this.sequence, this.identity, promptIds.length);
    this.held = promptIds.slice();
  }
}

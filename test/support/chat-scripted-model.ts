/**
 * A stand-in model whose "logits" spell out a fixed script of ids, one per step, whatever the
 * input; it records every id it is fed. For testing the loop around the model (streaming,
 * stop rules, chat parsing, prefill counts) with outputs chosen by the test.
 */
import type { KVCache } from '../../src/backend/types.js';
import type { CausalLM, ForwardInput } from '../../src/generate/types.js';

/** A KV cache that only counts positions: for stand-in models that compute nothing. */
export class CountingCache implements KVCache {
  readonly layers = 1;
  readonly groups = 1;
  readonly headDim = 1;
  length = 0;
  constructor(readonly capacity: number) {}
  truncate(n: number): void {
    if (n < this.length) this.length = n;
  }
}

export class ScriptedModel implements CausalLM {
  readonly config: { seqLength: number; vocabSize: number };
  /** Every forward call's ids, in order. */
  readonly fed: number[][] = [];
  private step = 0;
  private awaitingFeed = false;

  constructor(private script: number[], readonly vocab: number, seqLength = 4096) {
    this.config = { seqLength, vocabSize: vocab };
  }

  /** Replaces the script for the next generation. */
  setScript(script: number[]): void {
    this.script = script;
    this.step = 0;
    this.awaitingFeed = false;
  }

  newCache(capacity?: number): KVCache {
    return new CountingCache(capacity ?? this.config.seqLength);
  }

  forward(inputs: ForwardInput[]): Float32Array[] {
    return inputs.map((inp) => {
      if (inp.cache.length + inp.ids.length > inp.cache.capacity) throw new Error('KV cache overflow');
      inp.cache.length += inp.ids.length;
      this.fed.push([...inp.ids]);
      // The script advances when its previous id is fed back (a decode step); prefill calls,
      // however many chunks, all point at the script's current id.
      if (inp.ids.length === 1 && this.step < this.script.length && inp.ids[0] === this.script[this.step] && this.awaitingFeed) {
        this.step++;
      }
      this.awaitingFeed = true;
      const logits = new Float32Array(this.vocab).fill(-10);
      logits[this.script[Math.min(this.step, this.script.length - 1)]!] = 10;
      return logits;
    });
  }
}

/**
 * Incremental detokenization on the tokenizer's own stream decoder, which emits text only once a
 * UTF-8 character is complete, so a delta never carries half a character. The deltas of a
 * generation add up to decode(all generated ids) (the tokenizers implement decode with the same
 * stream decoder). A trailing high surrogate is held back too, so that no JavaScript string delta
 * ends in half a UTF-16 pair.
 */
import type { StreamDecoder, Tokenizer } from '../tokenizer/types.js';

export class TextStream {
  private readonly decoder: StreamDecoder;
  private held = '';
  private emitted = '';

  constructor(tokenizer: Tokenizer) {
    this.decoder = tokenizer.createStreamDecoder();
  }

  /** Adds one id; returns the newly completed text ('' while a character is still incomplete). */
  push(id: number): string {
    return this.release(this.decoder.push(id), false);
  }

  /** Whatever is still held back (an incomplete character at the very end of a generation). */
  flush(): string {
    return this.release(this.decoder.flush(), true);
  }

  /** All text emitted so far. */
  get text(): string {
    return this.emitted;
  }

  private release(delta: string, final: boolean): string {
    let out = this.held + delta;
    this.held = '';
    if (!final && out.length > 0) {
      const c = out.charCodeAt(out.length - 1);
      if (c >= 0xd800 && c <= 0xdbff) {
        this.held = out.slice(-1);
        out = out.slice(0, -1);
      }
    }
    this.emitted += out;
    return out;
  }
}

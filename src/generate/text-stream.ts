/**
 * Incremental detokenization. The text of a generation is always decode(all generated ids), exactly
 * what a non-streaming call returns; each step emits the part that is new. Text that ends in an
 * incomplete UTF-8 sequence (U+FFFD at the end, as Hugging Face checks) is held back until the
 * character is complete, so a delta never carries half a character.
 */
import type { Tokenizer } from '../tokenizer/types.js';

export class TextStream {
  private readonly ids: number[] = [];
  private emitted = '';

  constructor(private readonly tokenizer: Tokenizer) {}

  /** Adds one id; returns the newly completed text ('' while a character is still incomplete). */
  push(id: number): string {
    this.ids.push(id);
    const text = this.tokenizer.decode(this.ids);
    if (text.endsWith('\uFFFD')) return '';
    return this.advance(text);
  }

  /** Whatever is still held back (an incomplete character at the very end of a generation). */
  flush(): string {
    return this.advance(this.tokenizer.decode(this.ids));
  }

  get text(): string {
    return this.emitted;
  }

  private advance(text: string): string {
    // Decoding more ids only appends text for byte-level BPE and SentencePiece; if an earlier part
    // ever changed we cannot take back what was sent, so send only what extends it.
    let delta: string;
    if (text.startsWith(this.emitted)) {
      delta = text.slice(this.emitted.length);
    } else {
      let i = 0;
      while (i < text.length && i < this.emitted.length && text[i] === this.emitted[i]) i++;
      delta = text.length > this.emitted.length ? text.slice(Math.max(i, this.emitted.length)) : '';
    }
    // Never split a surrogate pair across deltas.
    if (delta.length > 0 && isHighSurrogate(delta.charCodeAt(delta.length - 1))) delta = delta.slice(0, -1);
    this.emitted += delta;
    return delta;
  }
}

function isHighSurrogate(c: number): boolean {
  return c >= 0xd800 && c <= 0xdbff;
}

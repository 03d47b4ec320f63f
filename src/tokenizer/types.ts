/**
 * What the rest of the engine needs from a tokenizer. Implementations: SentencePiece BPE
 * (ChatGLM2/3) and tiktoken-style BPE (GLM-4).
 */
export interface StreamDecoder {
  /** Feeds one id; returns the text that became complete (never half a UTF-8 character). */
  push(id: number): string;
  /** Returns whatever is still held back (at the end of a stream). */
  flush(): string;
}

export interface Tokenizer {
  readonly kind: 'sentencepiece' | 'tiktoken';
  /** Number of ids, specials included. */
  readonly vocabSize: number;
  /** Ordinary text to ids. Text that looks like a special token stays ordinary text. */
  encode(text: string): number[];
  /** Ids to text. Throws ChatGLMError for ids out of range. */
  decode(ids: readonly number[]): string;
  /** Id of a special token by its literal name ('[gMASK]', 'sop', '<|user|>', '<sop>', ...). */
  specialId(name: string): number | undefined;
  /** True for ids of special (control) tokens. */
  isSpecial(id: number): boolean;
  createStreamDecoder(): StreamDecoder;
}


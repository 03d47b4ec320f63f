/**
 * ChatGLM2/3 vocabulary: the SentencePiece model plus special tokens appended after it
 * (tokenization_chatglm.py, SPTokenizer). encode() never produces specials from user text;
 * only the chat-format code inserts them by id. decode() follows the Hugging Face tokenizer:
 * ids are turned into pieces and decoded with DecodePieces, so ChatGLM3's specials come out as
 * their literal names, ChatGLM2's specials and <unk>/<s>/</s> come out as nothing.
 */
import { ChatGLMError } from '../errors.js';
import type { SentencePieceStreamDecoder, SentencePieceTokenizer } from './sentencepiece.js';
import type { StreamDecoder, Tokenizer } from './types.js';
import type { FamilyFacts } from './family-facts.js';

/** What this tokenizer needs from the family: its appended specials and how they decode. */
export type SentencePieceFamily = Pick<FamilyFacts, 'name' | 'sentencePieceSpecials' | 'specialsDecodeAsNames'>;

export class ChatGLMTokenizer implements Tokenizer {
  readonly kind = 'sentencepiece' as const;
  readonly vocabSize: number;
  /** Names of the appended specials, in id order starting at `sp.vocabSize`. */
  readonly specialTokens: readonly string[];
  /** The family's name (for messages). */
  readonly family: string;
  /** @internal */
  readonly specialsDecodeAsNames: boolean;
  private readonly specialIds = new Map<string, number>();

  constructor(
    readonly sp: SentencePieceTokenizer,
    family: SentencePieceFamily,
  ) {
    this.family = family.name;
    this.specialsDecodeAsNames = family.specialsDecodeAsNames ?? false;
    this.specialTokens = family.sentencePieceSpecials ?? [];
    this.vocabSize = sp.vocabSize + this.specialTokens.length;
    this.specialTokens.forEach((name, i) => this.specialIds.set(name, sp.vocabSize + i));
  }

  /** Plain SentencePiece encode (dummy prefix applied); special-looking text stays text. */
  encode(text: string): number[] {
    return this.sp.encode(text);
  }

  decode(ids: readonly number[]): string {
    const d = this.createStreamDecoder();
    let out = '';
    for (const id of ids) out += d.push(id);
    return out + d.flush();
  }

  specialId(name: string): number | undefined {
    return this.specialIds.get(name) ?? this.sp.specialId(name);
  }

  isSpecial(id: number): boolean {
    return (id >= this.sp.vocabSize && id < this.vocabSize) || this.sp.isSpecial(id);
  }

  /** Name of an appended special id, or undefined. */
  specialName(id: number): string | undefined {
    return id >= this.sp.vocabSize ? this.specialTokens[id - this.sp.vocabSize] : undefined;
  }

  createStreamDecoder(): StreamDecoder {
    return new ChatGLMStreamDecoder(this, this.sp.createPieceDecoder());
  }

  /** @internal */
  checkId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
      throw new ChatGLMError(
        'BAD_ARGUMENT',
        `token id ${id} is out of range for ${this.family} tokenizer ${this.sp.file} (ids 0..${this.vocabSize - 1})`,
        { file: this.sp.file },
      );
    }
  }
}

class ChatGLMStreamDecoder implements StreamDecoder {
  constructor(
    private readonly tok: ChatGLMTokenizer,
    private readonly inner: SentencePieceStreamDecoder,
  ) {}

  push(id: number): string {
    const tok = this.tok;
    tok.checkId(id);
    const sp = tok.sp;
    if (id >= sp.vocabSize) {
      // HF: convert_id_to_token gives the name (ChatGLM3), which DecodePieces copies verbatim
      // (it is not a piece), or "" (ChatGLM2).
      return this.inner.pushVerbatim(tok.specialsDecodeAsNames ? tok.specialName(id)! : '');
    }
    if (id === sp.unkId || id === sp.bosId || id === sp.eosId) return this.inner.pushVerbatim('');
    return this.inner.push(id);
  }

  flush(): string {
    return this.inner.flush();
  }
}

/**
 * A byte-level Tokenizer for chat and generation tests: ids 0-2 are <unk> <s> </s>, byte b is id
 * b + 3 (like SentencePiece byte fallback), then the ChatGLM3 (or GLM-4) special tokens. Its ids
 * are trivial to compute by hand, which is what template tests need.
 */
import type { StreamDecoder, Tokenizer } from '../../src/tokenizer/types.js';

export const CHATGLM3_SPECIALS = ['[MASK]', '[gMASK]', '[sMASK]', 'sop', 'eop', '<|system|>', '<|user|>', '<|assistant|>', '<|observation|>'];
export const GLM4_SPECIALS = ['<|endoftext|>', '[MASK]', '[gMASK]', '[sMASK]', '<sop>', '<eop>', '<|system|>', '<|user|>', '<|assistant|>', '<|observation|>'];

export class ByteTokenizer implements Tokenizer {
  readonly kind = 'sentencepiece' as const;
  readonly vocabSize: number;
  private readonly specials: Map<string, number>;
  private readonly names: Map<number, string>;

  constructor(specials: readonly string[] = CHATGLM3_SPECIALS) {
    this.specials = new Map(specials.map((s, i) => [s, 259 + i]));
    this.names = new Map(specials.map((s, i) => [259 + i, s]));
    this.vocabSize = 259 + specials.length;
  }

  encode(text: string): number[] {
    return [...Buffer.from(text, 'utf8')].map((b) => b + 3);
  }

  decode(ids: readonly number[]): string {
    let out = '';
    let bytes: number[] = [];
    const flush = (): void => {
      out += Buffer.from(bytes).toString('utf8');
      bytes = [];
    };
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) throw new RangeError(`id ${id} out of range`);
      if (id < 3) continue;
      const name = this.names.get(id);
      if (name !== undefined) {
        flush();
        out += name;
      } else {
        bytes.push(id - 3);
      }
    }
    flush();
    return out;
  }

  specialId(name: string): number | undefined {
    return this.specials.get(name);
  }

  isSpecial(id: number): boolean {
    return this.names.has(id) || id < 3;
  }

  createStreamDecoder(): StreamDecoder {
    const ids: number[] = [];
    let sent = '';
    return {
      push: (id: number): string => {
        ids.push(id);
        const t = this.decode(ids);
        if (t.endsWith('\uFFFD')) return '';
        const d = t.slice(sent.length);
        sent = t;
        return d;
      },
      flush: (): string => {
        const t = this.decode(ids);
        const d = t.slice(sent.length);
        sent = t;
        return d;
      },
    };
  }
}

/**
 * Small vocabularies and models for constrained-decoding tests: a ChatGLM3-style SentencePiece
 * vocabulary (byte fallback, so every byte can be spelled, plus a few merged pieces with the U+2581
 * word marker), a GLM-4-style byte-level tiktoken vocabulary, and a model whose logits are seeded
 * random numbers, so that sampling explores what the grammar allows.
 */
import Ajv from 'ajv';
import { ChatGLMTokenizer } from '../../src/tokenizer/chatglm.js';
import { PieceType } from '../../src/tokenizer/sentencepiece-model.js';
import { SentencePieceTokenizer } from '../../src/tokenizer/sentencepiece.js';
import { TikTokenTokenizer, parseTikTokenRanks } from '../../src/tokenizer/tiktoken.js';
import type { KVCache } from '../../src/backend/types.js';
import type { CausalLM, ForwardInput } from '../../src/generate/types.js';
import { controlAndBytePieces, smallRankFile } from './tokenizer-fixtures.js';
import { CountingCache } from './chat-scripted-model.js';
import { getFamily } from '../../src/families/registry.js';
import { GLM4_SPECIAL_TOKENS } from '../../src/families/glm4.js';

/** Merged pieces of the SentencePiece vocabulary, in id order after the 259 control and byte pieces. */
export const SP_MERGED = ['\u2581tool', '_call', '(', '="', '",', '\u2581{"', '":', '"}', '\u2581get', '_weather', '```', 'python', '\u2581Hello', 'ab', '\u2581', '12', 'True', 'None', '你好'];

export function chatglm3SmallTokenizer(): ChatGLMTokenizer {
  const pieces = controlAndBytePieces();
  SP_MERGED.forEach((piece, i) => pieces.push({ piece, score: -i, type: PieceType.NORMAL }));
  return new ChatGLMTokenizer(SentencePieceTokenizer.fromPieces(pieces), getFamily('chatglm3'));
}

/** Bytes 0-255 at their own rank, a few merges (he, ll, ..., 你好), GLM-4's specials after them. */
export function glm4SmallTokenizer(): TikTokenTokenizer {
  return new TikTokenTokenizer(parseTikTokenRanks(smallRankFile(), 'small.tiktoken'), { specials: GLM4_SPECIAL_TOKENS });
}

/** Logits of seeded pseudo-random numbers (xorshift), plus a fixed bonus for chosen ids. */
export class RandomLogitsModel implements CausalLM {
  readonly config: { seqLength: number; vocabSize: number };
  private state: number;

  constructor(
    readonly vocab: number,
    seed: number,
    private readonly bonus: ReadonlyMap<number, number> = new Map(),
  ) {
    this.config = { seqLength: 100_000, vocabSize: vocab };
    this.state = seed >>> 0 || 1;
  }

  private next(): number {
    let x = this.state;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.state = x >>> 0;
    return this.state / 2 ** 32;
  }

  newCache(capacity?: number): KVCache {
    return new CountingCache(capacity ?? this.config.seqLength);
  }

  forward(inputs: ForwardInput[]): Float32Array[] {
    return inputs.map((inp) => {
      inp.cache.length += inp.ids.length;
      const logits = new Float32Array(this.vocab);
      for (let i = 0; i < this.vocab; i++) logits[i] = 3 * this.next() + (this.bonus.get(i) ?? 0);
      return logits;
    });
  }
}

/** A JSON Schema validator (ajv, strict mode off for annotations such as "description"). */
export function validator(schema: object): (v: unknown) => boolean {
  const ajv = new Ajv.default({ strict: false });
  const fn = ajv.compile(schema);
  return (v) => fn(v) as boolean;
}

/** Seeded random schemas of the supported kinds, bounded so that a sample always ends soon. */
export function randomSchema(rand: () => number, depth = 0): Record<string, unknown> {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const kinds = depth >= 2 ? ['string', 'integer', 'number', 'boolean', 'enum', 'null', 'pattern'] : ['string', 'integer', 'number', 'boolean', 'enum', 'object', 'array', 'anyOf', 'pattern', 'const'];
  switch (pick(kinds)) {
    case 'string': {
      const min = Math.floor(rand() * 3);
      return { type: 'string', minLength: min, maxLength: min + Math.floor(rand() * 4) };
    }
    case 'integer': {
      const lo = Math.floor(rand() * 400) - 200;
      return rand() < 0.3 ? { type: 'integer' } : rand() < 0.5 ? { type: 'integer', minimum: lo } : { type: 'integer', minimum: lo, maximum: lo + Math.floor(rand() * 1500) };
    }
    case 'number':
      return rand() < 0.5 ? { type: 'number' } : { type: 'number', minimum: Math.floor(rand() * 5), maximum: 5 + Math.floor(rand() * 50) };
    case 'boolean':
      return { type: 'boolean' };
    case 'null':
      return { type: 'null' };
    case 'enum':
      return { enum: pick([['a', 'b'], ['北京', 'x"y', 3], [true, null, 'z\\w']]) };
    case 'const':
      return { const: pick(['fixed', 7, { k: [1, 'v'] }]) };
    case 'pattern':
      return { type: 'string', pattern: pick(['^[A-Z]{2}-\\d{1,3}$', '^(yes|no)$', '^[a-c]+x?$', '^\\w{1,4}@[a-z]{1,3}\\.com$']) };
    case 'array': {
      const min = Math.floor(rand() * 2);
      return { type: 'array', items: randomSchema(rand, depth + 1), minItems: min, maxItems: min + Math.floor(rand() * 3) };
    }
    case 'anyOf':
      return { anyOf: [randomSchema(rand, depth + 1), { type: 'null' }] };
    default: {
      const n = 1 + Math.floor(rand() * 3);
      const properties: Record<string, unknown> = {};
      const required: string[] = [];
      for (let i = 0; i < n; i++) {
        const name = pick(['city', 'range', 'origin', 'date', 'unit', 'count', 'q']) + i;
        properties[name] = randomSchema(rand, depth + 1);
        if (rand() < 0.6) required.push(name);
      }
      return { type: 'object', properties, required };
    }
  }
}

export function seeded(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 2 ** 32;
  };
}

/**
 * Grammar matching for one tokenizer: the vocabulary handed to xgrammar once (as byte-level
 * strings of our own token bytes), a compiler, and compiled grammars cached by the hash of their
 * EBNF source. A ChatModel owns one engine; nothing here is shared between tokenizers.
 */
import { createHash } from 'node:crypto';
import { ChatGLMError } from '../errors.js';
import { computeTokenBytes } from '../tokenizer/token-bytes.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { loadXgrammar, type XgCompiledGrammar, type XgGrammarCompiler, type XgGrammarMatcher, type XgTokenizerInfo } from './xgrammar.js';

/** GPT-2's byte-to-unicode table: every byte as one printable character (xgrammar's "byte_level" vocabulary). */
function byteLevelAlphabet(): string[] {
  const out = new Array<string>(256);
  let n = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    out[b] = String.fromCodePoint(printable ? b : 256 + n++);
  }
  return out;
}

/**
 * xgrammar decodes UTF-8 leniently (it takes C0 93, an overlong form, as a character), so the
 * bytes of a constrained value could be malformed UTF-8. Tokens that cannot occur in valid UTF-8
 * at all are never offered to it, and after a lead byte whose second byte is restricted (E0, ED,
 * F0, F4) only tokens starting with an allowed second byte stay allowed.
 */
const SECOND_BYTE: ReadonlyMap<number, readonly [number, number]> = new Map([
  [0xe0, [0xa0, 0xbf]],
  [0xed, [0x80, 0x9f]],
  [0xf0, [0x90, 0xbf]],
  [0xf4, [0x80, 0x8f]],
]);

function possibleInUtf8(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) {
    const x = b[i]!;
    if (x === 0xc0 || x === 0xc1 || x >= 0xf5) return false;
    const r = SECOND_BYTE.get(x);
    if (r && i + 1 < b.length && (b[i + 1]! < r[0] || b[i + 1]! > r[1])) return false;
  }
  return true;
}

/** A compiled grammar: what a matcher starts from. */
export interface CompiledGrammar {
  readonly key: string;
  readonly handle: XgCompiledGrammar;
}

/** A matcher advanced token by token; `allowed()` is a bitmask over token ids (bit i of word i>>5). */
export interface TokenMatcher {
  allowed(): Promise<Int32Array>;
  /** False when the grammar does not allow `id` here (the matcher is unchanged then). */
  accept(id: number): boolean;
  isTerminated(): boolean;
  reset(): void;
  dispose(): void;
}

const CACHE_LIMIT = 64;

export class GrammarEngine {
  /** Bytes of every token id (null for specials), computed once. */
  readonly tokenBytes: readonly (Uint8Array | null)[];
  private readonly cache = new Map<string, Promise<CompiledGrammar>>();
  /** Per restricted lead byte: the ids allowed right after it (bitmask), built on first need. */
  private readonly afterLead = new Map<number, Int32Array>();

  private constructor(
    readonly vocabSize: number,
    tokenBytes: (Uint8Array | null)[],
    private readonly info: XgTokenizerInfo,
    private readonly compiler: XgGrammarCompiler,
  ) {
    this.tokenBytes = tokenBytes;
  }

  static async create(tokenizer: Tokenizer): Promise<GrammarEngine> {
    const bytes = computeTokenBytes(tokenizer);
    const xg = loadXgrammar();
    const alphabet = byteLevelAlphabet();
    const vocab = bytes.map((b) => (b === null || !possibleInUtf8(b) ? '' : Array.from(b, (x) => alphabet[x]!).join('')));
    const info = await xg.TokenizerInfo.createTokenizerInfo(vocab, 'byte_level', false, vocab.length, []);
    const compiler = await xg.GrammarCompiler.createGrammarCompiler(info, false);
    return new GrammarEngine(vocab.length, bytes, info, compiler);
  }

  /**
   * After a token ending in `lastByte`, the ids whose first byte may follow it in valid UTF-8
   * (undefined: no restriction).
   */
  utf8Follow(lastByte: number): Int32Array | undefined {
    const r = SECOND_BYTE.get(lastByte);
    if (!r) return undefined;
    let m = this.afterLead.get(lastByte);
    if (!m) {
      m = new Int32Array(Math.ceil(this.vocabSize / 32));
      this.tokenBytes.forEach((b, id) => {
        if (b === null || b.length === 0 || (b[0]! >= r[0] && b[0]! <= r[1])) m![id >> 5]! |= 1 << (id & 31);
      });
      this.afterLead.set(lastByte, m);
    }
    return m;
  }

  /** Compiles EBNF (xgrammar's dialect, root rule `root`); the same source compiles once. */
  compile(ebnf: string): Promise<CompiledGrammar> {
    const key = createHash('sha256').update(ebnf).digest('hex');
    const hit = this.cache.get(key);
    if (hit) {
      // Most recently used last, so eviction drops the oldest.
      this.cache.delete(key);
      this.cache.set(key, hit);
      return hit;
    }
    const p = this.compiler.compileGrammar(ebnf, 'root').then(
      (handle) => ({ key, handle }),
      (err: unknown) => {
        this.cache.delete(key);
        throw new ChatGLMError('GRAMMAR', `the grammar does not compile: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      },
    );
    this.cache.set(key, p);
    if (this.cache.size > CACHE_LIMIT) {
      const oldest = this.cache.keys().next().value!;
      const old = this.cache.get(oldest)!;
      this.cache.delete(oldest);
      // Matchers keep their own reference inside xgrammar, so the handle can go.
      old.then((g) => g.handle.dispose(), () => {});
    }
    return p;
  }

  /** A fresh matcher; `stopIds` are the ids allowed (only) where the grammar may end. */
  async matcher(grammar: CompiledGrammar, stopIds: readonly number[]): Promise<TokenMatcher> {
    const xg = loadXgrammar();
    const m: XgGrammarMatcher = await xg.GrammarMatcher.createGrammarMatcher(grammar.handle, [...stopIds], false, 0);
    return {
      allowed: () => m.getNextTokenBitmask(),
      accept: (id) => m.acceptToken(id),
      isTerminated: () => m.isTerminated(),
      reset: () => m.reset(),
      dispose: () => m.dispose(),
    };
  }

  dispose(): void {
    for (const p of this.cache.values()) p.then((g) => g.handle.dispose(), () => {});
    this.cache.clear();
    this.compiler.dispose();
    this.info.dispose();
  }
}

/**
 * A LogitsConstraint driven by a compiled grammar, segment-aware for ChatGLM3/GLM-4 replies: a
 * reply segment opens with its metadata line, so with `freeText` the grammar only has to decide
 * how a segment starts. Once the segment's text begins with a newline (an empty metadata line,
 * after the one optional space SentencePiece's dummy prefix puts there) it is plain text and is no
 * longer constrained, until the model opens a new segment with `segmentId` (lazy activation, as
 * llama.cpp's lazy grammars). Otherwise (a tool call, JSON output) every token follows the grammar
 * and a stop id is allowed only where the grammar may end.
 */
import { ChatGLMError } from '../errors.js';
import { applyTokenBitmask, type DisposableConstraint } from '../generate/logits-constraint.js';
import type { CompiledGrammar, GrammarEngine, TokenMatcher } from './engine.js';

export interface GrammarConstraintOptions {
  /** Stop ids, allowed (only) where the grammar may end. */
  stopIds: readonly number[];
  /** A segment whose text starts with "\n" (after an optional space) is free text. */
  freeText?: boolean;
  /** The id that opens a new reply segment (re-arms the grammar after free text). */
  segmentId?: number;
}

export class GrammarConstraint implements DisposableConstraint {
  private free = false;
  /** Bytes of the current segment until it is known to be free text or not (freeText only). */
  private head: number[] | undefined = [];
  /** The last byte of the last constrained token (for UTF-8 validity across tokens). */
  private lastByte = 0;

  private constructor(
    private readonly matcher: TokenMatcher,
    private readonly engine: GrammarEngine,
    private readonly options: GrammarConstraintOptions,
  ) {}

  static async create(engine: GrammarEngine, grammar: CompiledGrammar, options: GrammarConstraintOptions): Promise<GrammarConstraint> {
    return new GrammarConstraint(await engine.matcher(grammar, options.stopIds), engine, options);
  }

  /** True while the current segment is unconstrained text. */
  get isFree(): boolean {
    return this.free;
  }

  async mask(logits: Float32Array): Promise<void> {
    if (this.free) return;
    applyTokenBitmask(logits, await this.allowed());
  }

  /** The ids allowed next, as a bitmask (bit id&31 of word id>>5); ChatGLMError on a dead end. */
  async allowed(): Promise<Int32Array> {
    const bits = await this.matcher.allowed();
    const follow = this.engine.utf8Follow(this.lastByte);
    if (follow) for (let w = 0; w < bits.length; w++) bits[w]! &= follow[w]!;
    if (!bits.some((w) => w !== 0)) throw new ChatGLMError('GRAMMAR', 'the grammar allows no token here (a dead end); simplify the schema');
    return bits;
  }

  accept(id: number): void {
    if (this.free) {
      if (id === this.options.segmentId) {
        this.free = false;
        this.head = [];
        this.lastByte = 0;
        this.matcher.reset();
      }
      return;
    }
    if (!this.matcher.accept(id)) throw new ChatGLMError('GRAMMAR', `token ${id} was sampled although the grammar does not allow it`);
    const bytes = this.engine.tokenBytes[id];
    this.lastByte = bytes && bytes.length > 0 ? bytes[bytes.length - 1]! : 0;
    if (this.options.freeText !== true || this.head === undefined) return;
    if (bytes) this.head.push(...bytes);
    const first = this.head[0] === 0x20 ? 1 : 0;
    if (this.head.length > first) {
      this.free = this.head[first] === 0x0a;
      this.head = undefined;
    }
  }

  dispose(): void {
    this.matcher.dispose();
  }
}

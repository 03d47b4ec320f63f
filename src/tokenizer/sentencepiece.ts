/**
 * SentencePiece BPE, encoding and decoding exactly as the C++ library (bpe_model.cc,
 * model_interface.cc, sentencepiece_processor.cc):
 *  - normalize (normalizer.ts), split into characters (user-defined pieces matched longest-first
 *    and frozen), then repeatedly merge the adjacent pair whose concatenation is a piece with the
 *    highest score, ties to the leftmost pair;
 *  - UNUSED pieces are re-split the way the library does (rev_merge);
 *  - unknown symbols become byte pieces <0xNN> when byte_fallback is on, otherwise unk (runs of
 *    unknowns collapse into one unk);
 *  - decoding maps U+2581 to space, drops the first dummy-prefix space, reassembles byte pieces
 *    into UTF-8 (one U+FFFD per malformed byte), hides control pieces, shows unk as unk_surface.
 *
 * Speed: symbols are integer ids, a pair table maps (left symbol, right symbol) to the merged
 * piece, and text is cut wherever the vocabulary proves that no piece can span the cut (the two
 * characters never meet inside a piece), so the pieces of text are short and repeated ones come
 * from a cache.
 *
 * The parts: sentencepiece-vocab.ts (pieces, symbols, surfaces), bpe-merge.ts + bpe-tables.ts
 * (the merge loop, its pair table and heap), unigram.ts, sentencepiece-decoder.ts (decoding).
 */
import { readFile } from 'node:fs/promises';
import { ChatGLMError, notFound } from '../errors.js';
import { Normalizer } from './normalizer.js';
import {
  ModelType,
  PieceType,
  defaultNormalizerSpec,
  defaultTrainerSpec,
  parseModelProto,
  writeModelProto,
  type ModelProtoFields,
  type SentencePieceEntry,
} from './sentencepiece-model.js';
import type { StreamDecoder, Tokenizer } from './types.js';
import { UnigramEncoder } from './unigram.js';
import type { PairTable } from './bpe-tables.js';
import { BpeMerger } from './bpe-merge.js';
import { SentencePieceStreamDecoder, type PieceDecodeInfo } from './sentencepiece-decoder.js';
import { buildSurfaces, buildSymbols, readVocabulary, type DecodeSurfaces, type SentencePieceVocabulary } from './sentencepiece-vocab.js';

export { PieceType, type SentencePieceEntry } from './sentencepiece-model.js';
export { SentencePieceStreamDecoder } from './sentencepiece-decoder.js';

/** Model-level settings that are not pieces. Defaults are ChatGLM's (see fromPieces). */
export interface SentencePieceOptions {
  /** Unknown characters become <0xNN> byte pieces. Default: true when the vocabulary has BYTE pieces. */
  byteFallback?: boolean;
  /** Prepend U+2581 to the text (default true). */
  addDummyPrefix?: boolean;
  /** Drop leading/trailing spaces and collapse runs (default false: ChatGLM keeps whitespace runs). */
  removeExtraWhitespaces?: boolean;
  /** Replace ' ' by U+2581 (default true). */
  escapeWhitespaces?: boolean;
  treatWhitespaceAsSuffix?: boolean;
  /** NormalizerSpec.precompiled_charsmap (nmt_nfkc-style); empty or absent = identity. */
  precompiledCharsmap?: Uint8Array;
  /** What decode shows for the unk piece (default " ⁇ "). */
  unkSurface?: string;
  /** 'bpe' (default; ChatGLM) or 'unigram'. */
  modelType?: 'bpe' | 'unigram';
  /** Shown in error messages. */
  file?: string;
}

const MAX_CACHE_ENTRIES = 200_000;
const MAX_CACHED_WORD = 48;
const utf8 = new TextEncoder();

export class SentencePieceTokenizer implements Tokenizer {
  readonly kind = 'sentencepiece' as const;
  readonly vocabSize: number;
  readonly unkId: number;
  /** trainer_spec bos_id / eos_id when they name a piece, else -1. */
  readonly bosId: number;
  readonly eosId: number;
  readonly byteFallback: boolean;
  readonly file: string;

  private readonly entries: SentencePieceEntry[];
  private readonly types: Uint8Array;
  private readonly proto: ModelProtoFields;
  private readonly normalizer: Normalizer;
  private readonly vocab: SentencePieceVocabulary;
  /** Whether text is cut into words that BPE runs on independently (see the constructor). */
  private readonly splitWords: boolean;
  private readonly bigrams: PairTable;
  private readonly cache = new Map<string, Int32Array>();
  /** Set for BPE models. */
  private readonly bpe: BpeMerger | null;
  /** Set for Unigram models. */
  private readonly unigram: UnigramEncoder | null;
  private readonly surfaces: DecodeSurfaces;

  private constructor(proto: ModelProtoFields, file: string) {
    this.file = file;
    this.proto = proto;
    this.entries = proto.pieces;
    const modelType = proto.trainerSpec.modelType;
    if (modelType !== ModelType.BPE && modelType !== ModelType.UNIGRAM) {
      const name = ['?', 'UNIGRAM', 'BPE', 'WORD', 'CHAR'][modelType] ?? String(modelType);
      throw new ChatGLMError(
        'UNSUPPORTED',
        `${file}: SentencePiece model type ${name} is not supported (only BPE, which ChatGLM2/3 use, and Unigram)`,
        { file },
      );
    }
    const vocab = readVocabulary(proto, file);
    this.vocab = vocab;
    this.vocabSize = vocab.size;
    this.types = vocab.types;
    this.unkId = vocab.unkId;
    this.bosId = vocab.bosId;
    this.eosId = vocab.eosId;
    this.byteFallback = vocab.byteFallback;
    this.normalizer = new Normalizer(proto.normalizerSpec, proto.trainerSpec.treatWhitespaceAsSuffix, vocab.userDefinedTexts, file);
    const symbols = buildSymbols(proto, vocab, file);
    this.bigrams = symbols.bigrams;
    this.unigram = modelType === ModelType.UNIGRAM ? new UnigramEncoder(proto.pieces, vocab.scores, vocab.types, vocab.unkId) : null;
    this.bpe = this.unigram === null ? new BpeMerger(vocab, symbols) : null;
    // The text can be cut between characters x and y when no mergeable piece contains "xy": no
    // symbol can ever span that point, and BPE on each side runs independently (same merges,
    // same order). Not with UNUSED pieces: their rev_merge bookkeeping is whole-sentence.
    // Unigram scores accumulate in float32 from the start of the sentence, so cutting the text
    // could change rounding and near-ties: it is always encoded whole.
    this.splitWords = !vocab.hasUnused && this.unigram === null;
    this.surfaces = buildSurfaces(proto, vocab.types);
  }

  /** Builds a tokenizer from a parsed ModelProto. */
  static fromModelProto(proto: ModelProtoFields, file = '<model>'): SentencePieceTokenizer {
    return new SentencePieceTokenizer(proto, file);
  }

  /** Parses serialized ModelProto bytes. */
  static fromBytes(data: Uint8Array, file = '<model>'): SentencePieceTokenizer {
    return new SentencePieceTokenizer(parseModelProto(data, file), file);
  }

  /**
   * Builds a BPE tokenizer from a piece list (e.g. GGUF tokenizer.ggml.tokens/scores/token_type;
   * the type numbers are the same). Defaults match ChatGLM's tokenizer.model: dummy prefix on,
   * whitespace runs kept, identity normalization, byte fallback when byte pieces exist.
   */
  static fromPieces(pieces: readonly SentencePieceEntry[], options: SentencePieceOptions = {}): SentencePieceTokenizer {
    const trainerSpec = defaultTrainerSpec();
    trainerSpec.modelType = options.modelType === 'unigram' ? ModelType.UNIGRAM : ModelType.BPE;
    trainerSpec.vocabSize = pieces.length;
    trainerSpec.byteFallback = options.byteFallback ?? pieces.some((p) => p.type === PieceType.BYTE);
    trainerSpec.treatWhitespaceAsSuffix = options.treatWhitespaceAsSuffix ?? false;
    if (options.unkSurface !== undefined) trainerSpec.unkSurface = options.unkSurface;
    const ids = (type: number) => pieces.findIndex((p) => p.type === type);
    trainerSpec.unkId = ids(PieceType.UNKNOWN);
    trainerSpec.bosId = pieces.findIndex((p) => p.type === PieceType.CONTROL && p.piece === '<s>');
    trainerSpec.eosId = pieces.findIndex((p) => p.type === PieceType.CONTROL && p.piece === '</s>');
    const normalizerSpec = defaultNormalizerSpec();
    normalizerSpec.name = options.precompiledCharsmap?.length ? 'precompiled' : 'identity';
    normalizerSpec.addDummyPrefix = options.addDummyPrefix ?? true;
    normalizerSpec.removeExtraWhitespaces = options.removeExtraWhitespaces ?? false;
    normalizerSpec.escapeWhitespaces = options.escapeWhitespaces ?? true;
    normalizerSpec.precompiledCharsmap = options.precompiledCharsmap ?? new Uint8Array(0);
    const proto: ModelProtoFields = {
      pieces: pieces.map((p) => ({ piece: p.piece, score: p.score, type: p.type })),
      trainerSpec,
      normalizerSpec,
    };
    return new SentencePieceTokenizer(proto, options.file ?? '<pieces>');
  }

  /** All pieces in id order (a copy): what GGUF tokenizer.ggml.tokens/scores/token_type hold. */
  listPieces(): SentencePieceEntry[] {
    return this.entries.map((e) => ({ piece: e.piece, score: e.score, type: e.type }));
  }

  /** The settings fromPieces() needs to rebuild this tokenizer. */
  get options(): Required<Omit<SentencePieceOptions, 'file'>> {
    const t = this.proto.trainerSpec;
    const ns = this.proto.normalizerSpec;
    return {
      byteFallback: t.byteFallback,
      addDummyPrefix: ns.addDummyPrefix,
      removeExtraWhitespaces: ns.removeExtraWhitespaces,
      escapeWhitespaces: ns.escapeWhitespaces,
      treatWhitespaceAsSuffix: t.treatWhitespaceAsSuffix,
      precompiledCharsmap: ns.precompiledCharsmap,
      unkSurface: t.unkSurface,
      modelType: t.modelType === ModelType.UNIGRAM ? 'unigram' : 'bpe',
    };
  }

  /** Serialized ModelProto (pieces, trainer and normalizer spec). */
  toBytes(): Uint8Array {
    return writeModelProto(this.proto);
  }

  idToPiece(id: number): string {
    this.checkId(id);
    return this.entries[id]!.piece;
  }

  /** The library's PieceToId: reserved pieces first, then ordinary ones, else unk. */
  pieceToId(piece: string): number {
    return this.vocab.reservedIds.get(piece) ?? this.vocab.pieceIds.get(piece) ?? this.unkId;
  }

  pieceType(id: number): number {
    this.checkId(id);
    return this.types[id]!;
  }

  specialId(name: string): number | undefined {
    const id = this.vocab.reservedIds.get(name);
    return id !== undefined && this.types[id] !== PieceType.BYTE ? id : undefined;
  }

  isSpecial(id: number): boolean {
    return id >= 0 && id < this.vocabSize && this.types[id] === PieceType.CONTROL;
  }

  /** Normalized text, as the library's Normalize (exposed for tests and debugging). */
  normalize(text: string): string {
    return this.normalizer.normalize(text);
  }

  encode(text: string): number[] {
    const norm = this.normalizer.normalize(text);
    const out: number[] = [];
    if (norm.length === 0) return out;
    if (!this.splitWords) {
      this.encodeSegment(norm, 0, norm.length, out);
    } else {
      const bigrams = this.bigrams;
      let ws = 0;
      let prevCp = norm.codePointAt(0)!;
      for (let i = prevCp > 0xffff ? 2 : 1; i < norm.length; ) {
        const cp = norm.codePointAt(i)!;
        if (bigrams.get(prevCp, cp) < 0) {
          this.encodeWord(norm, ws, i, out);
          ws = i;
        }
        prevCp = cp;
        i += cp > 0xffff ? 2 : 1;
      }
      this.encodeWord(norm, ws, norm.length, out);
    }
    if (!this.byteFallback) return collapseUnknownRuns(out, this.unkId);
    return out;
  }

  /** Pieces of encode(text). */
  encodeAsPieces(text: string): string[] {
    return this.encode(text).map((id) => this.entries[id]!.piece);
  }

  private encodeWord(s: string, from: number, to: number, out: number[]): void {
    if (to - from > MAX_CACHED_WORD) {
      this.encodeSegment(s, from, to, out);
      return;
    }
    const key = s.slice(from, to);
    let ids = this.cache.get(key);
    if (ids === undefined) {
      const tmp: number[] = [];
      this.encodeSegment(s, from, to, tmp);
      ids = Int32Array.from(tmp);
      if (this.cache.size >= MAX_CACHE_ENTRIES) this.cache.clear();
      this.cache.set(key, ids);
    }
    for (let i = 0; i < ids.length; i++) out.push(ids[i]!);
  }

  /** s[from, to) (normalized text) to ids, byte fallback applied. */
  private encodeSegment(s: string, from: number, to: number, out: number[]): void {
    if (this.bpe) {
      this.bpe.encodeSegment(s, from, to, out);
      return;
    }
    this.unigram!.encode(s, from, to, (start, end, id) => {
      if (id === this.unkId && this.byteFallback) {
        const bytes = utf8.encode(s.slice(start, end));
        for (let k = 0; k < bytes.length; k++) out.push(this.vocab.byteIds[bytes[k]!]!);
      } else out.push(id);
    });
  }

  private checkId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
      throw new ChatGLMError(
        'BAD_ARGUMENT',
        `token id ${id} is out of range for ${this.file} (vocabulary has ${this.vocabSize} ids: 0..${this.vocabSize - 1})`,
        { file: this.file },
      );
    }
  }

  decode(ids: readonly number[]): string {
    const d = this.createStreamDecoder();
    let out = '';
    for (const id of ids) out += d.push(id);
    return out + d.flush();
  }

  /**
   * The stream decoder with its extra entry point pushVerbatim(text), used by ChatGLM's wrapper
   * for special names (the library copies a string that is not a piece as-is).
   */
  createPieceDecoder(): SentencePieceStreamDecoder {
    return new SentencePieceStreamDecoder(this);
  }

  createStreamDecoder(): StreamDecoder {
    return new SentencePieceStreamDecoder(this);
  }

  /** @internal decode tables for the stream decoder. */
  decodeInfo(id: number): PieceDecodeInfo {
    this.checkId(id);
    const type = this.types[id]!;
    let byte = -1;
    if (type === PieceType.BYTE) byte = parseInt(this.entries[id]!.piece.slice(3, 5), 16);
    return {
      type,
      surface: this.surfaces.surface[id]!,
      stripped: this.surfaces.surfaceNoLeadingSpace[id]!,
      spaced: this.surfaces.startsWithSpace[id] === 1,
      byte,
    };
  }

  /** @internal */
  get stripsFirstSpace(): { dummy: boolean; removeExtra: boolean } {
    const ns = this.proto.normalizerSpec;
    return { dummy: ns.addDummyPrefix, removeExtra: ns.removeExtraWhitespaces };
  }
}

function collapseUnknownRuns(ids: number[], unk: number): number[] {
  let w = 0;
  for (let i = 0; i < ids.length; i++) {
    if (ids[i] === unk && w > 0 && ids[w - 1] === unk) continue;
    ids[w++] = ids[i]!;
  }
  ids.length = w;
  return ids;
}

/** Loads a SentencePiece tokenizer.model. */
export async function loadSentencePieceModel(file: string): Promise<SentencePieceTokenizer> {
  let data: Uint8Array;
  try {
    data = await readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw notFound('SentencePiece model', file, 'check the path, or pass --tokenizer FILE');
    }
    throw new ChatGLMError('FILE_NOT_FOUND', `cannot read ${file}: ${(err as Error).message}`, { file, cause: err });
  }
  return SentencePieceTokenizer.fromBytes(data, file);
}

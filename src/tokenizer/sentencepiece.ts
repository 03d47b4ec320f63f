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
 */
import { readFile } from 'node:fs/promises';
import { ChatGLMError, badFormat, notFound } from '../errors.js';
import { Normalizer, SPACE_SYMBOL } from './normalizer.js';
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
import { decodeUtf8Char } from './utf8.js';

export { PieceType, type SentencePieceEntry } from './sentencepiece-model.js';

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

const EMPTY = -1;
const MAX_CACHE_ENTRIES = 200_000;
const MAX_CACHED_WORD = 48;
/** Below this many symbols a linear scan for the best pair beats a heap. */
const SCAN_LIMIT = 24;

/** Open-addressing hash table (left symbol, right symbol) -> merged piece id. */
class PairTable {
  private mask: number;
  private keysL: Int32Array;
  private keysR: Int32Array;
  private vals: Int32Array;

  constructor(expected: number) {
    let cap = 16;
    while (cap < expected * 2) cap *= 2;
    this.mask = cap - 1;
    this.keysL = new Int32Array(cap).fill(EMPTY);
    this.keysR = new Int32Array(cap);
    this.vals = new Int32Array(cap);
  }

  private slot(l: number, r: number): number {
    return (Math.imul(l, 0x9e3779b1) ^ Math.imul(r + 0x7f4a7c15, 0x85ebca77)) >>> 0;
  }

  set(l: number, r: number, v: number): void {
    let i = this.slot(l, r) & this.mask;
    for (;;) {
      const k = this.keysL[i]!;
      if (k === EMPTY) {
        this.keysL[i] = l;
        this.keysR[i] = r;
        this.vals[i] = v;
        return;
      }
      if (k === l && this.keysR[i] === r) return; // same string, same piece
      i = (i + 1) & this.mask;
    }
  }

  get(l: number, r: number): number {
    let i = this.slot(l, r) & this.mask;
    for (;;) {
      const k = this.keysL[i]!;
      if (k === EMPTY) return -1;
      if (k === l && this.keysR[i] === r) return this.vals[i]!;
      i = (i + 1) & this.mask;
    }
  }
}

const utf8 = new TextEncoder();

/**
 * Bounds far above real models (ChatGLM3: 64,798 pieces of at most 16 characters), so that a
 * crafted tokenizer.model fails with a clear error instead of building tables of its own choosing.
 */
const MAX_PIECES = 1 << 22;
const MAX_PIECE_LENGTH = 1024;
const MAX_PIECE_CHARS = 1 << 23;

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
  private readonly scores: Float64Array;
  private readonly types: Uint8Array;
  private readonly proto: ModelProtoFields;
  private readonly normalizer: Normalizer;
  /** NORMAL, USER_DEFINED and UNUSED pieces (the library's pieces_). */
  private readonly pieceIds = new Map<string, number>();
  /** CONTROL, UNKNOWN and BYTE pieces (the library's reserved_id_map_). */
  private readonly reservedIds = new Map<string, number>();
  /** Symbol id -> output id (a piece id; reserved pieces win, as PieceToId does). */
  private readonly resolve: Int32Array;
  /** Symbol ids of single characters: BMP in a table, the rest in a map. */
  private readonly bmpSym: Int32Array;
  private readonly astralSym = new Map<number, number>();
  /** Symbol for characters that occur in no piece at all: never merges, resolves to unk. */
  private readonly noSym: number;
  private readonly pairs: PairTable;
  private readonly byteIds = new Int32Array(256).fill(-1);
  /** User-defined pieces grouped by first UTF-16 unit, longest first. */
  private readonly userDefined = new Map<number, { text: string; id: number }[]>();
  private readonly hasUnused: boolean;
  private readonly splitWords: boolean;
  /** Adjacent character pairs (code points) that occur inside some mergeable piece. */
  private readonly bigrams: PairTable;
  private readonly cache = new Map<string, Int32Array>();
  /** Set for Unigram models; BPE uses the merge tables. */
  private readonly unigram: UnigramEncoder | null;
  /** Decode tables. */
  private readonly surface: string[];
  private readonly surfaceNoLeadingSpace: string[];
  private readonly startsWithSpace: Uint8Array;

  // Scratch space reused across calls (encode is synchronous, so no sharing hazards).
  private sym = new Int32Array(64);
  private start = new Int32Array(64);
  private prev = new Int32Array(64);
  private next = new Int32Array(64);
  private frozen = new Uint8Array(64);
  private heap = new Heap();

  private constructor(proto: ModelProtoFields, file: string) {
    this.file = file;
    this.proto = proto;
    this.entries = proto.pieces;
    const n = proto.pieces.length;
    this.vocabSize = n;
    this.scores = new Float64Array(n);
    this.types = new Uint8Array(n);
    const fail = (why: string) => badFormat(file, `invalid SentencePiece model: ${why}`);
    const modelType = proto.trainerSpec.modelType;
    if (modelType !== ModelType.BPE && modelType !== ModelType.UNIGRAM) {
      const name = ['?', 'UNIGRAM', 'BPE', 'WORD', 'CHAR'][modelType] ?? String(modelType);
      throw new ChatGLMError(
        'UNSUPPORTED',
        `${file}: SentencePiece model type ${name} is not supported (only BPE, which ChatGLM2/3 use, and Unigram)`,
        { file },
      );
    }
    if (n > MAX_PIECES) throw fail(`${n} pieces, more than ${MAX_PIECES}`);
    let unk = -1;
    const userDefinedTexts: string[] = [];
    for (let i = 0; i < n; i++) {
      const e = proto.pieces[i]!;
      this.scores[i] = e.score;
      this.types[i] = e.type;
      if (e.piece.length === 0) throw fail(`piece ${i} is empty`);
      if (e.piece.length > MAX_PIECE_LENGTH) throw fail(`piece ${i} is ${e.piece.length} characters long, more than ${MAX_PIECE_LENGTH}`);
      if (e.piece.includes('\0')) throw fail(`piece ${i} contains a NUL character`);
      const normal = e.type === PieceType.NORMAL || e.type === PieceType.USER_DEFINED || e.type === PieceType.UNUSED;
      const target = normal ? this.pieceIds : this.reservedIds;
      if (target.has(e.piece)) throw fail(`piece ${JSON.stringify(e.piece)} is defined twice`);
      target.set(e.piece, i);
      if (e.type === PieceType.USER_DEFINED) userDefinedTexts.push(e.piece);
      if (e.type === PieceType.UNKNOWN) {
        if (unk >= 0) throw fail('more than one unknown piece');
        unk = i;
      }
      if (e.type === PieceType.BYTE) {
        const m = /^<0x([0-9A-F]{2})>$/.exec(e.piece);
        if (!m) throw fail(`byte piece ${JSON.stringify(e.piece)} is not <0xNN>`);
        if (!proto.trainerSpec.byteFallback) throw fail(`byte piece ${e.piece} found although byte_fallback is false`);
      }
    }
    if (unk < 0) throw fail('no unknown (<unk>) piece');
    this.unkId = unk;
    const inRange = (id: number) => (id >= 0 && id < n ? id : -1);
    this.bosId = inRange(proto.trainerSpec.bosId);
    this.eosId = inRange(proto.trainerSpec.eosId);
    this.byteFallback = proto.trainerSpec.byteFallback;
    if (this.byteFallback) {
      for (let b = 0; b < 256; b++) {
        const id = this.pieceToId(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
        if (id === unk) throw fail(`byte_fallback is on but byte piece <0x${b.toString(16).toUpperCase().padStart(2, '0')}> is missing`);
        this.byteIds[b] = id;
      }
    }
    this.hasUnused = proto.pieces.some((p) => p.type === PieceType.UNUSED);
    this.normalizer = new Normalizer(proto.normalizerSpec, proto.trainerSpec.treatWhitespaceAsSuffix, userDefinedTexts, file);
    for (const text of userDefinedTexts) {
      const k = text.charCodeAt(0);
      let list = this.userDefined.get(k);
      if (!list) this.userDefined.set(k, (list = []));
      list.push({ text, id: this.pieceIds.get(text)! });
    }
    for (const list of this.userDefined.values()) list.sort((a, b) => b.text.length - a.text.length);

    // Symbols: every piece id is a symbol; characters that are not pieces themselves but occur
    // inside pieces (or are reserved single characters) get extra ids after the vocabulary.
    this.bmpSym = new Int32Array(65536).fill(-1);
    const extraResolve: number[] = [];
    let nextSym = n;
    const bmpSym = this.bmpSym;
    const charSymbol = (cp: number): number => {
      const existing = cp < 65536 ? bmpSym[cp]! : (this.astralSym.get(cp) ?? -1);
      if (existing >= 0) return existing;
      const ch = String.fromCodePoint(cp);
      const pid = this.pieceIds.get(ch);
      let sym: number;
      if (pid !== undefined) sym = pid;
      else {
        sym = nextSym++;
        extraResolve.push(this.reservedIds.get(ch) ?? unk);
      }
      if (cp < 65536) bmpSym[cp] = sym;
      else this.astralSym.set(cp, sym);
      return sym;
    };
    let charCount = 0;
    for (let id = 0; id < n; id++) if (this.isMergeable(id)) charCount += proto.pieces[id]!.piece.length;
    if (charCount > MAX_PIECE_CHARS) throw fail(`the pieces hold ${charCount} characters in all, more than ${MAX_PIECE_CHARS}`);
    this.bigrams = new PairTable(charCount);
    // Flat (left symbol, right symbol, piece) triples for every way a piece splits into two symbols.
    const splits: number[] = [];
    const bounds: number[] = [];
    for (let id = 0; id < n; id++) {
      if (!this.isMergeable(id)) continue;
      const piece = proto.pieces[id]!.piece;
      bounds.length = 0;
      let prevCp = -1;
      for (let i = 0; i < piece.length; ) {
        const cp = piece.codePointAt(i)!;
        bounds.push(i);
        charSymbol(cp);
        if (prevCp >= 0) this.bigrams.set(prevCp, cp, 1);
        prevCp = cp;
        i += cp > 0xffff ? 2 : 1;
      }
      const nc = bounds.length;
      for (let k = 1; k < nc; k++) {
        const cut = bounds[k]!;
        const ls = k === 1 ? charSymbol(piece.codePointAt(0)!) : (this.pieceIds.get(piece.slice(0, cut)) ?? -1);
        if (ls < 0) continue;
        const rs = k === nc - 1 ? charSymbol(piece.codePointAt(cut)!) : (this.pieceIds.get(piece.slice(cut)) ?? -1);
        if (rs >= 0) splits.push(ls, rs, id);
      }
    }
    for (const [piece] of this.reservedIds) {
      const cp = piece.codePointAt(0)!;
      if (piece.length === (cp > 0xffff ? 2 : 1)) charSymbol(cp);
    }
    this.noSym = nextSym++;
    extraResolve.push(unk);
    this.resolve = new Int32Array(nextSym);
    for (let i = 0; i < n; i++) this.resolve[i] = this.reservedIds.get(proto.pieces[i]!.piece) ?? i;
    for (let i = 0; i < extraResolve.length; i++) this.resolve[n + i] = extraResolve[i]!;
    this.pairs = new PairTable(splits.length / 3);
    for (let i = 0; i < splits.length; i += 3) this.pairs.set(splits[i]!, splits[i + 1]!, splits[i + 2]!);
    // The text can be cut between characters x and y when no mergeable piece contains "xy": no
    // symbol can ever span that point, and BPE on each side runs independently (same merges,
    // same order). Not with UNUSED pieces: their rev_merge bookkeeping is whole-sentence.
    this.unigram =
      modelType === ModelType.UNIGRAM ? new UnigramEncoder(proto.pieces, this.scores, this.types, unk) : null;
    // Unigram scores accumulate in float32 from the start of the sentence, so cutting the text
    // could change rounding and near-ties: it is always encoded whole.
    this.splitWords = !this.hasUnused && this.unigram === null;

    const unkSurface = proto.trainerSpec.unkSurface;
    this.surface = new Array<string>(n);
    this.surfaceNoLeadingSpace = new Array<string>(n);
    this.startsWithSpace = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const p = proto.pieces[i]!.piece;
      const t = this.types[i]!;
      if (t === PieceType.CONTROL) {
        this.surface[i] = this.surfaceNoLeadingSpace[i] = '';
      } else if (t === PieceType.UNKNOWN) {
        this.surface[i] = this.surfaceNoLeadingSpace[i] = unkSurface;
      } else {
        this.surface[i] = p.replaceAll(SPACE_SYMBOL, ' ');
        this.startsWithSpace[i] = p.startsWith(SPACE_SYMBOL) ? 1 : 0;
        this.surfaceNoLeadingSpace[i] = p.startsWith(SPACE_SYMBOL) ? p.slice(1).replaceAll(SPACE_SYMBOL, ' ') : this.surface[i]!;
      }
    }
  }

  /** NORMAL, USER_DEFINED or UNUSED: the pieces BPE can produce by merging. */
  private isMergeable(id: number): boolean {
    const t = this.types[id];
    return t === PieceType.NORMAL || t === PieceType.USER_DEFINED || t === PieceType.UNUSED;
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
    return this.reservedIds.get(piece) ?? this.pieceIds.get(piece) ?? this.unkId;
  }

  pieceType(id: number): number {
    this.checkId(id);
    return this.types[id]!;
  }

  specialId(name: string): number | undefined {
    const id = this.reservedIds.get(name);
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

  private grow(m: number): void {
    if (this.sym.length >= m) return;
    let cap = this.sym.length;
    while (cap < m) cap *= 2;
    this.sym = new Int32Array(cap);
    this.start = new Int32Array(cap);
    this.prev = new Int32Array(cap);
    this.next = new Int32Array(cap);
    this.frozen = new Uint8Array(cap);
  }

  /** BPE over s[from, to) (normalized text); appends output ids (byte fallback applied). */
  private encodeSegment(s: string, from: number, to: number, out: number[]): void {
    if (this.unigram) {
      this.unigram.encode(s, from, to, (start, end, id) => {
        if (id === this.unkId && this.byteFallback) {
          const bytes = utf8.encode(s.slice(start, end));
          for (let k = 0; k < bytes.length; k++) out.push(this.byteIds[bytes[k]!]!);
        } else out.push(id);
      });
      return;
    }
    this.grow(to - from + 1);
    const sym = this.sym;
    const start = this.start;
    const frozen = this.frozen;
    const bmp = this.bmpSym;
    const hasUD = this.userDefined.size > 0;
    let m = 0;
    let pos = from;
    while (pos < to) {
      const c = s.charCodeAt(pos);
      start[m] = pos;
      frozen[m] = 0;
      if (hasUD) {
        const list = this.userDefined.get(c);
        if (list) {
          let hit = false;
          for (const ud of list) {
            if (ud.text.length <= to - pos && s.startsWith(ud.text, pos)) {
              sym[m++] = ud.id;
              frozen[m - 1] = 1;
              pos += ud.text.length;
              hit = true;
              break;
            }
          }
          if (hit) continue;
        }
      }
      if (c >= 0xd800 && c < 0xdc00 && pos + 1 < to) {
        const cp = s.codePointAt(pos)!;
        sym[m++] = this.astralSym.get(cp) ?? this.noSym;
        pos += 2;
      } else {
        const v = bmp[c]!;
        sym[m++] = v >= 0 ? v : this.noSym;
        pos += 1;
      }
    }
    start[m] = to;
    if (m === 0) return;
    if (m >= 2) {
      if (m <= SCAN_LIMIT && !this.hasUnused) this.mergeByScan(m);
      else this.mergeByHeap(m);
    } else {
      this.next[0] = -1;
    }
    // Emit: walk the linked list.
    const next = this.next;
    const resolve = this.resolve;
    for (let i = 0; i !== -1; i = next[i]!) {
      const sid = sym[i]!;
      const id = resolve[sid]!;
      if (id === this.unkId && this.byteFallback) {
        const end = next[i] === -1 ? to : start[next[i]!]!;
        const bytes = utf8.encode(s.slice(start[i]!, end));
        for (let k = 0; k < bytes.length; k++) out.push(this.byteIds[bytes[k]!]!);
      } else if (this.hasUnused && this.types[id] === PieceType.UNUSED) {
        this.resegment(sid, out);
      } else {
        out.push(id);
      }
    }
  }

  /** Small words: pick the best pair by linear scans (same order as the library's heap). */
  private mergeByScan(m: number): void {
    const sym = this.sym;
    const frozen = this.frozen;
    const next = this.next;
    const scores = this.scores;
    const pairs = this.pairs;
    // Work on a compact array of live symbol indices.
    const live: number[] = [];
    for (let i = 0; i < m; i++) live.push(i);
    const merged: number[] = new Array<number>(m - 1);
    for (let k = 0; k + 1 < live.length; k++) {
      merged[k] = frozen[k] || frozen[k + 1] ? -1 : pairs.get(sym[k]!, sym[k + 1]!);
    }
    while (live.length > 1) {
      let best = -1;
      let bestScore = -Infinity;
      for (let k = 0; k + 1 < live.length; k++) {
        const id = merged[k]!;
        if (id >= 0 && (best < 0 || scores[id]! > bestScore)) {
          best = k;
          bestScore = scores[id]!;
        }
      }
      if (best < 0) break;
      const l = live[best]!;
      sym[l] = merged[best]!;
      live.splice(best + 1, 1);
      merged.splice(best, 1);
      if (best > 0) {
        const pl = live[best - 1]!;
        merged[best - 1] = frozen[pl] ? -1 : pairs.get(sym[pl]!, sym[l]!);
      }
      if (best + 1 < live.length) {
        const nr = live[best + 1]!;
        merged[best] = frozen[nr] ? -1 : pairs.get(sym[l]!, sym[nr]!);
      }
    }
    for (let k = 0; k < live.length; k++) next[live[k]!] = k + 1 < live.length ? live[k + 1]! : -1;
  }

  private revMerge = new Map<number, [number, number]>();

  /** Long runs (e.g. Chinese without spaces): the library's priority-queue algorithm. */
  private mergeByHeap(m: number): void {
    const sym = this.sym;
    const frozen = this.frozen;
    const prev = this.prev;
    const next = this.next;
    const scores = this.scores;
    const pairs = this.pairs;
    const heap = this.heap;
    const trackUnused = this.hasUnused;
    if (trackUnused) this.revMerge.clear();
    heap.reset();
    for (let i = 0; i < m; i++) {
      prev[i] = i - 1;
      next[i] = i + 1 < m ? i + 1 : -1;
    }
    const add = (l: number, r: number) => {
      if (l < 0 || r < 0 || frozen[l] || frozen[r]) return;
      const id = pairs.get(sym[l]!, sym[r]!);
      if (id < 0) return;
      heap.push(scores[id]!, l, r, sym[l]!, sym[r]!, id);
      if (trackUnused && this.types[id] === PieceType.UNUSED) this.revMerge.set(id, [sym[l]!, sym[r]!]);
    };
    for (let i = 1; i < m; i++) add(i - 1, i);
    while (heap.size > 0) {
      const e = heap.pop();
      const l = heap.left[e]!;
      const r = heap.right[e]!;
      // Stale: one side already merged away or changed since this pair was queued.
      if (sym[l] !== heap.symL[e] || sym[r] !== heap.symR[e] || next[l] !== r) continue;
      sym[l] = heap.merged[e]!;
      const rn = next[r]!;
      next[l] = rn;
      if (rn >= 0) prev[rn] = l;
      sym[r] = -1;
      add(prev[l]!, l);
      add(l, rn);
    }
  }

  /** The library's resegment(): UNUSED pieces are split back into the pair that formed them. */
  private resegment(root: number, out: number[]): void {
    // Iterative: a crafted model can chain UNUSED pieces thousands deep.
    const stack = [root];
    while (stack.length > 0) {
      const sid = stack.pop()!;
      const id = this.resolve[sid]!;
      const p = this.types[id] === PieceType.UNUSED ? this.revMerge.get(id) : undefined;
      if (!p) out.push(id);
      else stack.push(p[1], p[0]);
    }
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
  decodeInfo(id: number): { type: number; surface: string; stripped: string; spaced: boolean; byte: number } {
    this.checkId(id);
    const type = this.types[id]!;
    let byte = -1;
    if (type === PieceType.BYTE) byte = parseInt(this.entries[id]!.piece.slice(3, 5), 16);
    return {
      type,
      surface: this.surface[id]!,
      stripped: this.surfaceNoLeadingSpace[id]!,
      spaced: this.startsWithSpace[id] === 1,
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

/**
 * Incremental form of the library's Decode(): text is released as soon as it can no longer
 * change. Byte pieces are held until they form a complete UTF-8 character; the first piece's
 * leading U+2581 (the dummy prefix) is dropped as long as nothing visible came before it.
 */
export class SentencePieceStreamDecoder implements StreamDecoder {
  private bytes: number[] = [];
  /** Library state: still expecting the beginning-of-sentence space. */
  private isBosWs = true;
  private bosWsSeen = false;
  private emitted = false;
  private readonly stripDummy: boolean;
  private readonly removeExtra: boolean;

  constructor(private readonly sp: SentencePieceTokenizer) {
    const s = sp.stripsFirstSpace;
    this.stripDummy = s.dummy || s.removeExtra;
    this.removeExtra = s.removeExtra;
  }

  push(id: number): string {
    const info = this.sp.decodeInfo(id);
    if (info.type === PieceType.BYTE) {
      this.bytes.push(info.byte);
      return this.drainBytes(false);
    }
    let out = this.drainBytes(true);
    if (this.bosWsSeen || this.emitted) this.isBosWs = false;
    let text: string;
    let seen = false;
    if (info.type === PieceType.CONTROL || info.type === PieceType.UNKNOWN) {
      text = info.surface;
    } else if (this.isBosWs && this.stripDummy && info.spaced) {
      text = info.stripped;
      seen = !this.removeExtra;
    } else {
      text = info.surface;
    }
    this.bosWsSeen = seen;
    if (text.length > 0) this.emitted = true;
    out += text;
    return out;
  }

  /** Text that the library would output for a string that is not a piece: shown as-is. */
  pushVerbatim(text: string): string {
    let out = this.drainBytes(true);
    if (this.bosWsSeen || this.emitted) this.isBosWs = false;
    this.bosWsSeen = false;
    if (text.length > 0) this.emitted = true;
    return out + text;
  }

  flush(): string {
    return this.drainBytes(true);
  }

  private drainBytes(final: boolean): string {
    const b = this.bytes;
    if (b.length === 0) return '';
    let out = '';
    let pos = 0;
    while (pos < b.length) {
      const [cp, n] = decodeUtf8Char(b, pos, b.length, !final);
      if (cp === -2) break;
      out += cp < 0 ? '\uFFFD' : String.fromCodePoint(cp);
      pos += n;
    }
    if (pos > 0) {
      this.emitted = true;
      b.splice(0, pos);
    }
    return out;
  }
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

/** Min-heap ordering of the library's agenda: higher score first, then smaller left index. */
class Heap {
  score = new Float64Array(256);
  left = new Int32Array(256);
  right = new Int32Array(256);
  symL = new Int32Array(256);
  symR = new Int32Array(256);
  merged = new Int32Array(256);
  private order = new Int32Array(256);
  private count = 0;
  size = 0;

  reset(): void {
    this.count = 0;
    this.size = 0;
  }

  private growTo(n: number): void {
    if (n <= this.score.length) return;
    const cap = Math.max(n, this.score.length * 2);
    const g = <T extends Float64Array | Int32Array>(a: T, mk: (n: number) => T): T => {
      const b = mk(cap);
      b.set(a);
      return b;
    };
    this.score = g(this.score, (c) => new Float64Array(c));
    this.left = g(this.left, (c) => new Int32Array(c));
    this.right = g(this.right, (c) => new Int32Array(c));
    this.symL = g(this.symL, (c) => new Int32Array(c));
    this.symR = g(this.symR, (c) => new Int32Array(c));
    this.merged = g(this.merged, (c) => new Int32Array(c));
    this.order = g(this.order, (c) => new Int32Array(c));
  }

  private before(a: number, b: number): boolean {
    const sa = this.score[a]!;
    const sb = this.score[b]!;
    return sa > sb || (sa === sb && this.left[a]! < this.left[b]!);
  }

  push(score: number, l: number, r: number, sl: number, sr: number, merged: number): void {
    const e = this.count++;
    this.growTo(this.count);
    if (this.size + 1 > this.order.length) this.growTo(this.size + 1);
    this.score[e] = score;
    this.left[e] = l;
    this.right[e] = r;
    this.symL[e] = sl;
    this.symR[e] = sr;
    this.merged[e] = merged;
    const h = this.order;
    let i = this.size++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(e, h[p]!)) break;
      h[i] = h[p]!;
      i = p;
    }
    h[i] = e;
  }

  /** Removes and returns the entry index of the best pair. */
  pop(): number {
    const h = this.order;
    const top = h[0]!;
    const last = h[--this.size]!;
    if (this.size > 0) {
      let i = 0;
      const n = this.size;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && this.before(h[r]!, h[l]!) ? r : l;
        if (!this.before(h[c]!, last)) break;
        h[i] = h[c]!;
        i = c;
      }
      h[i] = last;
    }
    return top;
  }
}

/**
 * The vocabulary of a SentencePiece model, read and checked once: piece ids by text (ordinary and
 * reserved, as the library's pieces_ and reserved_id_map_), the symbol tables BPE merges over, and
 * the decode surfaces.
 */
import { ChatGLMError, badFormat } from '../errors.js';
import { SPACE_SYMBOL } from './normalizer.js';
import { PieceType, type ModelProtoFields } from './sentencepiece-model.js';
import { PairTable } from './bpe-tables.js';

/**
 * Bounds far above real models (ChatGLM3: 64,798 pieces of at most 16 characters), so that a
 * crafted tokenizer.model fails with a clear error instead of building tables of its own choosing.
 */
const MAX_PIECES = 1 << 22;
const MAX_PIECE_LENGTH = 1024;
const MAX_PIECE_CHARS = 1 << 23;

export interface SentencePieceVocabulary {
  readonly size: number;
  readonly scores: Float64Array;
  readonly types: Uint8Array;
  /** NORMAL, USER_DEFINED and UNUSED pieces (the library's pieces_). */
  readonly pieceIds: Map<string, number>;
  /** CONTROL, UNKNOWN and BYTE pieces (the library's reserved_id_map_). */
  readonly reservedIds: Map<string, number>;
  readonly unkId: number;
  /** trainer_spec bos_id / eos_id when they name a piece, else -1. */
  readonly bosId: number;
  readonly eosId: number;
  readonly byteFallback: boolean;
  /** Byte value -> <0xNN> piece id (-1 without byte fallback). */
  readonly byteIds: Int32Array;
  readonly userDefinedTexts: string[];
  /** User-defined pieces grouped by first UTF-16 unit, longest first. */
  readonly userDefined: Map<number, { text: string; id: number }[]>;
  readonly hasUnused: boolean;
}

/** The symbols BPE merges over: every piece id, plus extra ids for characters found only inside pieces. */
export interface SymbolTables {
  /** Symbol id -> output id (a piece id; reserved pieces win, as PieceToId does). */
  readonly resolve: Int32Array;
  /** Symbol ids of single characters: BMP in a table, the rest in a map. */
  readonly bmpSym: Int32Array;
  readonly astralSym: Map<number, number>;
  /** Symbol for characters that occur in no piece at all: never merges, resolves to unk. */
  readonly noSym: number;
  /** (left symbol, right symbol) -> the piece they merge into. */
  readonly pairs: PairTable;
  /** Adjacent character pairs (code points) that occur inside some mergeable piece. */
  readonly bigrams: PairTable;
}

export interface DecodeSurfaces {
  readonly surface: string[];
  readonly surfaceNoLeadingSpace: string[];
  readonly startsWithSpace: Uint8Array;
}

function invalid(file: string, why: string): ChatGLMError {
  return badFormat(file, `invalid SentencePiece model: ${why}`);
}

/** NORMAL, USER_DEFINED or UNUSED: the pieces BPE can produce by merging. */
export function isMergeable(type: number): boolean {
  return type === PieceType.NORMAL || type === PieceType.USER_DEFINED || type === PieceType.UNUSED;
}

/** Reads and checks the pieces: ids by text, unk/bos/eos, byte pieces, user-defined pieces. */
export function readVocabulary(proto: ModelProtoFields, file: string): SentencePieceVocabulary {
  const n = proto.pieces.length;
  if (n > MAX_PIECES) throw invalid(file, `${n} pieces, more than ${MAX_PIECES}`);
  const scores = new Float64Array(n);
  const types = new Uint8Array(n);
  const pieceIds = new Map<string, number>();
  const reservedIds = new Map<string, number>();
  let unk = -1;
  const userDefinedTexts: string[] = [];
  for (let i = 0; i < n; i++) {
    const e = proto.pieces[i]!;
    scores[i] = e.score;
    types[i] = e.type;
    if (e.piece.length === 0) throw invalid(file, `piece ${i} is empty`);
    if (e.piece.length > MAX_PIECE_LENGTH) throw invalid(file, `piece ${i} is ${e.piece.length} characters long, more than ${MAX_PIECE_LENGTH}`);
    if (e.piece.includes('\0')) throw invalid(file, `piece ${i} contains a NUL character`);
    const target = isMergeable(e.type) ? pieceIds : reservedIds;
    if (target.has(e.piece)) throw invalid(file, `piece ${JSON.stringify(e.piece)} is defined twice`);
    target.set(e.piece, i);
    if (e.type === PieceType.USER_DEFINED) userDefinedTexts.push(e.piece);
    if (e.type === PieceType.UNKNOWN) {
      if (unk >= 0) throw invalid(file, 'more than one unknown piece');
      unk = i;
    }
    if (e.type === PieceType.BYTE) {
      const m = /^<0x([0-9A-F]{2})>$/.exec(e.piece);
      if (!m) throw invalid(file, `byte piece ${JSON.stringify(e.piece)} is not <0xNN>`);
      if (!proto.trainerSpec.byteFallback) throw invalid(file, `byte piece ${e.piece} found although byte_fallback is false`);
    }
  }
  if (unk < 0) throw invalid(file, 'no unknown (<unk>) piece');
  const inRange = (id: number) => (id >= 0 && id < n ? id : -1);
  const byteFallback = proto.trainerSpec.byteFallback;
  const byteIds = new Int32Array(256).fill(-1);
  if (byteFallback) {
    for (let b = 0; b < 256; b++) {
      const name = `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`;
      const id = reservedIds.get(name) ?? pieceIds.get(name) ?? unk;
      if (id === unk) throw invalid(file, `byte_fallback is on but byte piece ${name} is missing`);
      byteIds[b] = id;
    }
  }
  const userDefined = new Map<number, { text: string; id: number }[]>();
  for (const text of userDefinedTexts) {
    const k = text.charCodeAt(0);
    let list = userDefined.get(k);
    if (!list) userDefined.set(k, (list = []));
    list.push({ text, id: pieceIds.get(text)! });
  }
  for (const list of userDefined.values()) list.sort((a, b) => b.text.length - a.text.length);
  return {
    size: n,
    scores,
    types,
    pieceIds,
    reservedIds,
    unkId: unk,
    bosId: inRange(proto.trainerSpec.bosId),
    eosId: inRange(proto.trainerSpec.eosId),
    byteFallback,
    byteIds,
    userDefinedTexts,
    userDefined,
    hasUnused: proto.pieces.some((p) => p.type === PieceType.UNUSED),
  };
}

/**
 * Symbols: every piece id is a symbol; characters that are not pieces themselves but occur inside
 * pieces (or are reserved single characters) get extra ids after the vocabulary. Also the pair
 * table (every way a piece splits into two symbols) and the character bigrams.
 */
export function buildSymbols(proto: ModelProtoFields, vocab: SentencePieceVocabulary, file: string): SymbolTables {
  const n = vocab.size;
  const { pieceIds, reservedIds, unkId: unk } = vocab;
  const bmpSym = new Int32Array(65536).fill(-1);
  const astralSym = new Map<number, number>();
  const extraResolve: number[] = [];
  let nextSym = n;
  const charSymbol = (cp: number): number => {
    const existing = cp < 65536 ? bmpSym[cp]! : (astralSym.get(cp) ?? -1);
    if (existing >= 0) return existing;
    const ch = String.fromCodePoint(cp);
    const pid = pieceIds.get(ch);
    let sym: number;
    if (pid !== undefined) sym = pid;
    else {
      sym = nextSym++;
      extraResolve.push(reservedIds.get(ch) ?? unk);
    }
    if (cp < 65536) bmpSym[cp] = sym;
    else astralSym.set(cp, sym);
    return sym;
  };
  let charCount = 0;
  for (let id = 0; id < n; id++) if (isMergeable(vocab.types[id]!)) charCount += proto.pieces[id]!.piece.length;
  if (charCount > MAX_PIECE_CHARS) throw invalid(file, `the pieces hold ${charCount} characters in all, more than ${MAX_PIECE_CHARS}`);
  const bigrams = new PairTable(charCount);
  // Flat (left symbol, right symbol, piece) triples for every way a piece splits into two symbols.
  const splits: number[] = [];
  const bounds: number[] = [];
  for (let id = 0; id < n; id++) {
    if (!isMergeable(vocab.types[id]!)) continue;
    const piece = proto.pieces[id]!.piece;
    bounds.length = 0;
    let prevCp = -1;
    for (let i = 0; i < piece.length; ) {
      const cp = piece.codePointAt(i)!;
      bounds.push(i);
      charSymbol(cp);
      if (prevCp >= 0) bigrams.set(prevCp, cp, 1);
      prevCp = cp;
      i += cp > 0xffff ? 2 : 1;
    }
    const nc = bounds.length;
    for (let k = 1; k < nc; k++) {
      const cut = bounds[k]!;
      const ls = k === 1 ? charSymbol(piece.codePointAt(0)!) : (pieceIds.get(piece.slice(0, cut)) ?? -1);
      if (ls < 0) continue;
      const rs = k === nc - 1 ? charSymbol(piece.codePointAt(cut)!) : (pieceIds.get(piece.slice(cut)) ?? -1);
      if (rs >= 0) splits.push(ls, rs, id);
    }
  }
  for (const [piece] of reservedIds) {
    const cp = piece.codePointAt(0)!;
    if (piece.length === (cp > 0xffff ? 2 : 1)) charSymbol(cp);
  }
  const noSym = nextSym++;
  extraResolve.push(unk);
  const resolve = new Int32Array(nextSym);
  for (let i = 0; i < n; i++) resolve[i] = reservedIds.get(proto.pieces[i]!.piece) ?? i;
  for (let i = 0; i < extraResolve.length; i++) resolve[n + i] = extraResolve[i]!;
  const pairs = new PairTable(splits.length / 3);
  for (let i = 0; i < splits.length; i += 3) pairs.set(splits[i]!, splits[i + 1]!, splits[i + 2]!);
  return { resolve, bmpSym, astralSym, noSym, pairs, bigrams };
}

/** What each piece shows when decoded: U+2581 as space, control pieces as '', unk as unk_surface. */
export function buildSurfaces(proto: ModelProtoFields, types: Uint8Array): DecodeSurfaces {
  const n = proto.pieces.length;
  const unkSurface = proto.trainerSpec.unkSurface;
  const surface = new Array<string>(n);
  const surfaceNoLeadingSpace = new Array<string>(n);
  const startsWithSpace = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const p = proto.pieces[i]!.piece;
    const t = types[i]!;
    if (t === PieceType.CONTROL) {
      surface[i] = surfaceNoLeadingSpace[i] = '';
    } else if (t === PieceType.UNKNOWN) {
      surface[i] = surfaceNoLeadingSpace[i] = unkSurface;
    } else {
      surface[i] = p.replaceAll(SPACE_SYMBOL, ' ');
      startsWithSpace[i] = p.startsWith(SPACE_SYMBOL) ? 1 : 0;
      surfaceNoLeadingSpace[i] = p.startsWith(SPACE_SYMBOL) ? p.slice(1).replaceAll(SPACE_SYMBOL, ' ') : surface[i]!;
    }
  }
  return { surface, surfaceNoLeadingSpace, startsWithSpace };
}

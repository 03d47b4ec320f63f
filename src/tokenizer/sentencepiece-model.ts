/**
 * SentencePiece ModelProto (sentencepiece_model.proto): the fields the encoder and decoder use,
 * read from and written to the protobuf wire format. Field numbers and defaults follow the
 * official .proto; fields we do not model are skipped on read and not written.
 */
import { badFormat } from '../errors.js';
import { ProtoError, ProtoReader, ProtoWriter, WIRE_I32, WIRE_LEN, WIRE_VARINT } from './protobuf.js';

/** ModelProto.SentencePiece.Type. The numbers are also what GGUF's tokenizer.ggml.token_type uses. */
export const PieceType = {
  NORMAL: 1,
  UNKNOWN: 2,
  CONTROL: 3,
  USER_DEFINED: 4,
  UNUSED: 5,
  BYTE: 6,
} as const;
export type PieceTypeValue = (typeof PieceType)[keyof typeof PieceType];

export interface SentencePieceEntry {
  piece: string;
  score: number;
  /** One of PieceType. */
  type: number;
}

/** TrainerSpec.ModelType */
export const ModelType = { UNIGRAM: 1, BPE: 2, WORD: 3, CHAR: 4 } as const;

export interface TrainerSpecFields {
  modelType: number;
  vocabSize: number;
  treatWhitespaceAsSuffix: boolean;
  allowWhitespaceOnlyPieces: boolean;
  splitDigits: boolean;
  byteFallback: boolean;
  unkId: number;
  bosId: number;
  eosId: number;
  padId: number;
  unkSurface: string;
  unkPiece: string;
  bosPiece: string;
  eosPiece: string;
  padPiece: string;
}

export interface NormalizerSpecFields {
  name: string;
  /** Darts double-array trie + replacement strings; empty means identity. */
  precompiledCharsmap: Uint8Array;
  addDummyPrefix: boolean;
  removeExtraWhitespaces: boolean;
  escapeWhitespaces: boolean;
}

export interface ModelProtoFields {
  pieces: SentencePieceEntry[];
  trainerSpec: TrainerSpecFields;
  normalizerSpec: NormalizerSpecFields;
  /** Present in a few models (decoder-side normalization); kept so writing preserves it. */
  denormalizerSpec?: NormalizerSpecFields;
}

export function defaultTrainerSpec(): TrainerSpecFields {
  return {
    modelType: ModelType.UNIGRAM,
    vocabSize: 8000,
    treatWhitespaceAsSuffix: false,
    allowWhitespaceOnlyPieces: false,
    splitDigits: false,
    byteFallback: false,
    unkId: 0,
    bosId: 1,
    eosId: 2,
    padId: -1,
    unkSurface: ' \u2047 ',
    unkPiece: '<unk>',
    bosPiece: '<s>',
    eosPiece: '</s>',
    padPiece: '<pad>',
  };
}

export function defaultNormalizerSpec(): NormalizerSpecFields {
  return {
    name: '',
    precompiledCharsmap: new Uint8Array(0),
    addDummyPrefix: true,
    removeExtraWhitespaces: true,
    escapeWhitespaces: true,
  };
}

function expectWire(r: ProtoReader, wire: number, expected: number, what: string): void {
  if (wire !== expected) throw new ProtoError(`field ${what} has wire type ${wire}, expected ${expected} (byte ${r.pos})`);
}

function readPiece(r: ProtoReader): SentencePieceEntry {
  const out: SentencePieceEntry = { piece: '', score: 0, type: PieceType.NORMAL };
  while (!r.done) {
    const [f, w] = r.tag();
    if (f === 1) {
      expectWire(r, w, WIRE_LEN, 'SentencePiece.piece');
      out.piece = r.string();
    } else if (f === 2) {
      expectWire(r, w, WIRE_I32, 'SentencePiece.score');
      out.score = r.float32();
    } else if (f === 3) {
      expectWire(r, w, WIRE_VARINT, 'SentencePiece.type');
      out.type = r.varint();
    } else r.skip(w);
  }
  return out;
}

function readTrainer(r: ProtoReader): TrainerSpecFields {
  const t = defaultTrainerSpec();
  while (!r.done) {
    const [f, w] = r.tag();
    const isVarint = w === WIRE_VARINT;
    const isLen = w === WIRE_LEN;
    if (f === 3 && isVarint) t.modelType = r.varint();
    else if (f === 4 && isVarint) t.vocabSize = r.int32();
    else if (f === 24 && isVarint) t.treatWhitespaceAsSuffix = r.varint() !== 0;
    else if (f === 26 && isVarint) t.allowWhitespaceOnlyPieces = r.varint() !== 0;
    else if (f === 25 && isVarint) t.splitDigits = r.varint() !== 0;
    else if (f === 35 && isVarint) t.byteFallback = r.varint() !== 0;
    else if (f === 40 && isVarint) t.unkId = r.int32();
    else if (f === 41 && isVarint) t.bosId = r.int32();
    else if (f === 42 && isVarint) t.eosId = r.int32();
    else if (f === 43 && isVarint) t.padId = r.int32();
    else if (f === 44 && isLen) t.unkSurface = r.string();
    else if (f === 45 && isLen) t.unkPiece = r.string();
    else if (f === 46 && isLen) t.bosPiece = r.string();
    else if (f === 47 && isLen) t.eosPiece = r.string();
    else if (f === 48 && isLen) t.padPiece = r.string();
    else r.skip(w);
  }
  return t;
}

function readNormalizer(r: ProtoReader): NormalizerSpecFields {
  const n = defaultNormalizerSpec();
  while (!r.done) {
    const [f, w] = r.tag();
    const isVarint = w === WIRE_VARINT;
    const isLen = w === WIRE_LEN;
    if (f === 1 && isLen) n.name = r.string();
    else if (f === 2 && isLen) n.precompiledCharsmap = Uint8Array.prototype.slice.call(r.bytes());
    else if (f === 3 && isVarint) n.addDummyPrefix = r.varint() !== 0;
    else if (f === 4 && isVarint) n.removeExtraWhitespaces = r.varint() !== 0;
    else if (f === 5 && isVarint) n.escapeWhitespaces = r.varint() !== 0;
    else r.skip(w);
  }
  return n;
}

function sub(r: ProtoReader, what: string, wire: number): ProtoReader {
  expectWire(r, wire, WIRE_LEN, what);
  const [s, e] = r.lenDelimited();
  return new ProtoReader(r.buf, s, e);
}

/**
 * Parses a serialized ModelProto. `file` is only used in error messages. Throws ChatGLMError
 * (BAD_FORMAT) for anything that is not a well-formed SentencePiece model.
 */
export function parseModelProto(data: Uint8Array, file: string): ModelProtoFields {
  const notModel = (why: string) =>
    badFormat(file, `not a SentencePiece model (${why}); pass a tokenizer.model file from the model's Hugging Face repository`);
  const out: ModelProtoFields = {
    pieces: [],
    trainerSpec: defaultTrainerSpec(),
    normalizerSpec: defaultNormalizerSpec(),
  };
  // A plain Uint8Array view: Buffer#slice would not copy, and we keep sub-arrays around.
  data = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  try {
    const r = new ProtoReader(data);
    while (!r.done) {
      const [f, w] = r.tag();
      if (f === 1) out.pieces.push(readPiece(sub(r, 'ModelProto.pieces', w)));
      else if (f === 2) out.trainerSpec = readTrainer(sub(r, 'ModelProto.trainer_spec', w));
      else if (f === 3) out.normalizerSpec = readNormalizer(sub(r, 'ModelProto.normalizer_spec', w));
      else if (f === 5) out.denormalizerSpec = readNormalizer(sub(r, 'ModelProto.denormalizer_spec', w));
      else r.skip(w);
    }
  } catch (err) {
    if (err instanceof ProtoError) throw notModel(`protobuf is malformed or truncated: ${err.message}`);
    throw err;
  }
  if (out.pieces.length === 0) throw notModel('it has no pieces');
  for (let i = 0; i < out.pieces.length; i++) {
    const p = out.pieces[i]!;
    if (p.piece === '') throw notModel(`piece ${i} is empty`);
    if (p.type < 1 || p.type > 6) throw notModel(`piece ${i} has unknown type ${p.type}`);
  }
  return out;
}

function writeNormalizer(n: NormalizerSpecFields): ProtoWriter {
  const w = new ProtoWriter();
  if (n.name !== '') w.string(1, n.name);
  if (n.precompiledCharsmap.length > 0) w.bytes(2, n.precompiledCharsmap);
  w.bool(3, n.addDummyPrefix).bool(4, n.removeExtraWhitespaces).bool(5, n.escapeWhitespaces);
  return w;
}

/** Serializes a ModelProto that the official library (and parseModelProto) can load. */
export function writeModelProto(m: ModelProtoFields): Uint8Array {
  const w = new ProtoWriter();
  for (const p of m.pieces) {
    const pw = new ProtoWriter().string(1, p.piece).float32(2, p.score);
    if (p.type !== PieceType.NORMAL) pw.varint(3, p.type);
    w.message(1, pw);
  }
  const t = m.trainerSpec;
  const tw = new ProtoWriter()
    .varint(3, t.modelType)
    .varint(4, t.vocabSize)
    .bool(24, t.treatWhitespaceAsSuffix)
    .bool(25, t.splitDigits)
    .bool(26, t.allowWhitespaceOnlyPieces)
    .bool(35, t.byteFallback)
    .varint(40, t.unkId)
    .varint(41, t.bosId)
    .varint(42, t.eosId)
    .varint(43, t.padId)
    .string(44, t.unkSurface)
    .string(45, t.unkPiece)
    .string(46, t.bosPiece)
    .string(47, t.eosPiece)
    .string(48, t.padPiece);
  w.message(2, tw);
  w.message(3, writeNormalizer(m.normalizerSpec));
  if (m.denormalizerSpec) w.message(5, writeNormalizer(m.denormalizerSpec));
  return w.finish();
}

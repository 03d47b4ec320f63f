import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ChatGLMError } from '../src/errors.js';
import {
  PieceType,
  SentencePieceTokenizer,
  loadSentencePieceModel,
  parseModelProto,
  writeModelProto,
} from '../src/tokenizer/index.js';
import {
  CHARSMAP_DECODE_VECTORS,
  CHARSMAP_MODEL_BASE64,
  CHARSMAP_VECTORS,
  NOBYTE_MODEL_BASE64,
  NOBYTE_VECTORS,
  UNIGRAM_MODEL_BASE64,
  UNIGRAM_VECTORS,
} from './support/tokenizer-golden.js';
import { byteId, pid, smallModelBytes, smallModelProto, smallPieces } from './support/tokenizer-fixtures.js';
import { oracleEncode } from './support/tokenizer-oracle.js';

const sp = SentencePieceTokenizer.fromBytes(smallModelBytes(), 'small.model');
const S = '\u2581';

test('protobuf writer and reader round-trip the model', () => {
  const proto = smallModelProto();
  const bytes = writeModelProto(proto);
  const back = parseModelProto(bytes, 'x');
  assert.equal(back.pieces.length, proto.pieces.length);
  assert.deepEqual(back.pieces, proto.pieces);
  assert.deepEqual(back.trainerSpec, proto.trainerSpec);
  assert.deepEqual({ ...back.normalizerSpec, precompiledCharsmap: [] }, { ...proto.normalizerSpec, precompiledCharsmap: [] });
  assert.deepEqual(writeModelProto(back), bytes);
  // Piece 0 is <unk>: tag 0x0a (field 1, LEN), then the SentencePiece message.
  assert.equal(bytes[0], 0x0a);
});

test('merges follow score order, ties go to the leftmost pair (hand-checked)', () => {
  // ▁abc: ab and bc tie at -1 -> ab (left) wins; then nothing merges: ▁ ab c.
  assert.deepEqual(sp.encodeAsPieces('abc'), [S, 'ab', 'c']);
  // ▁bcd: cd (-0.5) beats bc (-1): ▁ b cd.
  assert.deepEqual(sp.encodeAsPieces('bcd'), [S, 'b', 'cd']);
  // ▁a (-3) merges when it is the best left.
  assert.deepEqual(sp.encodeAsPieces('a'), [`${S}a`]);
  assert.deepEqual(sp.encodeAsPieces('a b'), [`${S}a`, S, 'b']);
  assert.deepEqual(sp.encodeAsPieces('你好'), [S, '你好']);
  // Whitespace runs are kept and merge as ▁▁ (-2) before ▁a (-3).
  assert.deepEqual(sp.encodeAsPieces('  a'), [`${S}${S}`, `${S}a`]);
  assert.deepEqual(sp.encode('abc'), [pid(S), pid('ab'), pid('c')]);
});

test('long runs use the priority queue and agree with the hand result', () => {
  const text = 'abc'.repeat(30);
  const expected = [pid(S)];
  for (let i = 0; i < 30; i++) expected.push(pid('ab'), pid('c'));
  assert.deepEqual(sp.encode(text), expected);
  assert.deepEqual(sp.encode('你好'.repeat(40)), [pid(S), ...Array<number>(40).fill(pid('你好'))]);
});

test('byte fallback: unknown characters become <0xNN> pieces', () => {
  // € = E2 82 AC, 😀 = F0 9F 98 80
  assert.deepEqual(sp.encode('€'), [pid(S), byteId(0xe2), byteId(0x82), byteId(0xac)]);
  assert.deepEqual(sp.encode('a😀'), [pid(`${S}a`), byteId(0xf0), byteId(0x9f), byteId(0x98), byteId(0x80)]);
  // Control pieces are never matched in text: <s> is three unknown characters.
  assert.deepEqual(sp.encode('<s>'), [pid(S), byteId(0x3c), byteId(0x73), byteId(0x3e)]);
});

test('user-defined pieces are matched whole and never merged', () => {
  assert.deepEqual(sp.encodeAsPieces('a<|u|>b'), [`${S}a`, '<|u|>', 'b']);
  assert.deepEqual(sp.encodeAsPieces('<|u|><|u|>'), [S, '<|u|>', '<|u|>']);
});

test('UNUSED pieces are split back into the pair that formed them', () => {
  const withUnused = SentencePieceTokenizer.fromBytes(
    smallModelBytes([{ piece: 'dd', score: -0.1, type: PieceType.UNUSED }]),
    'unused.model',
  );
  assert.deepEqual(withUnused.encodeAsPieces('dd'), [S, 'd', 'd']);
  assert.deepEqual(withUnused.encodeAsPieces('bcd'), [S, 'b', 'cd']);
});

test('encode agrees with a naive string-based oracle on random text', () => {
  const alphabet = ['a', 'b', 'c', 'd', ' ', ' ', '你', '好', '€', '<|u|>', 'x'];
  let seed = 12345;
  const rnd = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed / 2 ** 32;
  };
  const pieces = smallPieces();
  for (let n = 0; n < 400; n++) {
    const len = Math.floor(rnd() * (n < 300 ? 12 : 80));
    let text = '';
    for (let i = 0; i < len; i++) text += alphabet[Math.floor(rnd() * alphabet.length)];
    assert.deepEqual(sp.encode(text), oracleEncode(pieces, text, true), JSON.stringify(text));
  }
});

test('decode: dummy space dropped once, bytes reassembled, controls hidden', () => {
  assert.equal(sp.decode(sp.encode('a b  abc')), 'a b  abc');
  assert.equal(sp.decode([pid(`${S}a`), pid(`${S}a`)]), 'a a');
  assert.equal(sp.decode([1, pid(`${S}a`), 2]), 'a');
  assert.equal(sp.decode(sp.encode('€😀你好')), '€😀你好');
  // A lone continuation byte is malformed: one U+FFFD per byte, as the library does.
  assert.equal(sp.decode([byteId(0x80), byteId(0xe4), byteId(0xbd)]), '\uFFFD\uFFFD\uFFFD');
  assert.equal(sp.decode([0]), ' \u2047 ');
  assert.equal(sp.decode([]), '');
});

test('stream decoder never emits half a character', () => {
  for (const text of ['😀', '你好€x😀 ab', '€€€', ' 𝄞 a']) {
    const ids = sp.encode(text);
    const d = sp.createStreamDecoder();
    let all = '';
    for (const id of ids) {
      const part = d.push(id);
      // Every chunk is well-formed on its own (no lone surrogate, no U+FFFD from a split char).
      assert.ok(!/[\uD800-\uDFFF]/.test(part.replace(/[\uD800-\uDBFF][\uDC00-\uDFFF]/g, '')), JSON.stringify(part));
      assert.ok(!part.includes('\uFFFD'));
      all += part;
    }
    all += d.flush();
    assert.equal(all, sp.decode(ids));
    assert.equal(all, text);
  }
  // Nothing comes out until the emoji's last byte arrives.
  const d = sp.createStreamDecoder();
  assert.equal(d.push(byteId(0xf0)), '');
  assert.equal(d.push(byteId(0x9f)), '');
  assert.equal(d.push(byteId(0x98)), '');
  assert.equal(d.push(byteId(0x80)), '😀');
  // A truncated character is released as U+FFFD only at the end.
  assert.equal(d.push(byteId(0xe4)), '');
  assert.equal(d.flush(), '\uFFFD');
});

test('golden: charsmap model made by the official library', () => {
  const g = SentencePieceTokenizer.fromBytes(Buffer.from(CHARSMAP_MODEL_BASE64, 'base64'), 'charsmap.model');
  assert.ok(g.options.precompiledCharsmap.length > 0);
  assert.equal(g.options.removeExtraWhitespaces, true);
  for (const v of CHARSMAP_VECTORS) {
    assert.deepEqual(g.encode(v.text), v.ids, JSON.stringify(v.text));
    assert.deepEqual(g.encodeAsPieces(v.text), v.pieces, JSON.stringify(v.text));
    assert.equal(g.decode(v.ids), v.decoded, JSON.stringify(v.text));
  }
  // Library output for a leading BOM: an ordinary character (byte fallback), kept by decode.
  assert.deepEqual(g.encode('\ufeffab'), [293, 243, 191, 195, 294, 295]);
  assert.equal(g.decode([293, 243, 191, 195, 294, 295]), '\ufeffab');
});

test('golden: no byte fallback, runs of unknown characters become one <unk>', () => {
  const g = SentencePieceTokenizer.fromBytes(Buffer.from(NOBYTE_MODEL_BASE64, 'base64'), 'nobyte.model');
  assert.equal(g.byteFallback, false);
  for (const v of NOBYTE_VECTORS) {
    assert.deepEqual(g.encode(v.text), v.ids, JSON.stringify(v.text));
    assert.equal(g.decode(v.ids), v.decoded, JSON.stringify(v.text));
  }
});

test('fromPieces rebuilds the same tokenizer from listPieces + options', () => {
  const g = SentencePieceTokenizer.fromBytes(Buffer.from(CHARSMAP_MODEL_BASE64, 'base64'), 'charsmap.model');
  const again = SentencePieceTokenizer.fromPieces(g.listPieces(), g.options);
  for (const v of CHARSMAP_VECTORS) assert.deepEqual(again.encode(v.text), v.ids);
  const small = SentencePieceTokenizer.fromPieces(smallPieces());
  assert.deepEqual(small.encode('abc €'), sp.encode('abc €'));
  assert.deepEqual(
    sp.listPieces().slice(0, 2),
    [
      { piece: '<unk>', score: 0, type: PieceType.UNKNOWN },
      { piece: '<s>', score: 0, type: PieceType.CONTROL },
    ],
  );
});

test('bad input gives clear ChatGLMErrors', async () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'tok-'));
  const notModel = path.join(dir, 'not.model');
  writeFileSync(notModel, '{"this is": "json"}\n');
  await assert.rejects(loadSentencePieceModel(notModel), (e: unknown) => {
    assert.ok(e instanceof ChatGLMError);
    assert.equal(e.code, 'BAD_FORMAT');
    assert.match(e.message, /not\.model: not a SentencePiece model/);
    return true;
  });
  const full = smallModelBytes();
  const truncated = path.join(dir, 'truncated.model');
  writeFileSync(truncated, full.subarray(0, Math.floor(full.length / 2) + 1));
  await assert.rejects(loadSentencePieceModel(truncated), (e: unknown) => {
    assert.ok(e instanceof ChatGLMError);
    assert.match(e.message, /truncated\.model: .*(truncated|runs past the end)/);
    return true;
  });
  await assert.rejects(loadSentencePieceModel(path.join(dir, 'missing.model')), (e: unknown) => {
    assert.ok(e instanceof ChatGLMError);
    assert.equal(e.code, 'FILE_NOT_FOUND');
    return true;
  });
  assert.throws(() => sp.decode([5, sp.vocabSize]), (e: unknown) => {
    assert.ok(e instanceof ChatGLMError);
    assert.match(e.message, new RegExp(`token id ${sp.vocabSize} is out of range`));
    return true;
  });
  assert.throws(() => sp.decode([-1]), ChatGLMError);
  assert.throws(() => sp.createStreamDecoder().push(1.5), ChatGLMError);
  // Model-level problems: no <unk>, byte fallback without byte pieces.
  const noUnk = smallModelProto();
  noUnk.pieces[0] = { piece: '<unk>', score: 0, type: PieceType.CONTROL };
  assert.throws(() => SentencePieceTokenizer.fromModelProto(noUnk, 'nounk.model'), /nounk\.model: .*unknown/);
  const missingBytes = smallModelProto();
  missingBytes.pieces = missingBytes.pieces.filter((p) => p.piece !== '<0x41>');
  assert.throws(() => SentencePieceTokenizer.fromModelProto(missingBytes, 'mb.model'), /<0x41> is missing/);
  // A corrupt precompiled_charsmap: too short for its size field, and a trie size past its end.
  for (const blob of [Uint8Array.of(1, 2, 3), Uint8Array.of(100, 0, 0, 0, 0, 0, 0, 0)]) {
    const badMap = smallModelProto();
    badMap.normalizerSpec.precompiledCharsmap = blob;
    assert.throws(() => SentencePieceTokenizer.fromModelProto(badMap, 'map.model'), (e: unknown) => {
      assert.ok(e instanceof ChatGLMError);
      assert.equal(e.code, 'BAD_FORMAT');
      assert.match(e.message, /^map\.model: precompiled_charsmap .*download it again/);
      return true;
    });
  }
});

test('remove_extra_whitespaces normalization (library semantics)', () => {
  const t = SentencePieceTokenizer.fromBytes(smallModelBytes([], { removeExtra: true }), 'rx.model');
  assert.equal(t.normalize('  a   b  '), `${S}a${S}b`);
  assert.equal(t.normalize('   '), '');
  assert.equal(sp.normalize('  a '), `${S}${S}${S}a${S}`);
  assert.equal(sp.normalize(''), '');
});

test('golden: Unigram model, same ids and text as the library (Viterbi, float32 scores)', () => {
  const g = SentencePieceTokenizer.fromBytes(Buffer.from(UNIGRAM_MODEL_BASE64, 'base64'), 'unigram.model');
  assert.equal(g.options.modelType, 'unigram');
  assert.ok(UNIGRAM_VECTORS.length > 150);
  for (const v of UNIGRAM_VECTORS) {
    assert.deepEqual(g.encode(v.text), v.ids, JSON.stringify(v.text));
    assert.equal(g.decode(v.ids), v.decoded, JSON.stringify(v.text));
  }
  const again = SentencePieceTokenizer.fromPieces(g.listPieces(), g.options);
  for (const v of UNIGRAM_VECTORS.slice(0, 20)) assert.deepEqual(again.encode(v.text), v.ids);
});

test('golden: decoding malformed byte-piece sequences matches the library, streamed or not', () => {
  const g = SentencePieceTokenizer.fromBytes(Buffer.from(CHARSMAP_MODEL_BASE64, 'base64'), 'charsmap.model');
  for (const v of CHARSMAP_DECODE_VECTORS) {
    assert.equal(g.decode(v.ids), v.decoded, JSON.stringify(v.ids));
    const d = g.createStreamDecoder();
    let acc = '';
    for (const id of v.ids) acc += d.push(id);
    assert.equal(acc + d.flush(), v.decoded, JSON.stringify(v.ids));
  }
});

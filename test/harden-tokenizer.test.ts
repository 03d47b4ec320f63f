/**
 * Tokenizer hardening: tiktoken ranks bounded by the entry count (no 4-billion-slot arrays, no raw
 * RangeError), duplicate ranks refused, and a heap-based merge that gives tiktoken's answers
 * (checked against a direct transcription of tiktoken's _byte_pair_merge, written here) without
 * quadratic time on one long word.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TikTokenTokenizer, parseTikTokenRanks } from '../src/tokenizer/tiktoken.js';
import { ChatGLMError } from '../src/errors.js';
import { SentencePieceTokenizer } from '../src/tokenizer/sentencepiece.js';
import { PieceType, writeModelProto, type SentencePieceEntry } from '../src/tokenizer/sentencepiece-model.js';
import { smallModelProto } from './support/tokenizer-fixtures.js';

const latin1 = (b: Uint8Array): string => Buffer.from(b).toString('latin1');

/** tiktoken's _byte_pair_merge: rescan for the lowest-ranked adjacent pair (leftmost), merge, repeat. */
function referenceMerge(ranks: Map<string, number>, bytes: string): number[] {
  if (ranks.has(bytes)) return [ranks.get(bytes)!];
  const parts = [...bytes];
  for (;;) {
    let best = -1;
    let bestRank = Infinity;
    for (let i = 0; i + 1 < parts.length; i++) {
      const r = ranks.get(parts[i]! + parts[i + 1]!);
      if (r !== undefined && r < bestRank) {
        bestRank = r;
        best = i;
      }
    }
    if (best < 0) break;
    parts.splice(best, 2, parts[best]! + parts[best + 1]!);
  }
  return parts.map((p) => ranks.get(p)!);
}

function byteRanks(extra: string[]): { bytes: Uint8Array; rank: number }[] {
  const out: { bytes: Uint8Array; rank: number }[] = [];
  for (let b = 0; b < 256; b++) out.push({ bytes: Uint8Array.of(b), rank: b });
  extra.forEach((s, i) => out.push({ bytes: Uint8Array.from(Buffer.from(s, 'latin1')), rank: 256 + i }));
  return out;
}

const badFormat = (re: RegExp) => (e: unknown): boolean => e instanceof ChatGLMError && e.code === 'BAD_FORMAT' && re.test(e.message);

test('tiktoken: a rank near or past 2^32 and a duplicate rank are BAD_FORMAT errors', () => {
  const b64 = (s: string): string => Buffer.from(s).toString('base64');
  const lines = (extra: string): string => [...Array.from({ length: 256 }, (_, i) => `${Buffer.from([i]).toString('base64')} ${i}`), extra].join('\n');
  for (const rank of [4294967290, 4294967296, 99999999999]) {
    const ranks = parseTikTokenRanks(lines(`${b64('ab')} ${rank}`), 'bad.tiktoken');
    assert.throws(() => new TikTokenTokenizer(ranks, { file: 'bad.tiktoken' }), badFormat(new RegExp(`rank ${rank}, outside 0\\.\\.256`)));
  }
  const dup = parseTikTokenRanks(lines(`${b64('ab')} 7`), 'dup.tiktoken');
  assert.throws(() => new TikTokenTokenizer(dup, { file: 'dup.tiktoken' }), badFormat(/rank 7 is given to two tokens/));
  // The same table with a fresh rank loads.
  const ok = new TikTokenTokenizer(parseTikTokenRanks(lines(`${b64('ab')} 256`), 'ok.tiktoken'), { specials: ['<|end|>'] });
  assert.deepEqual(ok.encode('abab'), [256, 256]);
});

test('tiktoken heap merge equals the rescanning reference on random tables and texts', () => {
  let seed = 12345;
  const rnd = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  const alphabet = 'abcde';
  for (let table = 0; table < 20; table++) {
    // Merges built from existing tokens, so every merged token is reachable.
    const tokens = [...alphabet];
    const extra: string[] = [];
    while (extra.length < 40) {
      const t = tokens[rnd(tokens.length)]! + tokens[rnd(tokens.length)]!;
      if (t.length <= 6 && !tokens.includes(t)) {
        tokens.push(t);
        extra.push(t);
      }
    }
    const ranks = byteRanks(extra);
    // Identity pattern: the whole text is one piece, so the merge alone decides.
    const tok = new TikTokenTokenizer(ranks, { pattern: /[\s\S]+/gu, specials: [] });
    const map = new Map(ranks.map((r) => [latin1(r.bytes), r.rank]));
    for (let k = 0; k < 30; k++) {
      let text = '';
      const len = 1 + rnd(40);
      for (let i = 0; i < len; i++) text += alphabet[rnd(alphabet.length)];
      assert.deepEqual(tok.encode(text), referenceMerge(map, text), `table ${table} text ${text}`);
    }
  }
});

test('tiktoken: one 160 KB word is encoded (the rescanning merge takes 18-26 s on it)', () => {
  const extra = ['aa', 'aaaa', 'aaaaaaaa', 'ab', 'abab'];
  const tok = new TikTokenTokenizer(byteRanks(extra), { specials: [] });
  const word = 'ab'.repeat(40_000) + 'a'.repeat(80_001);
  const t0 = performance.now();
  const ids = tok.encode(word);
  const ms = performance.now() - t0;
  // 20,000 x "abab", then 10,000 x "aaaaaaaa" and one "a".
  assert.equal(ids.length, 20_000 + 10_000 + 1);
  assert.deepEqual([ids[0], ids[19_999], ids[20_000], ids[ids.length - 1]], [260, 260, 258, 97]);
  // A generous bound that only a quadratic merge misses.
  assert.ok(ms < 10_000, `took ${ms} ms`);
});

test('sentencepiece: an overlong piece, and a character map rule expanding one character to 60 KB, are BAD_FORMAT', () => {
  const long = smallModelProto([{ piece: 'x'.repeat(5000), score: -50, type: PieceType.NORMAL }]);
  assert.throws(() => SentencePieceTokenizer.fromBytes(writeModelProto(long), 'long.model'), badFormat(/5000 characters long, more than 1024/));

  const proto = smallModelProto();
  // [u32 trie size][trie units][NUL-terminated replacements]: one 60 KB replacement.
  const blob = new Uint8Array(4 + 4 + 60_000 + 1);
  new DataView(blob.buffer).setUint32(0, 4, true);
  blob.fill(0x61, 8, 8 + 60_000);
  proto.normalizerSpec.precompiledCharsmap = blob;
  proto.normalizerSpec.name = 'nmt_nfkc';
  assert.throws(() => SentencePieceTokenizer.fromBytes(writeModelProto(proto), 'charsmap.model'), badFormat(/60000-byte replacement, more than 256/));
});

test('sentencepiece: a chain of 1000 UNUSED pieces re-splits without recursion', () => {
  const extra: SentencePieceEntry[] = [{ piece: 'x', score: -1, type: PieceType.NORMAL }];
  // x+x -> "xx", "xx"+x -> "xxx", ...: each longer piece is UNUSED, so the encoder splits it back.
  for (let k = 2; k <= 1000; k++) extra.push({ piece: 'x'.repeat(k), score: -1 - 1 / k, type: PieceType.UNUSED });
  const proto = smallModelProto(extra);
  proto.normalizerSpec.addDummyPrefix = false;
  const tok = SentencePieceTokenizer.fromBytes(writeModelProto(proto), 'chain.model');
  const x = tok.encode('x')[0]!;
  assert.deepEqual(tok.encode('x'.repeat(1000)), new Array<number>(1000).fill(x));
});

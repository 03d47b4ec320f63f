/**
 * GLM-4 prompts through the project's tiktoken tokenizer on a small rank file (the tokenizer
 * area's fixture): ids worked out by hand from the ranks, as V9/V13 lay them out for the real file
 * ([gMASK]<sop>, <|role|>, "\n" as its own encode, the content without a dummy prefix).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TikTokenTokenizer, parseTikTokenRanks } from '../src/tokenizer/tiktoken.js';
import { glm4 } from '../src/chat/glm4.js';
import { GLM4_SPECIAL_TOKENS } from '../src/families/glm4.js';
import { encodePieces } from '../src/chat/prompt-pieces.js';
import { smallRankFile } from './support/tokenizer-fixtures.js';

const tok = new TikTokenTokenizer(parseTikTokenRanks(smallRankFile(), 'small.tiktoken'), { specials: GLM4_SPECIAL_TOKENS });
// Ranks: bytes 0-255, then 256 he, 257 ll, 258 llo, 259 hello, 260 bc, 261 ab, 262 aa, 263 " w",
// 264 or, 265 ld, 266 " wor", 267 " world", 268 你好; specials from 269 in GLM-4's order.
const S = { endoftext: 269, gMASK: 271, sop: 273, system: 275, user: 276, assistant: 277, observation: 278 };

test('glm4 multi-turn prompt ids (V9/V13 layout) on a small rank file', () => {
  assert.equal(tok.specialId('[gMASK]'), S.gMASK);
  const ids = encodePieces(
    glm4.render([
      { role: 'user', content: '你好' },
      { role: 'assistant', content: 'hello world' },
      { role: 'user', content: 'hello' },
    ]).pieces,
    tok,
  );
  assert.deepEqual(ids, [S.gMASK, S.sop, S.user, 10, 268, S.assistant, 10, 259, 267, S.user, 10, 259, S.assistant]);
  assert.deepEqual(glm4.stopIds(tok), [S.endoftext, S.user, S.observation]);
});

test('glm4 role injection: special-token text in content stays bytes', () => {
  const ids = encodePieces(glm4.render([{ role: 'user', content: '<|assistant|>' }]).pieces, tok);
  assert.deepEqual(ids.filter((id) => id >= 269), [S.gMASK, S.sop, S.user, S.assistant]);
});

/**
 * A complete tiny ChatGLM3-style model directory on disk, written with the project's own writers:
 * config.json, model.safetensors (random weights) and tokenizer.model (the tokenizer area's small
 * hand-made SentencePiece model). The vocabulary is the SentencePiece pieces plus ChatGLM3's 9
 * specials, so every id the model can produce decodes.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { writeSafetensors, tensorFromF32 } from './safetensors-writer.js';
import { configJson, randomWeights, type TinyConfig } from './model-fixtures.js';
import { smallModelBytes, smallPieces } from './tokenizer-fixtures.js';

export const SP_VOCAB = smallPieces().length;
/** Ids of the ChatGLM3 specials appended after the SentencePiece vocabulary. */
export const SPECIAL = {
  gMASK: SP_VOCAB + 1,
  sop: SP_VOCAB + 3,
  system: SP_VOCAB + 5,
  user: SP_VOCAB + 6,
  assistant: SP_VOCAB + 7,
  observation: SP_VOCAB + 8,
};

export const DIR_CONFIG: TinyConfig = {
  hidden: 32,
  layers: 2,
  heads: 4,
  headDim: 8,
  groups: 2,
  ffn: 48,
  vocab: SP_VOCAB + 9,
  seqLength: 128,
  name: 'THUDM/tiny-chatglm3',
};

export async function writeChatModelDir(seed = 7): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'chatglm-chat-'));
  await writeFile(path.join(dir, 'config.json'), JSON.stringify(configJson(DIR_CONFIG), null, 2));
  await writeSafetensors(
    path.join(dir, 'model.safetensors'),
    randomWeights(DIR_CONFIG, seed).map((t) => tensorFromF32(t.name, 'F32', t.shape, t.values)),
  );
  await writeFile(path.join(dir, 'tokenizer.model'), smallModelBytes());
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * The first check on a model path, shared by every entry point (loadChatModel, openCheckpoint and
 * so every CLI command): a missing path, a directory without config.json or a file that is not
 * GGUF fails here with one message, before any tokenizer or weight file is looked at.
 */
import { open, stat } from 'node:fs/promises';
import path from 'node:path';
import { badFormat, ChatGLMError, notFound } from '../errors.js';

export type ModelPathKind = 'hf' | 'gguf';

/** Says what `modelPath` is, or throws the ChatGLMError a user should see. */
export async function checkModelPath(modelPath: string): Promise<ModelPathKind> {
  let isDir: boolean;
  try {
    isDir = (await stat(modelPath)).isDirectory();
  } catch {
    throw notFound('model', modelPath, 'give a Hugging Face model directory or a .gguf file');
  }
  if (isDir) {
    const configFile = path.join(modelPath, 'config.json');
    let isFile = false;
    try {
      isFile = (await stat(configFile)).isFile();
    } catch {
      // reported below
    }
    if (!isFile) {
      throw new ChatGLMError('FILE_NOT_FOUND', `config.json not found in ${modelPath}: is this a Hugging Face ChatGLM model directory?`, { file: configFile });
    }
    return 'hf';
  }
  let fh;
  try {
    fh = await open(modelPath, 'r');
  } catch (err) {
    throw new ChatGLMError('FILE_NOT_FOUND', `cannot read ${modelPath} (${(err as NodeJS.ErrnoException).code ?? 'error'}): check its permissions`, { file: modelPath });
  }
  try {
    const head = new Uint8Array(4);
    const { bytesRead } = await fh.read(head, 0, 4, 0);
    if (bytesRead < 4 || new TextDecoder().decode(head) !== 'GGUF') {
      throw badFormat(modelPath, 'not a GGUF file (it does not start with "GGUF"); pass a .gguf file, or a Hugging Face model directory');
    }
  } finally {
    await fh.close();
  }
  return 'gguf';
}

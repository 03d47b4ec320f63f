/**
 * The model used when a command gets no --model: the tiny demonstration model bundled in
 * models/chatglm3-demo (relative to the package root, wherever the package is installed).
 * Saying so on stderr keeps stdout clean for --json output.
 */
import { existsSync } from 'node:fs';
import { ChatGLMError } from '../errors.js';
import { bundledModelPath } from '../api.js';
import { resolveModelRef } from '../hub/cache.js';

export function resolveModelPath(given: string | undefined): string {
  // OWNER/NAME[@rev] is looked up in the Hugging Face cache (see `chatglm pull`).
  if (given !== undefined) return resolveModelRef(given);
  const dir = bundledModelPath();
  if (!existsSync(dir)) {
    throw new ChatGLMError('FILE_NOT_FOUND', `no --model given and the bundled demo model is missing (${dir}); pass --model DIR`, { file: dir });
  }
  process.stderr.write(`chatglm: no --model given, using the bundled demo model ${dir} (a tiny model that knows only what it was trained on)\n`);
  return dir;
}

/**
 * What the model sees of a code run, as ChatGLM3's code-interpreter demo builds its observation:
 * the printed text (or the traceback), cut at 1,024 characters with " [TRUNCATED]", and `[Image]` for
 * a figure. The caller keeps the whole CodeRunResult.
 */
import type { CodeRunResult } from '../interpreter-types.js';

/** The original demo's truncate_length. */
export const CODE_OBSERVATION_MAX_CHARS = 1024;
export const CODE_OBSERVATION_TRUNCATED = ' [TRUNCATED]';
export const CODE_OBSERVATION_IMAGE = '[Image]';

/** The first `max` characters, counting code points as Python does (a surrogate pair is not split). */
function firstCodePoints(text: string, max: number): string {
  let count = 0;
  let end = 0;
  for (const ch of text) {
    if (count === max) break;
    count++;
    end += ch.length;
  }
  return text.slice(0, end);
}

export function formatCodeObservation(result: CodeRunResult, maxChars: number = CODE_OBSERVATION_MAX_CHARS): string {
  let text = result.text;
  if (result.error !== undefined) {
    const errorText = result.error.traceback !== '' ? result.error.traceback : `${result.error.name}: ${result.error.message}\n`;
    text += (text === '' || text.endsWith('\n') ? '' : '\n') + errorText;
  }
  text = text.replace(/\s+$/u, '');
  const cut = firstCodePoints(text, maxChars);
  if (cut.length < text.length) text = cut + CODE_OBSERVATION_TRUNCATED;
  const parts = text === '' ? [] : [text];
  for (let i = 0; i < result.images.length; i++) parts.push(CODE_OBSERVATION_IMAGE);
  return parts.join('\n');
}

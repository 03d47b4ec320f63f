/** Turning prompt pieces into ids (each text piece encoded on its own) and into readable text. */
import { ChatGLMError } from '../errors.js';
import type { Tokenizer } from '../tokenizer/types.js';
import type { PromptPiece } from './types.js';

export function encodePieces(pieces: readonly PromptPiece[], tokenizer: Tokenizer): number[] {
  const ids: number[] = [];
  for (const p of pieces) {
    if ('special' in p) {
      const id = tokenizer.specialId(p.special);
      if (id === undefined) {
        throw new ChatGLMError(
          'MODEL_MISMATCH',
          `the tokenizer has no special token ${p.special}; is the chat format right for this model? (pass --format / family explicitly)`,
        );
      }
      ids.push(id);
    } else if (p.text.length > 0) {
      for (const id of tokenizer.encode(p.text)) ids.push(id);
    }
  }
  return ids;
}

/** The prompt as text, special tokens written by name (for display; ids are what the model sees). */
export function piecesToText(pieces: readonly PromptPiece[]): string {
  return pieces.map((p) => ('special' in p ? p.special : p.text)).join('');
}

/** SentencePiece decoding, incremental, exactly as the library's Decode() (sentencepiece_processor.cc). */
import { PieceType } from './sentencepiece-model.js';
import type { StreamDecoder } from './types.js';
import { decodeUtf8Char } from './utf8.js';

/** What the decoder reads from a tokenizer (SentencePieceTokenizer implements it). */
export interface DecodeTables {
  /** The decode entry of a piece; throws ChatGLMError for an id out of range. */
  decodeInfo(id: number): PieceDecodeInfo;
  /** Whether the first piece's leading space is the dummy prefix (or trimmed whitespace). */
  readonly stripsFirstSpace: { dummy: boolean; removeExtra: boolean };
}

export interface PieceDecodeInfo {
  type: number;
  /** The piece as text (U+2581 as space; '' for control pieces, unk_surface for unk). */
  surface: string;
  /** The surface without the leading space. */
  stripped: string;
  /** Whether the piece starts with U+2581. */
  spaced: boolean;
  /** The byte of a <0xNN> piece, else -1. */
  byte: number;
}

/**
 * Incremental form of the library's Decode(): text is released as soon as it can no longer
 * change. Byte pieces are held until they form a complete UTF-8 character; the first piece's
 * leading U+2581 (the dummy prefix) is dropped as long as nothing visible came before it.
 */
export class SentencePieceStreamDecoder implements StreamDecoder {
  private bytes: number[] = [];
  /** Library state: still expecting the beginning-of-sentence space. */
  private isBosWs = true;
  private bosWsSeen = false;
  private emitted = false;
  private readonly stripDummy: boolean;
  private readonly removeExtra: boolean;

  constructor(private readonly sp: DecodeTables) {
    const s = sp.stripsFirstSpace;
    this.stripDummy = s.dummy || s.removeExtra;
    this.removeExtra = s.removeExtra;
  }

  push(id: number): string {
    const info = this.sp.decodeInfo(id);
    if (info.type === PieceType.BYTE) {
      this.bytes.push(info.byte);
      return this.drainBytes(false);
    }
    let out = this.drainBytes(true);
    if (this.bosWsSeen || this.emitted) this.isBosWs = false;
    let text: string;
    let seen = false;
    if (info.type === PieceType.CONTROL || info.type === PieceType.UNKNOWN) {
      text = info.surface;
    } else if (this.isBosWs && this.stripDummy && info.spaced) {
      text = info.stripped;
      seen = !this.removeExtra;
    } else {
      text = info.surface;
    }
    this.bosWsSeen = seen;
    if (text.length > 0) this.emitted = true;
    out += text;
    return out;
  }

  /** Text that the library would output for a string that is not a piece: shown as-is. */
  pushVerbatim(text: string): string {
    let out = this.drainBytes(true);
    if (this.bosWsSeen || this.emitted) this.isBosWs = false;
    this.bosWsSeen = false;
    if (text.length > 0) this.emitted = true;
    return out + text;
  }

  flush(): string {
    return this.drainBytes(true);
  }

  private drainBytes(final: boolean): string {
    const b = this.bytes;
    if (b.length === 0) return '';
    let out = '';
    let pos = 0;
    while (pos < b.length) {
      const [cp, n] = decodeUtf8Char(b, pos, b.length, !final);
      if (cp === -2) break;
      out += cp < 0 ? '\uFFFD' : String.fromCodePoint(cp);
      pos += n;
    }
    if (pos > 0) {
      this.emitted = true;
      b.splice(0, pos);
    }
    return out;
  }
}


/**
 * Streaming a ChatGLM3/GLM-4 reply as the user should see it. The raw reply is segments opened by
 * <|assistant|>, each "metadata\ncontent". Text segments (empty metadata) are passed on as they
 * come, without the header line and the surrounding whitespace the parser strips, with
 * "[[训练时间]]" filled in; call segments are held back for the parser. Segments are split on the
 * token id, and each segment is decoded on its own, like the final parse.
 */
import type { Tokenizer } from '../tokenizer/types.js';
import { TextStream } from '../generate/text-stream.js';

const DATE_TAG = '[[训练时间]]';

interface Segment {
  ids: number[];
  stream: TextStream;
  header: string;
  mode: 'header' | 'text' | 'call';
  started: boolean;
  /** Whitespace held back: it is only passed on when more text follows (the parser strips the end). */
  pendingSpace: string;
  /** A possible start of the date tag, held back until it is complete or ruled out. */
  pendingTag: string;
}

export class ReplyStream {
  private readonly segments: Segment[] = [];
  private readonly separator: number | undefined;
  private emittedAny = false;

  constructor(
    private readonly tokenizer: Tokenizer,
    segmentToken: string | undefined,
    private readonly plain: boolean,
    private readonly trainingDate = '2023年',
    /** Without declared tools, a header other than `interpreter` is text (see parseSegments). */
    private readonly tools = true,
  ) {
    this.separator = segmentToken !== undefined ? tokenizer.specialId(segmentToken) : undefined;
    this.open();
  }

  /** Feeds one generated id; returns the visible text it completed. */
  push(id: number): string {
    if (this.separator !== undefined && id === this.separator) {
      this.open();
      return '';
    }
    const seg = this.segments[this.segments.length - 1]!;
    seg.ids.push(id);
    return this.consume(seg, seg.stream.push(id));
  }

  /** The raw text of each segment (decoded on its own), for the parser. */
  segmentTexts(): string[] {
    return this.segments.map((s) => this.tokenizer.decode(s.ids));
  }

  /**
   * The segment texts cut before the earliest of `stops`, for a generation a stop string ended.
   * Segment boundaries stay where the segment token ids were: text that merely quotes the
   * segment token (a web page the model repeats) never opens a segment, so it can never become a
   * tool call. The search runs over the segments joined with the token's text, as the generation
   * loop saw them; when no stop string is found (decoding per segment can differ at the edges),
   * nothing is cut.
   */
  segmentTextsBefore(stops: readonly string[], segmentToken: string): string[] {
    const texts = this.segmentTexts();
    const starts: number[] = [];
    let raw = '';
    for (const [i, t] of texts.entries()) {
      if (i > 0) raw += segmentToken;
      starts.push(raw.length);
      raw += t;
    }
    let cut = -1;
    for (const s of stops) {
      if (s.length === 0) continue;
      const i = raw.indexOf(s);
      if (i >= 0 && (cut < 0 || i < cut)) cut = i;
    }
    if (cut < 0) return texts;
    const out: string[] = [];
    for (const [i, t] of texts.entries()) {
      const start = starts[i]!;
      if (start > cut) break;
      out.push(t.slice(0, Math.max(0, cut - start)));
      if (cut <= start + t.length) break;
    }
    return out;
  }

  /** Visible text still held back that belongs to the reply (an incomplete tag at the end). */
  flush(): string {
    const seg = this.segments[this.segments.length - 1]!;
    let out = this.consume(seg, seg.stream.flush());
    if (seg.mode === 'header') {
      // A segment that never got its newline has no metadata: all of it is text.
      seg.mode = 'text';
      out += this.text(seg, seg.header);
    }
    if (seg.mode === 'text' && seg.pendingTag) {
      out += (seg.pendingSpace ? seg.pendingSpace : '') + seg.pendingTag;
      seg.pendingTag = '';
      seg.pendingSpace = '';
    }
    return out;
  }

  private open(): void {
    this.segments.push({
      ids: [],
      stream: new TextStream(this.tokenizer),
      header: '',
      mode: this.plain ? 'text' : 'header',
      started: false,
      pendingSpace: '',
      pendingTag: '',
    });
  }

  private consume(seg: Segment, delta: string): string {
    if (delta === '') return '';
    if (seg.mode === 'header') {
      seg.header += delta;
      const nl = seg.header.indexOf('\n');
      if (nl < 0) {
        // Without declared tools only `interpreter` makes a call: any other start is text, shown
        // at once rather than after the first newline.
        const h = seg.header.trimStart();
        if (this.tools || h === '' || 'interpreter'.startsWith(h) || h.trimEnd() === 'interpreter') return '';
        seg.mode = 'text';
        return this.text(seg, seg.header);
      }
      const metadata = seg.header.slice(0, nl);
      const rest = seg.header.slice(nl + 1);
      if (metadata.trim() !== '' && !this.tools && metadata.trim() !== 'interpreter') {
        seg.mode = 'text';
        return this.text(seg, seg.header);
      }
      seg.mode = metadata.trim() === '' ? 'text' : 'call';
      return seg.mode === 'text' ? this.text(seg, rest) : '';
    }
    return seg.mode === 'text' ? this.text(seg, delta) : '';
  }

  private text(seg: Segment, delta: string): string {
    let buf = seg.pendingTag + delta;
    seg.pendingTag = '';
    // Hold back a possible beginning of the date tag.
    for (let n = Math.min(DATE_TAG.length - 1, buf.length); n > 0; n--) {
      if (buf.endsWith(DATE_TAG.slice(0, n))) {
        seg.pendingTag = buf.slice(buf.length - n);
        buf = buf.slice(0, buf.length - n);
        break;
      }
    }
    buf = buf.replaceAll(DATE_TAG, this.trainingDate);
    if (!seg.started) {
      buf = buf.replace(/^\s+/, '');
      if (buf === '') return '';
      seg.started = true;
      // A later text segment starts on its own line.
      if (this.emittedAny) buf = '\n' + buf;
    }
    const m = /\s+$/.exec(buf);
    const body = m ? buf.slice(0, m.index) : buf;
    if (body === '') {
      seg.pendingSpace += buf;
      return '';
    }
    const out = seg.pendingSpace + body;
    seg.pendingSpace = m ? m[0] : '';
    this.emittedAny = true;
    return out;
  }
}

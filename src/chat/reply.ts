/**
 * ChatGLM3/GLM-4 reply parsing, shared by their formats: the original `process_response` walks
 * the `<|assistant|>` segments; a segment's first line is its metadata; an empty metadata means
 * text (stripped, "[[训练时间]]" filled in); otherwise it is a call whose arguments the family
 * decodes. Only the last segment decides the result, as in the original.
 */
import type { ParsedReply, ReplySegment } from './types.js';
import type { JsonValue } from './python-literal.js';

export type ArgumentDecoder = (content: string) => { ok: true; arguments: Record<string, JsonValue> } | { ok: false; error: string };

export function splitSegment(segment: string): ReplySegment {
  const nl = segment.indexOf('\n');
  // A segment without a newline has no metadata (HF fix #9).
  return nl < 0 ? { metadata: '', content: segment } : { metadata: segment.slice(0, nl), content: segment.slice(nl + 1) };
}

/** ChatGLM2/3 fill in "2023年"; GLM-4's process_response fills in "2024年". */
export function fillTrainingDate(text: string, date = '2023年'): string {
  return text.replaceAll('[[训练时间]]', date);
}

/** The code inside the first ``` fence of `content` ('' when there is none). */
export function fencedCode(content: string): string {
  // What /```[^\n]*\n([\s\S]*?)\n?```/ matches, found with indexOf: the regex backtracks
  // quadratically over a long run of backticks.
  const open = content.indexOf('```');
  if (open < 0) return '';
  const nl = content.indexOf('\n', open + 3);
  if (nl < 0) return '';
  const close = content.indexOf('```', nl + 1);
  if (close < 0) return '';
  const end = close > nl + 1 && content[close - 1] === '\n' ? close - 1 : close;
  return content.slice(nl + 1, end);
}

export function parseSegments(parts: readonly string[], tools: boolean, decodeArgs: ArgumentDecoder, date = '2023年'): ParsedReply {
  const segments: ReplySegment[] = [];
  const texts: string[] = [];
  let result: ParsedReply | undefined;
  for (const part of parts) {
    const seg = splitSegment(part);
    if (seg.metadata.trim() === '') {
      const content = seg.content.trim();
      segments.push({ metadata: seg.metadata, content });
      result = { type: 'text', content: fillTrainingDate(content, date), segments };
      texts.push(fillTrainingDate(content, date));
      continue;
    }
    segments.push({ metadata: seg.metadata, content: seg.content });
    const name = seg.metadata.trim();
    if (!tools && name !== 'interpreter') {
      // A call to a tool nobody declared: there is nothing to run it, so it is shown as the text
      // it is (header line included), not as a call waiting for a result.
      const written = fillTrainingDate(`${seg.metadata}\n${seg.content}`.trim(), date);
      texts.push(written);
      result = { type: 'text', content: texts.filter((t) => t.length > 0).join('\n'), segments };
      continue;
    }
    // Text of the earlier plain segments of this reply (the last one is this call, not text).
    const text = texts.filter((t) => t.length > 0).join('\n');
    // `interpreter` is code to run whether or not tools are declared (the original would try to
    // eval the code as a tool call when tools are present, which cannot succeed).
    if (name !== 'interpreter') {
      const args = decodeArgs(seg.content);
      result = args.ok
        ? { type: 'tool_call', name, arguments: args.arguments, text, segments }
        : { type: 'invalid_tool_call', name, content: seg.content, error: args.error, text, segments };
    } else {
      result = { type: 'code', name, content: seg.content, code: fencedCode(seg.content), text, segments };
    }
  }
  return result ?? { type: 'text', content: '', segments };
}

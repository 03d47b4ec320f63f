/**
 * The chat protocol layer: messages, prompts as pieces, parsed replies, and the ChatFormat each
 * model family implements in its own module (chatglm2.ts, chatglm3.ts, glm4.ts).
 */
import type { Tokenizer } from '../tokenizer/types.js';
import type { JsonValue } from './python-literal.js';

export type ChatRole = 'system' | 'user' | 'assistant' | 'observation';

export interface ChatMessage {
  role: ChatRole;
  content: string;
  /**
   * The text after the role token on its header line: a tool name on an assistant tool call,
   * 'interpreter' on a code request, '' (or absent) otherwise.
   */
  metadata?: string;
  /** On a system message: tool definitions, appended to its text as ChatGLM3 does. */
  tools?: JsonValue;
}

/** A prompt before tokenization: special tokens by name, and text encoded piece by piece. */
export type PromptPiece = { special: string } | { text: string };

export interface RenderedPrompt {
  pieces: PromptPiece[];
}

/** One reply segment, as the original process_response appends it to the history. */
export interface ReplySegment {
  metadata: string;
  content: string;
}

export type ParsedReply =
  | { type: 'text'; content: string; segments: ReplySegment[] }
  | {
      type: 'tool_call';
      name: string;
      arguments: Record<string, JsonValue>;
      /** Plain text the model wrote in earlier segments of the same reply (often ''). */
      text: string;
      segments: ReplySegment[];
    }
  | {
      /** A call without tool definitions, e.g. ChatGLM3's `interpreter` with a fenced code block. */
      type: 'code';
      name: string;
      /** The segment's content as written (the fenced block). */
      content: string;
      /** The code inside the fence ('' when there is none). */
      code: string;
      text: string;
      segments: ReplySegment[];
    }
  | {
      /** The model tried to call a tool but its arguments do not parse; `error` says why. */
      type: 'invalid_tool_call';
      name: string;
      content: string;
      error: string;
      text: string;
      segments: ReplySegment[];
    };

export interface ChatFormat {
  readonly name: string;
  /** What the parser puts for "[[训练时间]]" in text replies. */
  readonly trainingDate: string;
  /** Special tokens every sequence starts with (what the HF tokenizer's encode() prepends). */
  readonly prefix: readonly string[];
  /** Ids that end a reply (the stop id is never part of the text). */
  stopIds(tokenizer: Tokenizer): number[];
  /** The prompt for `messages`, ending where the model's reply starts. */
  render(messages: readonly ChatMessage[]): RenderedPrompt;
  /** The system message that carries `tools` in this family's convention. */
  toolSystemMessage(tools: JsonValue): ChatMessage;
  /**
   * The start of an assistant reply that calls `name` (a one-line name), as prompt pieces written
   * after `<|assistant|>`; absent for a family without tool calls.
   */
  forcedCallPieces?(name: string): PromptPiece[];
  /**
   * Turns generated text into a reply. `segments` is the text split at the special token that opens
   * a new reply segment (ChatGLM3/GLM-4 `<|assistant|>`), which the caller splits on token ids so
   * that ordinary text that merely looks like the token cannot split it.
   */
  parse(segments: readonly string[], options: { tools: boolean }): ParsedReply;
  /** The special token that opens a new reply segment inside one reply, if the family has one. */
  readonly segmentToken?: string;
}

/** The OpenAI Chat Completions shapes the library API and the server speak. */
import type { JsonValue } from '../chat/python-literal.js';
import type { TruncationPolicy } from '../chat/fit.js';
import type { ChatCompletionToolChoice } from '../chat/tool-choice.js';
import type { GenerationUsage } from '../generate/types.js';
import type { ResponseFormat } from '../api-constraints.js';

export interface ChatCompletionTool {
  type: 'function';
  function: { name: string; description?: string; parameters?: JsonValue };
}

export interface ChatCompletionMessageToolCall {
  id: string;
  type: 'function';
  function: { name: string; /** JSON text, as OpenAI sends it. */ arguments: string };
}

export type ChatCompletionContent = string | { type: 'text'; text: string }[];

export type ChatCompletionMessageParam =
  | { role: 'system'; content: ChatCompletionContent; /** ChatGLM3: tool definitions carried by this system message. */ tools?: JsonValue }
  | { role: 'user'; content: ChatCompletionContent }
  | {
      role: 'assistant';
      content?: ChatCompletionContent | null;
      tool_calls?: ChatCompletionMessageToolCall[];
      /** ChatGLM header metadata (a tool name, 'interpreter'), for replaying native transcripts. */
      metadata?: string;
    }
  | { role: 'tool'; content: ChatCompletionContent; tool_call_id?: string }
  | { role: 'function'; content: ChatCompletionContent; name?: string }
  | { role: 'observation'; content: ChatCompletionContent };

export interface ChatCompletionRequest {
  messages: ChatCompletionMessageParam[];
  /** OpenAI-style tool list (or any JSON the model was trained on): put in the system prompt verbatim. */
  tools?: ChatCompletionTool[] | JsonValue;
  /** Default 0.8 (ChatGLM's own default); 0 means greedy. */
  temperature?: number;
  /** Default 0.8 (ChatGLM's own default). */
  top_p?: number;
  /** Default 0 (off). */
  top_k?: number;
  /** Default 1 (off). */
  repetition_penalty?: number;
  /**
   * Most tokens to generate (an integer >= 1). Default: a quarter of the context length, at most
   * 1024 (the demo model: 256); that much room is kept free for the reply when old turns must be
   * dropped to fit the context.
   */
  max_tokens?: number;
  seed?: number;
  stop?: string | string[];
  stream?: boolean;
  signal?: AbortSignal;
  /** When the conversation does not fit: drop the oldest turns (default) or fail. */
  truncation?: TruncationPolicy;
  /**
   * "auto" (default), "none" (the tools are left out of the prompt), "required" (the reply starts
   * with a call to one of the declared tools: constrained decoding), or
   * {"type": "function", "function": {"name"}} (the reply calls that tool: constrained decoding,
   * or with `constrain: false` the start of the call written into the prompt).
   */
  tool_choice?: ChatCompletionToolChoice;
  /** JSON output: {type: "json_object"} or {type: "json_schema", json_schema: {schema}} (constrained decoding). */
  response_format?: ResponseFormat;
  /**
   * With tools declared, calls are constrained to declared names and schemas; false turns that
   * default off (an explicit response_format or tool_choice "required" is still enforced). Default true.
   */
  constrain?: boolean;
}

export interface ChatCompletionMessage {
  role: 'assistant';
  content: string | null;
  tool_calls?: ChatCompletionMessageToolCall[];
  /** Set when the model tried to call a tool but wrote arguments that do not parse. */
  invalid_tool_call?: { name: string; error: string; content: string };
}

export type FinishReason = 'stop' | 'length' | 'tool_calls';

export interface ChatCompletionUsage extends GenerationUsage {}

export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: [{ index: 0; message: ChatCompletionMessage; finish_reason: FinishReason }];
  usage: ChatCompletionUsage;
  /** The seed used (given or drawn), to repeat a sampled answer. */
  seed: number;
}

export interface ChatCompletionChunkToolCall {
  index: number;
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

export interface ChatCompletionChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  choices: [
    {
      index: 0;
      delta: {
        role?: 'assistant';
        content?: string;
        tool_calls?: ChatCompletionChunkToolCall[];
        /** As on ChatCompletionMessage: a call whose arguments do not parse (its text is in `content`). */
        invalid_tool_call?: { name: string; error: string; content: string };
      };
      finish_reason: FinishReason | null;
    },
  ];
  /** On the last chunk only. */
  usage?: ChatCompletionUsage;
}

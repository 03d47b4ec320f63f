/**
 * "Something that completes a chat": the one interface the agent loop talks to. Two
 * implementations: the in-process model (`localCompleter`, over ChatModel.createChatCompletion)
 * and a remote OpenAI-compatible /v1/chat/completions endpoint (`remoteCompleter`, remote.ts).
 * A completer streams the reply's visible text, then gives the whole assistant message.
 */
import type {
  ChatCompletionMessage,
  ChatCompletionMessageParam,
  ChatCompletionTool,
  ChatModel,
  FinishReason,
} from '../api.js';
import type { ChatCompletionToolChoice } from '../chat/tool-choice.js';
import type { JsonValue } from '../chat/python-literal.js';

export interface CompletionRequest {
  messages: readonly ChatCompletionMessageParam[];
  /** OpenAI-style tool list; absent = no tools offered. */
  tools?: readonly ChatCompletionTool[];
  tool_choice?: ChatCompletionToolChoice;
  temperature?: number;
  top_p?: number;
  max_tokens?: number;
  seed?: number;
  signal?: AbortSignal;
}

/** Token counts as OpenAI reports them (the in-process model adds timings; a remote endpoint may send none). */
export interface CompletionUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export type CompletionEvent =
  | { type: 'text'; delta: string }
  | { type: 'message'; message: ChatCompletionMessage; finishReason: FinishReason; usage?: CompletionUsage };

export interface ChatCompleter {
  /** The model's name, or the endpoint's. */
  readonly name: string;
  /** The chat format, when known (an in-process model); a remote endpoint leaves it unset. */
  readonly family?: string;
  /** Streams one assistant reply; the last event is always the `message`. */
  complete(request: CompletionRequest): AsyncIterable<CompletionEvent>;
}

/**
 * The in-process model. Tools are rendered by the model's chat format from the bare function
 * objects ({name, description, parameters}): ChatGLM3's prompt documentation shows that list
 * after the instruction line, and GLM-4's tool section is built from the same objects.
 */
export function localCompleter(model: ChatModel): ChatCompleter {
  return {
    name: model.name,
    family: model.family,
    async *complete(request: CompletionRequest): AsyncGenerator<CompletionEvent, void, void> {
      const stream = await model.createChatCompletion({
        messages: request.messages.flatMap(nativeInvalidCalls),
        ...(request.tools !== undefined && request.tools.length > 0 ? { tools: request.tools.map((t) => t.function) as JsonValue } : {}),
        ...(request.tool_choice !== undefined ? { tool_choice: request.tool_choice } : {}),
        ...(request.temperature !== undefined ? { temperature: request.temperature } : {}),
        ...(request.top_p !== undefined ? { top_p: request.top_p } : {}),
        ...(request.max_tokens !== undefined ? { max_tokens: request.max_tokens } : {}),
        ...(request.seed !== undefined ? { seed: request.seed } : {}),
        ...(request.signal !== undefined ? { signal: request.signal } : {}),
        stream: true,
      });
      const acc = new ChunkAccumulator();
      for await (const chunk of stream) {
        const delta = acc.push(chunk.choices[0]);
        // A call whose arguments do not parse is streamed as its raw text; that is not answer text.
        if (delta !== '' && chunk.choices[0].delta.invalid_tool_call === undefined) yield { type: 'text', delta };
        if (chunk.usage !== undefined) acc.usage = chunk.usage;
      }
      yield acc.message();
    },
  };
}

/**
 * A call the model wrote with arguments that do not parse is kept in the transcript as an OpenAI
 * tool call whose `arguments` is the raw text; for the in-process model it goes back as the
 * native assistant message it was, so the prompt replays what the model wrote.
 */
export function nativeInvalidCalls(m: ChatCompletionMessageParam): ChatCompletionMessageParam[] {
  if (m.role !== 'assistant' || m.tool_calls === undefined || m.tool_calls.every((c) => isJsonObjectText(c.function.arguments))) return [m];
  const out: ChatCompletionMessageParam[] = [];
  const text = typeof m.content === 'string' ? m.content : '';
  if (text !== '') out.push({ role: 'assistant', content: text });
  for (const c of m.tool_calls) {
    if (isJsonObjectText(c.function.arguments)) out.push({ role: 'assistant', content: null, tool_calls: [c] });
    else out.push({ role: 'assistant', metadata: c.function.name, content: c.function.arguments });
  }
  return out;
}

function isJsonObjectText(text: string): boolean {
  try {
    const v: unknown = JSON.parse(text);
    return v !== null && typeof v === 'object' && !Array.isArray(v);
  } catch {
    return false;
  }
}

/** One streamed choice as OpenAI sends it (tool call pieces carry an index; arguments come in parts). */
export interface StreamedChoice {
  delta: {
    role?: string;
    content?: string | null;
    tool_calls?: { index: number; id?: string; type?: string; function?: { name?: string; arguments?: string } }[];
    invalid_tool_call?: { name: string; error: string; content: string };
  };
  finish_reason: string | null;
}

/** Adds up streamed chunks into the assistant message, as OpenAI clients do. */
export class ChunkAccumulator {
  private content = '';
  private readonly calls: { id: string; name: string; arguments: string }[] = [];
  private invalid: { name: string; error: string; content: string } | undefined;
  private finish: string | null = null;
  usage: CompletionUsage | undefined;

  /** Returns the content delta of this chunk ('' when none). */
  push(choice: StreamedChoice | undefined): string {
    if (choice === undefined) return '';
    const d = choice.delta ?? {};
    if (d.invalid_tool_call !== undefined) this.invalid = d.invalid_tool_call;
    for (const tc of d.tool_calls ?? []) {
      const index = typeof tc.index === 'number' ? tc.index : this.calls.length;
      const call = (this.calls[index] ??= { id: '', name: '', arguments: '' });
      if (tc.id) call.id = tc.id;
      if (tc.function?.name) call.name += tc.function.name;
      if (tc.function?.arguments) call.arguments += tc.function.arguments;
    }
    if (choice.finish_reason) this.finish = choice.finish_reason;
    const text = typeof d.content === 'string' ? d.content : '';
    if (d.invalid_tool_call === undefined) this.content += text;
    return text;
  }

  message(): CompletionEvent & { type: 'message' } {
    const calls = this.calls.filter((c) => c !== undefined);
    const message: ChatCompletionMessage = { role: 'assistant', content: this.content === '' ? null : this.content };
    if (calls.length > 0) {
      message.tool_calls = calls.map((c, i) => ({
        // Some servers leave ids out; every call needs one to pair it with its result.
        id: c.id !== '' ? c.id : `call_${i}`,
        type: 'function' as const,
        function: { name: c.name, arguments: c.arguments },
      }));
    }
    if (this.invalid !== undefined) message.invalid_tool_call = this.invalid;
    // The calls decide: a "tool_calls" finish without any is treated as a plain answer.
    const finishReason: FinishReason = calls.length > 0 ? 'tool_calls' : this.finish === 'length' ? 'length' : 'stop';
    return { type: 'message', message, finishReason, ...(this.usage !== undefined ? { usage: this.usage } : {}) };
  }
}

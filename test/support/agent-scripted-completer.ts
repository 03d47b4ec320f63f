/**
 * A ChatCompleter whose replies the test writes in advance, one per round; it records every
 * request it gets. For testing the agent loop's paths without any model.
 */
import type { ChatCompletionMessage } from '../../src/api.js';
import type { ChatCompleter, CompletionEvent, CompletionRequest } from '../../src/agent/completer.js';

export type ScriptedReply =
  | { text: string }
  | { calls: { name: string; arguments: string; id?: string }[]; text?: string }
  | { invalid: { name: string; content: string; error: string } };

export class ScriptedCompleter implements ChatCompleter {
  readonly name = 'scripted';
  readonly requests: CompletionRequest[] = [];
  private next = 0;

  constructor(
    private readonly replies: ScriptedReply[],
    readonly family?: 'chatglm3' | 'glm4',
  ) {}

  async *complete(request: CompletionRequest): AsyncGenerator<CompletionEvent, void, void> {
    // A copy: the loop keeps appending to its history after the request.
    this.requests.push({ ...request, messages: [...request.messages] });
    const reply = this.replies[Math.min(this.next, this.replies.length - 1)]!;
    this.next++;
    if ('text' in reply && !('calls' in reply)) {
      for (const part of reply.text.split(/(?<= )/)) yield { type: 'text', delta: part };
      yield { type: 'message', message: { role: 'assistant', content: reply.text }, finishReason: 'stop', usage: { prompt_tokens: 10, completion_tokens: 2, total_tokens: 12 } };
      return;
    }
    if ('invalid' in reply) {
      yield { type: 'message', message: { role: 'assistant', content: null, invalid_tool_call: reply.invalid }, finishReason: 'stop' };
      return;
    }
    const message: ChatCompletionMessage = {
      role: 'assistant',
      content: reply.text ?? null,
      tool_calls: reply.calls.map((c, i) => ({ id: c.id ?? `call_${this.next}_${i}`, type: 'function', function: { name: c.name, arguments: c.arguments } })),
    };
    yield { type: 'message', message, finishReason: 'tool_calls', usage: { prompt_tokens: 5, completion_tokens: 1, total_tokens: 6 } };
  }
}

/** One turn of each mode: Chat streams /v1/chat/completions, Tools and Code stream /chatglm/agent. */
import { fields } from './dom.js';
import { errorText, headers, readSse, sampling } from './http.js';
import { LiveReply } from './live-reply.js';
import { state } from './state.js';
import { PNG_DATA_URL, type Conversation, type WireMessage } from './types.js';
import { push } from './view.js';

function messagesFor(conv: Conversation): WireMessage[] {
  const system = fields.system.value.trim();
  return system !== '' ? [{ role: 'system', content: system }, ...conv.transcript] : [...conv.transcript];
}

export async function chatTurn(conv: Conversation, signal: AbortSignal): Promise<void> {
  // Speed over the whole request (queue and prompt included): a tiny model's tokens arrive in bursts.
  const sent = performance.now();
  const res = await fetch('/v1/chat/completions', {
    method: 'POST',
    headers: headers(),
    body: JSON.stringify({ model: state.modelName, messages: messagesFor(conv), stream: true, stream_options: { include_usage: true }, ...sampling() }),
    signal,
  });
  if (!res.ok) throw new Error(await errorText(res));
  const live = new LiveReply(conv);
  let tokens: number | undefined;
  let stopped = false;
  try {
    await readSse(res, (data) => {
      const chunk = data as { choices?: { delta?: { content?: string } }[]; usage?: { completion_tokens: number }; error?: { message: string } };
      if (chunk.error !== undefined) throw new Error(chunk.error.message);
      const delta = chunk.choices?.[0]?.delta?.content;
      if (typeof delta === 'string' && delta !== '') {
        live.append(delta);
        live.tokens++;
      }
      if (chunk.usage !== undefined) tokens = chunk.usage.completion_tokens;
    });
  } catch (err) {
    if (!signal.aborted) throw err;
    stopped = true;
  } finally {
    live.finish(tokens ?? live.tokens, stopped || signal.aborted, sent);
    if (live.present) conv.transcript.push({ role: 'assistant', content: live.item.text });
  }
}

interface AgentWireEvent {
  type: string;
  content?: string;
  id?: string;
  name?: string;
  arguments?: string;
  output?: string;
  ok?: boolean;
  images?: { mime: string; url: string }[];
  usage?: { completion_tokens: number; decode_tokens_per_second?: number };
  messages?: WireMessage[];
  error?: { message: string };
}

export async function agentTurn(conv: Conversation, signal: AbortSignal): Promise<void> {
  const body: Record<string, unknown> = { model: state.modelName, messages: messagesFor(conv), ...sampling() };
  if (conv.mode === 'code') {
    body['interpreter'] = true;
    body['conversation_id'] = conv.id;
  } else {
    body['tools'] = [...document.querySelectorAll<HTMLInputElement>('#tool-list input:checked')].map((cb) => cb.value);
  }
  const res = await fetch('/chatglm/agent', { method: 'POST', headers: headers(), body: JSON.stringify(body), signal });
  if (!res.ok) throw new Error(await errorText(res));
  let live = new LiveReply(conv);
  // The last round's usage: the answer's tokens (earlier rounds wrote tool calls).
  let tokens = 0;
  let perSecond: number | undefined;
  let since = performance.now();
  let done = false;
  try {
    await readSse(res, (data) => {
      const ev = data as AgentWireEvent;
      switch (ev.type) {
        case 'message.delta':
          live.append(ev.content ?? '');
          break;
        case 'tool_call':
          // The text before a call (if any) is its own bubble; the answer after the result gets a new one.
          live.finish(undefined, false, since);
          live = new LiveReply(conv);
          push(conv, { kind: 'tool_call', id: ev.id ?? '', name: ev.name ?? '', arguments: ev.arguments ?? '' });
          break;
        case 'tool_result':
          since = performance.now();
          push(conv, { kind: 'tool_result', id: ev.id ?? '', name: ev.name ?? '', output: ev.output ?? '', ok: ev.ok === true, images: (ev.images ?? []).map((i) => i.url).filter((u) => PNG_DATA_URL.test(u)) });
          break;
        case 'usage':
          tokens = ev.usage?.completion_tokens ?? 0;
          perSecond = ev.usage?.decode_tokens_per_second;
          break;
        case 'done':
          done = true;
          conv.transcript.push(...(ev.messages ?? []));
          break;
        case 'error':
          throw new Error(ev.error?.message ?? 'the agent failed');
      }
    });
  } catch (err) {
    if (!signal.aborted) throw err;
  } finally {
    live.finish(tokens, signal.aborted, since, perSecond);
    if (!done && live.present) conv.transcript.push({ role: 'assistant', content: live.item.text });
  }
}

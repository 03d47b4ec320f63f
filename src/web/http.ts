/** Talking to the server: headers, sampling fields, server-sent events, error bodies. */
import { fields } from './dom.js';

export function headers(): Record<string, string> {
  const h: Record<string, string> = { 'content-type': 'application/json' };
  if (fields.apiKey.value !== '') h['authorization'] = `Bearer ${fields.apiKey.value}`;
  return h;
}

function numberField(f: HTMLInputElement): number | undefined {
  if (f.value.trim() === '') return undefined;
  const n = Number(f.value);
  return Number.isFinite(n) ? n : undefined;
}

export function sampling(): Record<string, number> {
  const out: Record<string, number> = {};
  const t = numberField(fields.temperature);
  const p = numberField(fields.topP);
  const m = numberField(fields.maxTokens);
  if (t !== undefined) out['temperature'] = t;
  if (p !== undefined) out['top_p'] = p;
  if (m !== undefined) out['max_tokens'] = Math.round(m);
  return out;
}

/** Reads a server-sent event stream; calls `onEvent` with each `data:` JSON value. */
export async function readSse(res: Response, onEvent: (data: unknown) => void): Promise<void> {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let cut: number;
    while ((cut = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      for (const line of block.split('\n')) {
        if (!line.startsWith('data: ')) continue;
        const data = line.slice(6);
        if (data === '[DONE]') continue;
        onEvent(JSON.parse(data) as unknown);
      }
    }
  }
}

export async function errorText(res: Response): Promise<string> {
  try {
    const body = (await res.json()) as { error?: { message?: string } };
    return `Error ${res.status}: ${body.error?.message ?? res.statusText}`;
  } catch {
    return `Error ${res.status}: ${res.statusText}`;
  }
}

/**
 * The chat page served by `chatglm serve` at GET / (bundled by scripts/build-web.mjs into
 * dist/src/web/app.js). Chat streams /v1/chat/completions; Tools and Code stream
 * /chatglm/agent, which runs the tools and the sandboxed interpreter on the server.
 *
 * Everything the model or a tool writes is untrusted: Markdown is rendered with raw HTML shown as
 * text, then sanitized by DOMPurify (no <img>, no script, no event handlers); tool output goes in
 * through textContent; images are only `data:image/png;base64,` URLs from the interpreter. The
 * server's Content-Security-Policy (web-page.ts) backs this up.
 */
import { Marked, type Tokens } from 'marked';
import DOMPurify from 'dompurify';
import hljs from 'highlight.js/lib/core';
import python from 'highlight.js/lib/languages/python';
import json from 'highlight.js/lib/languages/json';
import javascript from 'highlight.js/lib/languages/javascript';
import bash from 'highlight.js/lib/languages/bash';

hljs.registerLanguage('python', python);
hljs.registerLanguage('json', json);
hljs.registerLanguage('javascript', javascript);
hljs.registerLanguage('bash', bash);

type Mode = 'chat' | 'tools' | 'code';

/** An OpenAI-form message of the transcript sent with the next turn. */
interface WireMessage {
  role: 'system' | 'user' | 'assistant' | 'tool';
  content: string | null;
  tool_calls?: { id: string; type: 'function'; function: { name: string; arguments: string } }[];
  tool_call_id?: string;
}

/** What the page shows. */
type Item =
  | { kind: 'user'; text: string }
  | { kind: 'assistant'; text: string; stats?: string }
  | { kind: 'tool_call'; id: string; name: string; arguments: string }
  | { kind: 'tool_result'; id: string; name: string; output: string; ok: boolean; images: string[] }
  | { kind: 'error'; text: string };

interface Conversation {
  id: string;
  mode: Mode;
  title: string;
  updated: number;
  transcript: WireMessage[];
  items: Item[];
}

const STORE_KEY = 'chatglm.conversations';
const CURRENT_KEY = 'chatglm.current';
const SETTINGS_KEY = 'chatglm.settings';
const PNG_DATA_URL = /^data:image\/png;base64,[A-Za-z0-9+/]+=*$/;

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
const log = $<HTMLDivElement>('log');
const input = $<HTMLTextAreaElement>('message');
const sendButton = $<HTMLButtonElement>('send');
const stopButton = $<HTMLButtonElement>('stop');
const list = $<HTMLUListElement>('conversations');
const fields = {
  system: $<HTMLTextAreaElement>('system'),
  temperature: $<HTMLInputElement>('temperature'),
  topP: $<HTMLInputElement>('top-p'),
  maxTokens: $<HTMLInputElement>('max-tokens'),
  apiKey: $<HTMLInputElement>('api-key'),
};

// ------------------------------------------------------------------ rendering untrusted text

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const markdown = new Marked({
  gfm: true,
  breaks: true,
  // Raw HTML in a reply is shown as the text it is, never parsed as markup.
  renderer: { html: (token: Tokens.HTML | Tokens.Tag) => escapeHtml(token.text) },
});

function renderMarkdown(target: HTMLElement, text: string): void {
  const html = markdown.parse(text, { async: false });
  target.innerHTML = DOMPurify.sanitize(html, {
    FORBID_TAGS: ['img', 'style', 'form', 'input', 'button', 'textarea', 'select', 'iframe', 'svg', 'math', 'video', 'audio', 'source', 'picture'],
    FORBID_ATTR: ['style', 'srcset'],
    ALLOW_DATA_ATTR: false,
  });
  for (const a of target.querySelectorAll('a')) {
    a.target = '_blank';
    a.rel = 'noopener noreferrer';
  }
  for (const code of target.querySelectorAll<HTMLElement>('pre code')) highlight(code);
}

function highlight(code: HTMLElement): void {
  const lang = /language-(\w+)/.exec(code.className)?.[1];
  if (lang !== undefined && hljs.getLanguage(lang) === undefined) return;
  hljs.highlightElement(code);
}

function codeBlock(text: string, lang: string): HTMLElement {
  const pre = document.createElement('pre');
  const code = document.createElement('code');
  code.className = `language-${lang}`;
  code.textContent = text;
  pre.append(code);
  highlight(code);
  return pre;
}

function el(tag: string, className: string, text?: string): HTMLElement {
  const e = document.createElement(tag);
  e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

/** The code of an interpreter call (`{"code": "..."}`), else the raw arguments. */
function codeOf(args: string): string {
  try {
    const v = JSON.parse(args) as { code?: unknown };
    if (typeof v.code === 'string') return v.code;
  } catch {
    // shown as written
  }
  return args;
}

function prettyJson(args: string): string {
  try {
    return JSON.stringify(JSON.parse(args), null, 2);
  } catch {
    return args;
  }
}

function renderItem(item: Item): HTMLElement {
  switch (item.kind) {
    case 'user':
      return el('div', 'msg user', item.text);
    case 'error':
      return el('div', 'msg error', item.text);
    case 'assistant': {
      const box = el('div', 'msg assistant');
      const body = el('div', 'body');
      renderMarkdown(body, item.text);
      box.append(body);
      if (item.stats !== undefined) box.append(el('div', 'stats', item.stats));
      return box;
    }
    case 'tool_call': {
      const card = el('div', 'card call');
      card.dataset['callId'] = item.id;
      const isCode = item.name === 'interpreter';
      card.append(el('h3', '', isCode ? 'Code' : `Tool call: ${item.name}`));
      card.append(isCode ? codeBlock(codeOf(item.arguments), 'python') : codeBlock(prettyJson(item.arguments), 'json'));
      return card;
    }
    case 'tool_result': {
      const card = el('div', 'card result');
      card.dataset['callId'] = item.id;
      card.append(el('h3', '', item.name === 'interpreter' ? 'Output' : `Result: ${item.name}${item.ok ? '' : ' (error)'}`));
      if (item.output !== '' || item.images.length === 0) card.append(el('pre', 'output', item.output));
      for (const url of item.images) {
        if (!PNG_DATA_URL.test(url)) continue;
        const img = document.createElement('img');
        img.alt = 'plot';
        img.src = url;
        card.append(img);
      }
      return card;
    }
  }
}

// ------------------------------------------------------------------ state and storage

let conversations: Conversation[] = load();
let current: Conversation = pickInitial();
let running: AbortController | undefined;
let modelName = 'default';
let serverTools: { name: string; description: string }[] = [];
let serverInterpreter = false;
let toolsAvailable = false;

function load(): Conversation[] {
  try {
    const v = JSON.parse(localStorage.getItem(STORE_KEY) ?? '[]') as unknown;
    return Array.isArray(v) ? (v as Conversation[]) : [];
  } catch {
    return [];
  }
}

function save(): void {
  const kept = conversations.filter((c) => c.items.length > 0);
  try {
    localStorage.setItem(STORE_KEY, JSON.stringify(kept));
  } catch {
    // Over the storage quota (plots are large): keep the text, drop the images.
    const slim = kept.map((c) => ({ ...c, items: c.items.map((i) => (i.kind === 'tool_result' ? { ...i, images: [] } : i)) }));
    try {
      localStorage.setItem(STORE_KEY, JSON.stringify(slim));
    } catch {
      // nothing more to do: the conversation stays in this tab only
    }
  }
  localStorage.setItem(CURRENT_KEY, current.id);
}

function newConversation(mode: Mode): Conversation {
  const c: Conversation = { id: `c${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`, mode, title: 'New chat', updated: Date.now(), transcript: [], items: [] };
  conversations.unshift(c);
  return c;
}

function pickInitial(): Conversation {
  const id = localStorage.getItem(CURRENT_KEY);
  return conversations.find((c) => c.id === id) ?? conversations[0] ?? newConversation('chat');
}

function loadSettings(): void {
  try {
    const s = JSON.parse(localStorage.getItem(SETTINGS_KEY) ?? '{}') as Record<string, string>;
    for (const [k, f] of Object.entries(fields)) f.value = s[k] ?? '';
  } catch {
    // defaults
  }
}

function saveSettings(): void {
  const s: Record<string, string> = {};
  for (const [k, f] of Object.entries(fields)) s[k] = f.value;
  localStorage.setItem(SETTINGS_KEY, JSON.stringify(s));
}

// ------------------------------------------------------------------ view

function renderAll(): void {
  for (const tab of document.querySelectorAll<HTMLButtonElement>('[role=tab]')) {
    const on = tab.dataset['mode'] === current.mode;
    tab.setAttribute('aria-selected', String(on));
    tab.tabIndex = on ? 0 : -1;
    if (on) $('panel').setAttribute('aria-labelledby', tab.id);
  }
  $('tools-panel').hidden = current.mode !== 'tools';
  const note = $<HTMLParagraphElement>('mode-note');
  const off = (current.mode === 'tools' && !toolsAvailable) || (current.mode === 'code' && !serverInterpreter);
  note.hidden = !off && current.mode === 'chat';
  note.textContent =
    current.mode === 'tools'
      ? toolsAvailable
        ? 'The model may call the checked tools; they run on the server.'
        : 'Server-side tools are off: start chatglm serve with --tools-module FILE or --builtin-tools NAMES.'
      : current.mode === 'code'
        ? serverInterpreter
          ? 'Python code the model writes runs in a sandbox on the server.'
          : 'The code interpreter is off: start chatglm serve with --interpreter.'
        : '';
  log.replaceChildren(...current.items.map(renderItem));
  log.scrollTop = log.scrollHeight;
  list.replaceChildren(
    ...conversations
      .filter((c) => c.items.length > 0 || c === current)
      .map((c) => {
        const li = document.createElement('li');
        const b = document.createElement('button');
        b.type = 'button';
        b.textContent = `[${c.mode}] ${c.title}`;
        b.setAttribute('aria-current', String(c === current));
        b.addEventListener('click', () => select(c));
        li.append(b);
        return li;
      }),
  );
}

function select(c: Conversation): void {
  if (running !== undefined) return;
  current = c;
  save();
  renderAll();
}

function switchMode(mode: Mode): void {
  if (running !== undefined || mode === current.mode) return;
  const latest = conversations.find((c) => c.mode === mode);
  select(latest !== undefined && latest.items.length === 0 ? latest : newConversation(mode));
}

function renderTools(): void {
  const box = $('tool-list');
  box.replaceChildren(
    ...serverTools.map((t) => {
      const label = document.createElement('label');
      const cb = document.createElement('input');
      cb.type = 'checkbox';
      cb.checked = true;
      cb.value = t.name;
      label.title = t.description;
      label.append(cb, ` ${t.name}`);
      return label;
    }),
  );
}

// ------------------------------------------------------------------ requests

function headers(): Record<string, string> {
  const h: Record<string, string> = { 'content-type': 'application/json' };
  if (fields.apiKey.value !== '') h['authorization'] = `Bearer ${fields.apiKey.value}`;
  return h;
}

function numberField(f: HTMLInputElement): number | undefined {
  if (f.value.trim() === '') return undefined;
  const n = Number(f.value);
  return Number.isFinite(n) ? n : undefined;
}

function sampling(): Record<string, number> {
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
async function readSse(res: Response, onEvent: (data: unknown) => void): Promise<void> {
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

async function errorText(res: Response): Promise<string> {
  try {
    const body = (await res.json()) as { error?: { message?: string } };
    return `Error ${res.status}: ${body.error?.message ?? res.statusText}`;
  } catch {
    return `Error ${res.status}: ${res.statusText}`;
  }
}

/** Updates the last assistant item in place while it streams (re-rendered once per frame). */
class LiveReply {
  readonly item: Item & { kind: 'assistant' } = { kind: 'assistant', text: '' };
  private node: HTMLElement | undefined;
  private queued = false;
  started = 0;
  tokens = 0;

  constructor(private readonly conv: Conversation) {}

  append(delta: string): void {
    if (this.node === undefined) {
      this.started = performance.now();
      this.conv.items.push(this.item);
      this.node = renderItem(this.item);
      if (this.conv === current) log.append(this.node);
    }
    this.item.text += delta;
    if (this.queued) return;
    this.queued = true;
    requestAnimationFrame(() => {
      this.queued = false;
      this.refresh();
    });
  }

  get present(): boolean {
    return this.node !== undefined;
  }

  /** `perSecond`: the server's decode speed when it reports one; else tokens over the time since `since`. */
  finish(tokens: number | undefined, stopped: boolean, since: number, perSecond?: number): void {
    if (this.node === undefined) return;
    const secs = (performance.now() - since) / 1000;
    const parts: string[] = [];
    const speed = perSecond ?? (tokens !== undefined ? tokens / Math.max(secs, 1e-3) : undefined);
    if (tokens !== undefined && tokens > 0 && speed !== undefined) parts.push(`${tokens} tokens`, `${speed.toFixed(1)} tokens/s`);
    if (stopped) parts.push('stopped');
    if (parts.length > 0) this.item.stats = parts.join(' · ');
    this.refresh();
  }

  private refresh(): void {
    if (this.node === undefined) return;
    const fresh = renderItem(this.item);
    this.node.replaceWith(fresh);
    this.node = fresh;
    log.scrollTop = log.scrollHeight;
  }
}

function push(conv: Conversation, item: Item): void {
  conv.items.push(item);
  if (conv === current) {
    log.append(renderItem(item));
    log.scrollTop = log.scrollHeight;
  }
}

function messagesFor(conv: Conversation): WireMessage[] {
  const system = fields.system.value.trim();
  return system !== '' ? [{ role: 'system', content: system }, ...conv.transcript] : [...conv.transcript];
}

async function chatTurn(conv: Conversation, signal: AbortSignal): Promise<void> {
  // Speed over the whole request (queue and prompt included): a tiny model's tokens arrive in bursts.
  const sent = performance.now();
  const res = await fetch('/v1/chat/completions', {
    method: 'POST',
    headers: headers(),
    body: JSON.stringify({ model: modelName, messages: messagesFor(conv), stream: true, stream_options: { include_usage: true }, ...sampling() }),
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

async function agentTurn(conv: Conversation, signal: AbortSignal): Promise<void> {
  const body: Record<string, unknown> = { model: modelName, messages: messagesFor(conv), ...sampling() };
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

async function send(): Promise<void> {
  const text = input.value.trim();
  if (text === '' || running !== undefined) return;
  input.value = '';
  const conv = current;
  if (conv.items.length === 0) conv.title = text.slice(0, 40);
  conv.updated = Date.now();
  conversations = [conv, ...conversations.filter((c) => c !== conv)];
  push(conv, { kind: 'user', text });
  conv.transcript.push({ role: 'user', content: text });
  renderAll();
  const abort = new AbortController();
  running = abort;
  sendButton.disabled = true;
  stopButton.disabled = false;
  try {
    if (conv.mode === 'chat') await chatTurn(conv, abort.signal);
    else await agentTurn(conv, abort.signal);
  } catch (err) {
    if (!abort.signal.aborted) push(conv, { kind: 'error', text: err instanceof Error ? err.message : String(err) });
  } finally {
    running = undefined;
    sendButton.disabled = false;
    stopButton.disabled = true;
    save();
    renderAll();
  }
}

// ------------------------------------------------------------------ wiring

async function discover(): Promise<void> {
  try {
    const res = await fetch('/v1/models', { headers: headers() });
    if (res.ok) {
      const body = (await res.json()) as { data: { id: string }[] };
      modelName = body.data[0]?.id ?? modelName;
      $('model-name').textContent = modelName;
    }
  } catch {
    // the model name stays "default"; the server answers requests with its own
  }
  try {
    const res = await fetch('/chatglm/tools', { headers: headers() });
    if (res.ok) {
      const body = (await res.json()) as { tools: { name: string; description: string }[]; interpreter: boolean };
      serverTools = body.tools;
      serverInterpreter = body.interpreter;
      toolsAvailable = serverTools.length > 0;
    }
  } catch {
    // Tools and Code say they are off
  }
  renderTools();
  renderAll();
}

$('composer').addEventListener('submit', (e) => {
  e.preventDefault();
  void send();
});
input.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    void send();
  }
});
stopButton.addEventListener('click', () => running?.abort());
$('new-chat').addEventListener('click', () => {
  if (running === undefined) select(newConversation(current.mode));
});
for (const tab of document.querySelectorAll<HTMLButtonElement>('[role=tab]')) {
  tab.addEventListener('click', () => switchMode(tab.dataset['mode'] as Mode));
}
for (const f of Object.values(fields)) f.addEventListener('change', saveSettings);
// With a new key, ask again for the model name and the server's tools.
fields.apiKey.addEventListener('change', () => void discover());

loadSettings();
renderAll();
void discover();

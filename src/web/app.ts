/**
 * The chat page served by `chatglm serve` at GET / (bundled by scripts/build-web.mjs into
 * dist/src/web/app.js). Chat streams /v1/chat/completions; Tools and Code stream
 * /chatglm/agent, which runs the tools and the sandboxed interpreter on the server.
 *
 * This file sends a turn and wires the controls; turns.ts streams the replies, view.ts and
 * render.ts draw them, state.ts keeps the conversations. Everything the model or a tool writes is
 * untrusted: render.ts sanitizes it, and the server's Content-Security-Policy (web-page.ts) backs
 * that up.
 */
import { $, fields, input, sendButton, stopButton } from './dom.js';
import { headers } from './http.js';
import { loadSettings, newConversation, save, saveSettings, state } from './state.js';
import { agentTurn, chatTurn } from './turns.js';
import type { Mode } from './types.js';
import { push, renderAll, renderTools, select, switchMode } from './view.js';

async function send(): Promise<void> {
  const text = input.value.trim();
  if (text === '' || state.running !== undefined) return;
  input.value = '';
  const conv = state.current;
  if (conv.items.length === 0) conv.title = text.slice(0, 40);
  conv.updated = Date.now();
  state.conversations = [conv, ...state.conversations.filter((c) => c !== conv)];
  push(conv, { kind: 'user', text });
  conv.transcript.push({ role: 'user', content: text });
  renderAll();
  const abort = new AbortController();
  state.running = abort;
  sendButton.disabled = true;
  stopButton.disabled = false;
  try {
    if (conv.mode === 'chat') await chatTurn(conv, abort.signal);
    else await agentTurn(conv, abort.signal);
  } catch (err) {
    if (!abort.signal.aborted) push(conv, { kind: 'error', text: err instanceof Error ? err.message : String(err) });
  } finally {
    state.running = undefined;
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
      state.modelName = body.data[0]?.id ?? state.modelName;
      $('model-name').textContent = state.modelName;
    }
  } catch {
    // the model name stays "default"; the server answers requests with its own
  }
  try {
    const res = await fetch('/chatglm/tools', { headers: headers() });
    if (res.ok) {
      const body = (await res.json()) as { tools: { name: string; description: string }[]; interpreter: boolean };
      state.serverTools = body.tools;
      state.serverInterpreter = body.interpreter;
      state.toolsAvailable = state.serverTools.length > 0;
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
stopButton.addEventListener('click', () => state.running?.abort());
$('new-chat').addEventListener('click', () => {
  if (state.running === undefined) select(newConversation(state.current.mode));
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

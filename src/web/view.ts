/** Drawing the page from the state: tabs, the mode note, the log, the conversation list, the tool checkboxes. */
import { $, list, log } from './dom.js';
import { renderItem } from './render.js';
import { newConversation, save, state } from './state.js';
import type { Conversation, Item, Mode } from './types.js';

export function renderAll(): void {
  const current = state.current;
  for (const tab of document.querySelectorAll<HTMLButtonElement>('[role=tab]')) {
    const on = tab.dataset['mode'] === current.mode;
    tab.setAttribute('aria-selected', String(on));
    tab.tabIndex = on ? 0 : -1;
    if (on) $('panel').setAttribute('aria-labelledby', tab.id);
  }
  $('tools-panel').hidden = current.mode !== 'tools';
  const note = $<HTMLParagraphElement>('mode-note');
  const off = (current.mode === 'tools' && !state.toolsAvailable) || (current.mode === 'code' && !state.serverInterpreter);
  note.hidden = !off && current.mode === 'chat';
  note.textContent =
    current.mode === 'tools'
      ? state.toolsAvailable
        ? 'The model may call the checked tools; they run on the server.'
        : 'Server-side tools are off: start chatglm serve with --tools-module FILE or --builtin-tools NAMES.'
      : current.mode === 'code'
        ? state.serverInterpreter
          ? 'Python code the model writes runs in a sandbox on the server.'
          : 'The code interpreter is off: start chatglm serve with --interpreter.'
        : '';
  log.replaceChildren(...current.items.map(renderItem));
  log.scrollTop = log.scrollHeight;
  list.replaceChildren(
    ...state.conversations
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

export function select(c: Conversation): void {
  if (state.running !== undefined) return;
  state.current = c;
  save();
  renderAll();
}

export function switchMode(mode: Mode): void {
  if (state.running !== undefined || mode === state.current.mode) return;
  const latest = state.conversations.find((c) => c.mode === mode);
  select(latest !== undefined && latest.items.length === 0 ? latest : newConversation(mode));
}

export function renderTools(): void {
  const box = $('tool-list');
  box.replaceChildren(
    ...state.serverTools.map((t) => {
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

/** Adds an item to a conversation, and to the log when that conversation is shown. */
export function push(conv: Conversation, item: Item): void {
  conv.items.push(item);
  if (conv === state.current) {
    log.append(renderItem(item));
    log.scrollTop = log.scrollHeight;
  }
}

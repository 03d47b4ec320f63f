/**
 * The page's state: the conversations (kept in localStorage), the one shown, the request in
 * flight, and what the server offers (model name, tools, interpreter).
 */
import { fields } from './dom.js';
import type { Conversation, Mode } from './types.js';

const STORE_KEY = 'chatglm.conversations';
const CURRENT_KEY = 'chatglm.current';
const SETTINGS_KEY = 'chatglm.settings';

interface PageState {
  conversations: Conversation[];
  current: Conversation;
  running: AbortController | undefined;
  modelName: string;
  serverTools: { name: string; description: string }[];
  serverInterpreter: boolean;
  toolsAvailable: boolean;
}

function load(): Conversation[] {
  try {
    const v = JSON.parse(localStorage.getItem(STORE_KEY) ?? '[]') as unknown;
    return Array.isArray(v) ? (v as Conversation[]) : [];
  } catch {
    return [];
  }
}

const conversations = load();
export const state: PageState = {
  conversations,
  current: pickInitial(conversations),
  running: undefined,
  modelName: 'default',
  serverTools: [],
  serverInterpreter: false,
  toolsAvailable: false,
};
export function save(): void {
  const kept = state.conversations.filter((c) => c.items.length > 0);
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
  localStorage.setItem(CURRENT_KEY, state.current.id);
}

function addConversation(list: Conversation[], mode: Mode): Conversation {
  const c: Conversation = { id: `c${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`, mode, title: 'New chat', updated: Date.now(), transcript: [], items: [] };
  list.unshift(c);
  return c;
}

export function newConversation(mode: Mode): Conversation {
  return addConversation(state.conversations, mode);
}

/** The conversation shown last time, else the newest, else a new one. */
function pickInitial(list: Conversation[]): Conversation {
  const id = localStorage.getItem(CURRENT_KEY);
  return list.find((c) => c.id === id) ?? list[0] ?? addConversation(list, 'chat');
}

export function loadSettings(): void {
  try {
    const s = JSON.parse(localStorage.getItem(SETTINGS_KEY) ?? '{}') as Record<string, string>;
    for (const [k, f] of Object.entries(fields)) f.value = s[k] ?? '';
  } catch {
    // defaults
  }
}

export function saveSettings(): void {
  const s: Record<string, string> = {};
  for (const [k, f] of Object.entries(fields)) s[k] = f.value;
  localStorage.setItem(SETTINGS_KEY, JSON.stringify(s));
}

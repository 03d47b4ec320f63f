/** The page's data: conversations as shown (items) and as sent (the OpenAI-form transcript). */

export type Mode = 'chat' | 'tools' | 'code';

/** An OpenAI-form message of the transcript sent with the next turn. */
export interface WireMessage {
  role: 'system' | 'user' | 'assistant' | 'tool';
  content: string | null;
  tool_calls?: { id: string; type: 'function'; function: { name: string; arguments: string } }[];
  tool_call_id?: string;
}

/** What the page shows. */
export type Item =
  | { kind: 'user'; text: string }
  | { kind: 'assistant'; text: string; stats?: string }
  | { kind: 'tool_call'; id: string; name: string; arguments: string }
  | { kind: 'tool_result'; id: string; name: string; output: string; ok: boolean; images: string[] }
  | { kind: 'error'; text: string };

export interface Conversation {
  id: string;
  mode: Mode;
  title: string;
  updated: number;
  transcript: WireMessage[];
  items: Item[];
}

/** The only image URLs the page shows: PNGs inlined by the interpreter. */
export const PNG_DATA_URL = /^data:image\/png;base64,[A-Za-z0-9+/]+=*$/;

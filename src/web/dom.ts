/** The elements of index.html the page script works with, looked up once. */

export const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
export const log = $<HTMLDivElement>('log');
export const input = $<HTMLTextAreaElement>('message');
export const sendButton = $<HTMLButtonElement>('send');
export const stopButton = $<HTMLButtonElement>('stop');
export const list = $<HTMLUListElement>('conversations');
/** The settings form; each value is kept in localStorage under its key. */
export const fields = {
  system: $<HTMLTextAreaElement>('system'),
  temperature: $<HTMLInputElement>('temperature'),
  topP: $<HTMLInputElement>('top-p'),
  maxTokens: $<HTMLInputElement>('max-tokens'),
  apiKey: $<HTMLInputElement>('api-key'),
};

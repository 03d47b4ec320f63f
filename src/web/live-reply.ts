/** The assistant reply being streamed: one item, re-rendered at most once per frame. */
import { log } from './dom.js';
import { renderItem } from './render.js';
import { state } from './state.js';
import type { Conversation, Item } from './types.js';

/** Updates the last assistant item in place while it streams (re-rendered once per frame). */
export class LiveReply {
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
      if (this.conv === state.current) log.append(this.node);
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

/**
 * Server-sent events by hand: `data: <json>\n\n` per event, `data: [DONE]` at the end. Writes
 * are not awaited (the events are small): a slow reader never holds up the batch.
 */
import type { ServerResponse } from 'node:http';
import type { HttpError } from './errors.js';

export class SseWriter {
  private started = false;

  constructor(
    private readonly res: ServerResponse,
    private readonly headers: Record<string, string>,
  ) {}

  get open(): boolean {
    return !this.res.writableEnded && !this.res.destroyed;
  }

  private start(): void {
    if (this.started) return;
    this.started = true;
    this.res.writeHead(200, {
      ...this.headers,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    this.res.flushHeaders();
  }

  send(event: unknown): void {
    this.start();
    if (this.open) this.res.write(`data: ${JSON.stringify(event)}\n\n`);
  }

  /** An error after the stream began: one `data: {"error": ...}` event, then the stream closes. */
  fail(err: HttpError): void {
    this.send(err.body());
    this.end(false);
  }

  end(done = true): void {
    this.start();
    if (!this.open) return;
    if (done) this.res.write('data: [DONE]\n\n');
    this.res.end();
  }
}

/**
 * Caller-given stop strings on a stream of text deltas. Text that might be the start of a stop
 * string is held back until it is known not to be; at a match, the text before it is released and
 * generation stops. The stop string itself never reaches the caller.
 */
export interface StopCheck {
  /** Text that is safe to pass on. */
  text: string;
  /** The stop string that matched, if any. */
  stop?: string;
}

export class StopStringMatcher {
  private held = '';
  private readonly stops: string[];

  constructor(stops: readonly string[]) {
    this.stops = stops.filter((s) => s.length > 0);
  }

  push(delta: string): StopCheck {
    if (this.stops.length === 0) return { text: delta };
    const buf = this.held + delta;
    let first = -1;
    let which: string | undefined;
    for (const s of this.stops) {
      const i = buf.indexOf(s);
      if (i >= 0 && (first < 0 || i < first)) {
        first = i;
        which = s;
      }
    }
    if (which !== undefined) {
      this.held = '';
      return { text: buf.slice(0, first), stop: which };
    }
    const keep = this.partialSuffix(buf);
    this.held = buf.slice(buf.length - keep);
    return { text: buf.slice(0, buf.length - keep) };
  }

  /** Releases held text at the end of a generation (no stop string can complete any more). */
  flush(): string {
    const t = this.held;
    this.held = '';
    return t;
  }

  /** Length of the longest suffix of buf that is a proper prefix of some stop string. */
  private partialSuffix(buf: string): number {
    let best = 0;
    for (const s of this.stops) {
      for (let n = Math.min(s.length - 1, buf.length); n > best; n--) {
        if (buf.endsWith(s.slice(0, n))) {
          best = n;
          break;
        }
      }
    }
    return best;
  }
}

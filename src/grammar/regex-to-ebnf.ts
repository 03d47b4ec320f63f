/**
 * A JSON Schema `pattern` (ECMAScript regex) as an EBNF expression over the characters of a string
 * body. Supported: literals and escapes, `.`, classes `[...]`/`[^...]` with ranges and \d \w \s,
 * groups `(...)`/`(?:...)`, `|`, quantifiers `* + ? {n} {n,} {n,m}` (lazy forms as greedy), and `^`
 * / `$` at the ends (a pattern without them may have any text around the match, as JSON Schema
 * says). Backreferences, lookaround and other anchors are a GRAMMAR error.
 *
 * The string body holds raw characters only: `"` and `\` are written as their escapes `\"` and
 * `\\`, and a class never produces a control character, a quote or a backslash.
 */
import { ChatGLMError } from '../errors.js';

/** Any character a string body may hold raw. */
export const STRING_CHAR_CLASS = '[^"\\\\\\x00-\\x1f]';

function hex4(cp: number): string {
  return cp.toString(16).padStart(4, '0');
}

/** One code point inside an EBNF character class. */
function classChar(cp: number): string {
  if (cp < 0x20 || cp === 0x5d || cp === 0x5c || cp === 0x2d || cp === 0x5e || cp === 0x5b || cp === 0x22) return `\\u${hex4(cp)}`;
  if (cp > 0xffff) return `\\U${cp.toString(16).padStart(8, '0')}`;
  return String.fromCodePoint(cp);
}

/** A string literal in EBNF for one raw character of the body (quote and backslash as their escapes). */
function literalChar(cp: number): string {
  if (cp === 0x22) return '"\\\\\\""';
  if (cp === 0x5c) return '"\\\\\\\\"';
  if (cp < 0x20) throw new ChatGLMError('GRAMMAR', `pattern: a control character (U+${hex4(cp)}) cannot be written raw in a JSON string`);
  return JSON.stringify(String.fromCodePoint(cp));
}

type Range = [number, number];

const DIGIT: Range[] = [[0x30, 0x39]];
const WORD: Range[] = [[0x30, 0x39], [0x41, 0x5a], [0x5f, 0x5f], [0x61, 0x7a]];
// Only the space: tabs and newlines cannot appear raw in a string body.
const SPACE: Range[] = [[0x20, 0x20]];

/** A set of ranges (or their complement) as an EBNF class that never yields `"`, `\` or a control character. */
function classExpr(ranges: Range[], negated: boolean): string {
  if (negated) return `[^${ranges.map(([a, b]) => (a === b ? classChar(a) : `${classChar(a)}-${classChar(b)}`)).join('')}"\\\\\\x00-\\x1f]`;
  const parts: string[] = [];
  const lits: string[] = [];
  for (const [a, b] of ranges) {
    // Split out the characters a class may not hold raw.
    for (const [lo, hi] of subtract([a, b], [[0, 0x1f], [0x22, 0x22], [0x5c, 0x5c]])) parts.push(lo === hi ? classChar(lo) : `${classChar(lo)}-${classChar(hi)}`);
    if (a <= 0x22 && b >= 0x22) lits.push(literalChar(0x22));
    if (a <= 0x5c && b >= 0x5c) lits.push(literalChar(0x5c));
  }
  const alts = [...(parts.length > 0 ? [`[${parts.join('')}]`] : []), ...lits];
  if (alts.length === 0) throw new ChatGLMError('GRAMMAR', 'pattern: a character class matches nothing that can appear in a string');
  return alts.length === 1 ? alts[0]! : `(${alts.join(' | ')})`;
}

function subtract(r: Range, holes: Range[]): Range[] {
  let out: Range[] = [r];
  for (const [hl, hh] of holes) {
    const next: Range[] = [];
    for (const [a, b] of out) {
      if (hh < a || hl > b) next.push([a, b]);
      else {
        if (a < hl) next.push([a, hl - 1]);
        if (b > hh) next.push([hh + 1, b]);
      }
    }
    out = next;
  }
  return out;
}

class RegexParser {
  private pos = 0;
  private readonly cps: number[];
  constructor(private readonly source: string) {
    this.cps = Array.from(source, (c) => c.codePointAt(0)!);
  }

  fail(why: string): never {
    throw new ChatGLMError('GRAMMAR', `pattern ${JSON.stringify(this.source)}: ${why} (at ${this.pos}); supported: literals, ., [...], groups, |, * + ? {n,m}, ^ and $ at the ends`);
  }

  private peek(): number | undefined {
    return this.cps[this.pos];
  }
  private at(c: string): boolean {
    return this.cps[this.pos] === c.codePointAt(0);
  }

  parse(): string {
    let anchoredStart = false;
    if (this.at('^')) {
      anchoredStart = true;
      this.pos++;
    }
    const body = this.alternation(true);
    let anchoredEnd = false;
    if (this.at('$')) {
      anchoredEnd = true;
      this.pos++;
    }
    if (this.pos < this.cps.length) this.fail('unexpected character');
    const any = `${STRING_CHAR_CLASS}*`;
    return [...(anchoredStart ? [] : [any]), `(${body})`, ...(anchoredEnd ? [] : [any])].join(' ');
  }

  private alternation(top: boolean): string {
    const alts = [this.sequence(top)];
    while (this.at('|')) {
      this.pos++;
      alts.push(this.sequence(top));
    }
    return alts.join(' | ');
  }

  private sequence(top: boolean): string {
    const items: string[] = [];
    for (;;) {
      const c = this.peek();
      if (c === undefined || this.at('|') || this.at(')')) break;
      if (top && this.at('$') && this.pos === this.cps.length - 1) break;
      items.push(this.quantified());
    }
    return items.length === 0 ? '""' : items.join(' ');
  }

  private quantified(): string {
    const atom = this.atom();
    const c = this.peek();
    let out = atom;
    if (c === 0x2a) {
      this.pos++;
      out = `(${atom})*`;
    } else if (c === 0x2b) {
      this.pos++;
      out = `(${atom})+`;
    } else if (c === 0x3f) {
      this.pos++;
      out = `(${atom})?`;
    } else if (c === 0x7b) {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(this.source.slice(this.strIndex()));
      if (!m) return out;
      this.pos += m[0].length;
      const lo = Number(m[1]);
      const hi = m[2] === undefined ? lo : m[3] === '' ? undefined : Number(m[3]);
      if (hi !== undefined && hi < lo) this.fail('a {n,m} quantifier with m < n');
      out = `(${atom}){${lo},${hi ?? ''}}`;
    }
    if (this.at('?') && out !== atom) this.pos++;
    return out;
  }

  /** The UTF-16 index of the current code point (for the {n,m} regex above). */
  private strIndex(): number {
    let i = 0;
    for (let k = 0; k < this.pos; k++) i += this.cps[k]! > 0xffff ? 2 : 1;
    return i;
  }

  private atom(): string {
    const c = this.peek()!;
    if (c === 0x28) {
      this.pos++;
      if (this.at('?')) {
        if (this.cps[this.pos + 1] !== 0x3a) this.fail('lookaround and named groups are not supported');
        this.pos += 2;
      }
      const inner = this.alternation(false);
      if (!this.at(')')) this.fail('missing )');
      this.pos++;
      return `(${inner})`;
    }
    if (c === 0x5b) return this.charClass();
    if (c === 0x2e) {
      this.pos++;
      return STRING_CHAR_CLASS;
    }
    if (c === 0x5c) {
      this.pos++;
      const e = this.peek();
      if (e === undefined) this.fail('a trailing backslash');
      this.pos++;
      const cls = escapeClass(e);
      if (cls) return classExpr(cls.ranges, cls.negated);
      if (e >= 0x31 && e <= 0x39) this.fail('backreferences are not supported');
      if (e === 0x62 || e === 0x42) this.fail('\\b and \\B are not supported');
      return literalChar(escapeChar(e, this));
    }
    if (c === 0x5e || c === 0x24) this.fail('^ and $ are supported only at the ends');
    if (c === 0x2a || c === 0x2b || c === 0x3f) this.fail('a quantifier with nothing before it');
    this.pos++;
    return literalChar(c);
  }

  private charClass(): string {
    this.pos++;
    let negated = false;
    if (this.at('^')) {
      negated = true;
      this.pos++;
    }
    const ranges: Range[] = [];
    let first = true;
    while (!(this.at(']') && !first)) {
      if (this.peek() === undefined) this.fail('missing ]');
      first = false;
      const lo = this.classAtom(ranges);
      if (lo === undefined) continue;
      if (this.at('-') && this.cps[this.pos + 1] !== undefined && this.cps[this.pos + 1] !== 0x5d) {
        this.pos++;
        const hi = this.classAtom(ranges);
        if (hi === undefined) this.fail('a range ending in a class escape');
        if (hi < lo) this.fail('a range out of order');
        ranges.push([lo, hi]);
      } else {
        ranges.push([lo, lo]);
      }
    }
    this.pos++;
    return classExpr(ranges, negated);
  }

  /** One class member: a code point, or undefined after adding a class escape's ranges. */
  private classAtom(ranges: Range[]): number | undefined {
    const c = this.peek()!;
    this.pos++;
    if (c !== 0x5c) return c;
    const e = this.peek();
    if (e === undefined) this.fail('a trailing backslash');
    this.pos++;
    const cls = escapeClass(e);
    if (cls) {
      if (cls.negated) this.fail('\\D, \\W and \\S inside [...] are not supported');
      ranges.push(...cls.ranges);
      return undefined;
    }
    return escapeChar(e, this);
  }
}

function escapeClass(e: number): { ranges: Range[]; negated: boolean } | undefined {
  switch (String.fromCodePoint(e)) {
    case 'd':
      return { ranges: DIGIT, negated: false };
    case 'D':
      return { ranges: DIGIT, negated: true };
    case 'w':
      return { ranges: WORD, negated: false };
    case 'W':
      return { ranges: WORD, negated: true };
    case 's':
      return { ranges: SPACE, negated: false };
    case 'S':
      return { ranges: SPACE, negated: true };
  }
  return undefined;
}

function escapeChar(e: number, p: RegexParser): number {
  switch (String.fromCodePoint(e)) {
    case 'n':
      return 0x0a;
    case 't':
      return 0x09;
    case 'r':
      return 0x0d;
    case 'u':
    case 'x':
      return p.fail('\\u and \\x escapes are not supported; write the character itself');
  }
  return e;
}

/** The EBNF expression for the body of a string matching `pattern`. */
export function patternToEbnf(pattern: string): string {
  return new RegexParser(pattern).parse();
}

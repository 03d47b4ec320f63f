/**
 * ChatGLM3 writes tool calls as Python: ```python\ntool_call(city='北京', range=(0, 100))\n```.
 * The original code runs `eval` on that; we parse it instead. Only literals are accepted: strings
 * (either quote, triple quotes, r/u prefixes, escapes, implicit concatenation), ints, floats,
 * True/False/None, tuples (as arrays), lists, dicts and any nesting of those. Anything else is a
 * parse error with a position, never code execution.
 */

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

export class PythonSyntaxError extends Error {
  constructor(message: string, readonly offset: number) {
    super(`${message} at offset ${offset}`);
    this.name = 'PythonSyntaxError';
  }
}

/**
 * Keys that would reach an object's prototype machinery when the arguments are assigned, spread
 * or merged by a caller (`obj.__proto__ = x` replaces the prototype). Model output never needs them.
 */
export const UNSAFE_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

export interface ParsedCall {
  name: string;
  kwargs: Record<string, JsonValue>;
}

/** Parses `name(k=v, ...)` (keyword arguments only, as `tool_call(**kwargs)` takes). */
export function parsePythonCall(source: string): ParsedCall {
  const p = new Parser(source);
  p.ws();
  const name = p.identifier();
  p.ws();
  p.expect('(');
  const kwargs: Record<string, JsonValue> = {};
  p.ws();
  while (!p.peek(')')) {
    const at = p.pos;
    const key = p.identifier();
    p.ws();
    if (!p.peek('=')) throw new PythonSyntaxError(`positional argument or missing '=' after '${key}'`, at);
    p.expect('=');
    p.ws();
    if (UNSAFE_KEYS.has(key)) throw new PythonSyntaxError(`argument name ${key} is not allowed`, at);
    if (Object.prototype.hasOwnProperty.call(kwargs, key)) throw new PythonSyntaxError(`keyword argument repeated: ${key}`, at);
    kwargs[key] = p.value();
    p.ws();
    if (p.peek(',')) {
      p.expect(',');
      p.ws();
    } else if (!p.peek(')')) {
      throw new PythonSyntaxError(`expected ',' or ')'`, p.pos);
    }
  }
  p.expect(')');
  p.ws();
  if (!p.atEnd()) throw new PythonSyntaxError('unexpected text after the call', p.pos);
  return { name, kwargs };
}

/** Parses one Python literal expression. */
export function parsePythonLiteral(source: string): JsonValue {
  const p = new Parser(source);
  p.ws();
  const v = p.value();
  p.ws();
  if (!p.atEnd()) throw new PythonSyntaxError('unexpected text after the value', p.pos);
  return v;
}

/** Writes a JSON value as a Python literal (the inverse, for putting a call back into a prompt). */
export function toPythonLiteral(v: JsonValue): string {
  if (v === null) return 'None';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) return v > 0 ? "float('inf')" : v < 0 ? "float('-inf')" : "float('nan')";
    return String(v);
  }
  if (typeof v === 'string') return pythonStringRepr(v);
  if (Array.isArray(v)) return `[${v.map(toPythonLiteral).join(', ')}]`;
  return `{${Object.entries(v)
    .map(([k, x]) => `${pythonStringRepr(k)}: ${toPythonLiteral(x)}`)
    .join(', ')}}`;
}

/** Python's repr(str): single quotes unless the text has ' and no ". */
export function pythonStringRepr(s: string): string {
  const q = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = q;
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '\\') out += '\\\\';
    else if (ch === q) out += '\\' + q;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (c < 0x20 || c === 0x7f) out += '\\x' + c.toString(16).padStart(2, '0');
    else out += ch;
  }
  return out + q;
}

const SIMPLE_ESCAPES: Record<string, string> = {
  '\\': '\\',
  "'": "'",
  '"': '"',
  a: '\x07',
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
  v: '\v',
};

class Parser {
  pos = 0;
  private depth = 0;
  constructor(private readonly s: string) {}

  atEnd(): boolean {
    return this.pos >= this.s.length;
  }

  peek(t: string): boolean {
    return this.s.startsWith(t, this.pos);
  }

  expect(t: string): void {
    if (!this.peek(t)) {
      const got = this.atEnd() ? 'end of input' : JSON.stringify(this.s.slice(this.pos, this.pos + 10));
      throw new PythonSyntaxError(`expected '${t}' but found ${got}`, this.pos);
    }
    this.pos += t.length;
  }

  /** Whitespace, including newlines (they are allowed inside brackets, where calls and literals live). */
  ws(): void {
    while (!this.atEnd()) {
      const c = this.s[this.pos]!;
      if (c === ' ' || c === '\t' || c === '\n' || c === '\r') this.pos++;
      else if (c === '\\' && (this.s[this.pos + 1] === '\n' || this.s[this.pos + 1] === '\r')) this.pos += 2;
      else break;
    }
  }

  identifier(): string {
    const m = /^[A-Za-z_\p{L}][\w\p{L}\p{N}]*/u.exec(this.s.slice(this.pos));
    if (!m) throw new PythonSyntaxError('expected a name', this.pos);
    this.pos += m[0].length;
    return m[0];
  }

  value(): JsonValue {
    if (++this.depth > 200) throw new PythonSyntaxError('nesting too deep', this.pos);
    try {
      return this.valueInner();
    } finally {
      this.depth--;
    }
  }

  private valueInner(): JsonValue {
    this.ws();
    if (this.atEnd()) throw new PythonSyntaxError('expected a value but the input ended', this.pos);
    const c = this.s[this.pos]!;
    if (c === '[') return this.sequence('[', ']', false);
    if (c === '(') return this.sequence('(', ')', true);
    if (c === '{') return this.dict();
    if (c === '-' || c === '+' || c === '.' || (c >= '0' && c <= '9')) return this.number();
    if (this.isStringStart()) {
      let out = this.string();
      // Adjacent string literals concatenate, as in Python.
      for (;;) {
        const save = this.pos;
        this.ws();
        if (this.isStringStart()) out += this.string();
        else {
          this.pos = save;
          break;
        }
      }
      return out;
    }
    const at = this.pos;
    const word = /^[A-Za-z_][\w]*/.exec(this.s.slice(this.pos))?.[0];
    if (word === 'True' || word === 'False' || word === 'None') {
      this.pos += word.length;
      return word === 'True' ? true : word === 'False' ? false : null;
    }
    if (word !== undefined) throw new PythonSyntaxError(`'${word}' is not a literal (names, calls and expressions are not evaluated)`, at);
    throw new PythonSyntaxError(`unexpected character ${JSON.stringify(c)}`, at);
  }

  private sequence(open: string, close: string, tuple: boolean): JsonValue {
    this.expect(open);
    const items: JsonValue[] = [];
    let sawComma = false;
    this.ws();
    while (!this.peek(close)) {
      items.push(this.value());
      this.ws();
      if (this.peek(',')) {
        this.expect(',');
        sawComma = true;
        this.ws();
      } else if (!this.peek(close)) {
        throw new PythonSyntaxError(`expected ',' or '${close}'`, this.pos);
      }
    }
    this.expect(close);
    // (x) is just x in parentheses; (x,) and (x, y) are tuples.
    if (tuple && items.length === 1 && !sawComma) return items[0]!;
    return items;
  }

  private dict(): JsonValue {
    this.expect('{');
    const out: Record<string, JsonValue> = {};
    this.ws();
    while (!this.peek('}')) {
      const at = this.pos;
      const key = this.value();
      if (typeof key === 'object' && key !== null) throw new PythonSyntaxError('dict keys must be strings, numbers, booleans or None', at);
      this.ws();
      this.expect(':');
      const name = key === null ? 'null' : String(key);
      if (UNSAFE_KEYS.has(name)) throw new PythonSyntaxError(`dict key ${name} is not allowed`, at);
      out[name] = this.value();
      this.ws();
      if (this.peek(',')) {
        this.expect(',');
        this.ws();
      } else if (!this.peek('}')) {
        throw new PythonSyntaxError(`expected ',' or '}'`, this.pos);
      }
    }
    this.expect('}');
    return out;
  }

  private number(): number {
    const at = this.pos;
    let sign = 1;
    while (this.peek('-') || this.peek('+')) {
      if (this.peek('-')) sign = -sign;
      this.pos++;
      this.ws();
    }
    const rest = this.s.slice(this.pos);
    const radix = /^0([xX][0-9a-fA-F_]+|[oO][0-7_]+|[bB][01_]+)/.exec(rest);
    if (radix) {
      this.pos += radix[0].length;
      const body = radix[1]!.slice(1).replace(/_/g, '');
      const base = { x: 16, o: 8, b: 2 }[radix[1]![0]!.toLowerCase() as 'x' | 'o' | 'b'];
      return sign * parseInt(body, base);
    }
    const m = /^(?:\d(?:_?\d)*)?(?:\.(?:\d(?:_?\d)*)?)?(?:[eE][+-]?\d(?:_?\d)*)?/.exec(rest);
    const text = m?.[0] ?? '';
    if (text === '' || text === '.' || !/\d/.test(text.split(/[eE]/)[0]!)) throw new PythonSyntaxError('expected a number', at);
    this.pos += text.length;
    if (/^[A-Za-z_]/.test(this.s.slice(this.pos))) throw new PythonSyntaxError('unexpected text after a number', this.pos);
    // Python rejects ints with leading zeros ("007"); so do we, to stay within the language.
    if (/^0\d/.test(text) && !/[.eE]/.test(text)) throw new PythonSyntaxError('leading zeros in an integer', at);
    return sign * Number(text.replace(/_/g, ''));
  }

  private isStringStart(): boolean {
    return /^(?:[rRuU])?['"]/.test(this.s.slice(this.pos, this.pos + 2));
  }

  private string(): string {
    const at = this.pos;
    let raw = false;
    const p = this.s[this.pos]!;
    if (p === 'r' || p === 'R') {
      raw = true;
      this.pos++;
    } else if (p === 'u' || p === 'U') {
      this.pos++;
    }
    const q = this.s[this.pos]!;
    const triple = this.s.startsWith(q.repeat(3), this.pos);
    const delim = triple ? q.repeat(3) : q;
    this.pos += delim.length;
    let out = '';
    for (;;) {
      if (this.atEnd()) throw new PythonSyntaxError('unterminated string', at);
      if (this.peek(delim)) {
        this.pos += delim.length;
        return out;
      }
      const c = this.s[this.pos]!;
      if (!triple && (c === '\n' || c === '\r')) throw new PythonSyntaxError('unterminated string (newline inside quotes)', at);
      if (c !== '\\') {
        out += c;
        this.pos++;
        continue;
      }
      const e = this.s[this.pos + 1];
      if (e === undefined) throw new PythonSyntaxError('unterminated string', at);
      if (raw) {
        // In a raw string a backslash stays, and only protects the next character from ending it.
        out += '\\' + e;
        this.pos += 2;
        continue;
      }
      this.pos += 2;
      if (e === '\n') continue;
      if (e === '\r') {
        if (this.s[this.pos] === '\n') this.pos++;
        continue;
      }
      const simple = SIMPLE_ESCAPES[e];
      if (simple !== undefined) {
        out += simple;
        continue;
      }
      if (e === 'x' || e === 'u' || e === 'U') {
        const len = e === 'x' ? 2 : e === 'u' ? 4 : 8;
        const hex = this.s.slice(this.pos, this.pos + len);
        if (!new RegExp(`^[0-9a-fA-F]{${len}}$`).test(hex)) throw new PythonSyntaxError(`bad \\${e} escape`, this.pos - 2);
        const cp = parseInt(hex, 16);
        if (cp > 0x10ffff) throw new PythonSyntaxError(`bad \\${e} escape`, this.pos - 2);
        out += String.fromCodePoint(cp);
        this.pos += len;
        continue;
      }
      if (e >= '0' && e <= '7') {
        const m = /^[0-7]{1,3}/.exec(this.s.slice(this.pos - 1))![0];
        out += String.fromCodePoint(parseInt(m, 8));
        this.pos += m.length - 1;
        continue;
      }
      // Python keeps unknown escapes as written ("\d" is backslash, d).
      out += '\\' + e;
    }
  }
}

/**
 * Arithmetic for the built-in `calculator` tool: a small recursive-descent parser over numbers,
 * + - * / % ^ (also **), parentheses, the constants pi and e, and a fixed table of Math functions.
 * Model output is untrusted: nothing is ever evaluated as JavaScript, and the only names that
 * resolve are the ones in the tables below.
 *
 * Precedence, lowest first: + -; * / %; unary + -; ^ (right-associative, so -2^2 = -4 and
 * 2^3^2 = 512, as in mathematics and Python's **).
 */
import { ChatGLMError } from '../errors.js';

const CONSTANTS: Record<string, number> = { pi: Math.PI, e: Math.E, tau: 2 * Math.PI };

const FUNCTIONS: Record<string, { arity: [number, number]; fn: (...xs: number[]) => number }> = {
  sqrt: { arity: [1, 1], fn: Math.sqrt },
  cbrt: { arity: [1, 1], fn: Math.cbrt },
  abs: { arity: [1, 1], fn: Math.abs },
  exp: { arity: [1, 1], fn: Math.exp },
  ln: { arity: [1, 1], fn: Math.log },
  log: { arity: [1, 2], fn: (x, base) => (base === undefined ? Math.log10(x) : Math.log(x) / Math.log(base)) },
  log10: { arity: [1, 1], fn: Math.log10 },
  log2: { arity: [1, 1], fn: Math.log2 },
  sin: { arity: [1, 1], fn: Math.sin },
  cos: { arity: [1, 1], fn: Math.cos },
  tan: { arity: [1, 1], fn: Math.tan },
  asin: { arity: [1, 1], fn: Math.asin },
  acos: { arity: [1, 1], fn: Math.acos },
  atan: { arity: [1, 1], fn: Math.atan },
  floor: { arity: [1, 1], fn: Math.floor },
  ceil: { arity: [1, 1], fn: Math.ceil },
  round: { arity: [1, 1], fn: Math.round },
  min: { arity: [1, 64], fn: Math.min },
  max: { arity: [1, 64], fn: Math.max },
  pow: { arity: [2, 2], fn: Math.pow },
};

/** Longest expression accepted (a guard against pathological input, not a practical limit). */
export const MAX_EXPRESSION_LENGTH = 2000;
const MAX_DEPTH = 100;

export function evaluateExpression(source: string): number {
  if (typeof source !== 'string') throw new ChatGLMError('BAD_ARGUMENT', 'calculator: the expression must be a string');
  if (source.length > MAX_EXPRESSION_LENGTH) throw new ChatGLMError('BAD_ARGUMENT', `calculator: the expression is longer than ${MAX_EXPRESSION_LENGTH} characters`);
  const p = new Parser(source);
  const v = p.parse();
  if (Number.isNaN(v)) throw new ChatGLMError('BAD_ARGUMENT', `calculator: ${source.trim()} is not a number (e.g. sqrt of a negative, 0/0)`);
  return v;
}

class Parser {
  private pos = 0;
  private depth = 0;

  constructor(private readonly src: string) {}

  parse(): number {
    this.ws();
    if (this.pos >= this.src.length) this.fail('the expression is empty');
    const v = this.sum();
    this.ws();
    if (this.pos < this.src.length) this.fail(`unexpected "${this.src[this.pos]}"`);
    return v;
  }

  private fail(message: string): never {
    throw new ChatGLMError('BAD_ARGUMENT', `calculator: ${message} at position ${this.pos} in ${JSON.stringify(this.src)}`);
  }

  private ws(): void {
    while (this.pos < this.src.length && /\s/.test(this.src[this.pos]!)) this.pos++;
  }

  private peek(s: string): boolean {
    this.ws();
    return this.src.startsWith(s, this.pos);
  }

  private sum(): number {
    let v = this.product();
    for (;;) {
      if (this.peek('+')) {
        this.pos++;
        v += this.product();
      } else if (this.peek('-')) {
        this.pos++;
        v -= this.product();
      } else return v;
    }
  }

  private product(): number {
    let v = this.unary();
    for (;;) {
      // `**` is power, handled below unary; a lone `*` is multiplication.
      if (this.peek('*') && !this.peek('**')) {
        this.pos++;
        v *= this.unary();
      } else if (this.peek('/')) {
        this.pos++;
        const d = this.unary();
        if (d === 0) this.fail('division by zero');
        v /= d;
      } else if (this.peek('%')) {
        this.pos++;
        const d = this.unary();
        if (d === 0) this.fail('modulo by zero');
        // Python's sign convention (the result takes the divisor's sign), as the model expects.
        v = v - d * Math.floor(v / d);
      } else return v;
    }
  }

  private unary(): number {
    if (this.peek('-')) {
      this.pos++;
      return -this.nested(() => this.unary());
    }
    if (this.peek('+')) {
      this.pos++;
      return this.nested(() => this.unary());
    }
    return this.power();
  }

  private power(): number {
    const base = this.atom();
    let op = 0;
    if (this.peek('^')) op = 1;
    else if (this.peek('**')) op = 2;
    if (op === 0) return base;
    this.pos += op;
    // Right-associative; the exponent may carry its own sign (2^-1).
    const exponent = this.nested(() => this.unary());
    return Math.pow(base, exponent);
  }

  private nested(f: () => number): number {
    if (++this.depth > MAX_DEPTH) this.fail('the expression is nested too deeply');
    try {
      return f();
    } finally {
      this.depth--;
    }
  }

  private atom(): number {
    this.ws();
    const c = this.src[this.pos];
    if (c === undefined) this.fail('the expression ends early');
    if (c === '(') {
      this.pos++;
      const v = this.nested(() => this.sum());
      if (!this.peek(')')) this.fail('missing ")"');
      this.pos++;
      return v;
    }
    const num = /^(?:\d[\d_]*(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?/.exec(this.src.slice(this.pos));
    if (num) {
      this.pos += num[0].length;
      return Number(num[0].replaceAll('_', ''));
    }
    const id = /^[A-Za-z_][A-Za-z0-9_]*/.exec(this.src.slice(this.pos));
    if (!id) this.fail(`unexpected "${c}"`);
    const name = id[0];
    const at = this.pos;
    this.pos += name.length;
    const lower = name.toLowerCase();
    if (this.peek('(')) {
      const f = Object.prototype.hasOwnProperty.call(FUNCTIONS, lower) ? FUNCTIONS[lower]! : undefined;
      if (f === undefined) {
        this.pos = at;
        this.fail(`unknown function "${name}" (known: ${Object.keys(FUNCTIONS).join(', ')})`);
      }
      this.pos++;
      const args: number[] = [];
      if (!this.peek(')')) {
        for (;;) {
          args.push(this.nested(() => this.sum()));
          if (this.peek(',')) {
            this.pos++;
            continue;
          }
          break;
        }
      }
      if (!this.peek(')')) this.fail('missing ")" after the function arguments');
      this.pos++;
      if (args.length < f.arity[0] || args.length > f.arity[1]) {
        this.fail(`${lower}() takes ${f.arity[0] === f.arity[1] ? f.arity[0] : `${f.arity[0]} to ${f.arity[1]}`} argument(s), got ${args.length}`);
      }
      return f.fn(...args);
    }
    if (Object.prototype.hasOwnProperty.call(CONSTANTS, lower)) return CONSTANTS[lower]!;
    this.pos = at;
    return this.fail(`unknown name "${name}" (constants: ${Object.keys(CONSTANTS).join(', ')})`);
  }
}

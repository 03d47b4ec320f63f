/**
 * JSON Schema to EBNF (xgrammar's dialect), for values written as JSON or as Python literals
 * (ChatGLM3's `tool_call(key=value, ...)`). Strings are always double-quoted with the escapes both
 * languages share (\" \\ \n \r \t \uXXXX), so what the grammar allows parses the same in both;
 * separators are always ", " and ": " (as Python's repr and json.dumps write them).
 *
 * Supported: `type` (one or a list), `enum`, `const`, `properties` with `required` (properties in
 * the schema's order; optional ones may be left out; no others are generated), free-form objects,
 * `items` with `minItems`/`maxItems`, integer `minimum`/`maximum`/`exclusive*`, number bounds that
 * are whole numbers >= 0, string `minLength`/`maxLength`/`pattern`, `anyOf`/`oneOf` (the branches are
 * alternatives: keep them disjoint for oneOf), `allOf` with one schema, `$ref` into `$defs` /
 * `definitions` (recursion included), `true`/`{}` for any value. `format` and annotations are
 * ignored. Anything else that restricts values is a GRAMMAR error rather than a silent mismatch.
 */
import { ChatGLMError } from '../errors.js';
import type { JsonValue } from '../chat/python-literal.js';
import { patternToEbnf, STRING_CHAR_CLASS } from './regex-to-ebnf.js';

export type LiteralDialect = 'json' | 'python';

type Schema = { [key: string]: JsonValue } | boolean;

const UNSUPPORTED = [
  'not',
  'if',
  'then',
  'else',
  'patternProperties',
  'dependentSchemas',
  'dependentRequired',
  'dependencies',
  'propertyNames',
  'contains',
  'uniqueItems',
  'prefixItems',
  'unevaluatedProperties',
  'unevaluatedItems',
  'multipleOf',
  'minProperties',
  'maxProperties',
] as const;

/** Longest run of digits in a number the grammar writes (beyond 2^53 JSON numbers lose precision). */
const MAX_DIGITS = 15;

/** An EBNF string literal for `s`. */
export function ebnfLiteral(s: string): string {
  return JSON.stringify(s);
}

/** A JSON value written in `dialect` (Python: True/False/None, otherwise JSON's spelling). */
export function renderLiteral(v: JsonValue, dialect: LiteralDialect): string {
  if (dialect === 'json') return JSON.stringify(v);
  if (v === null) return 'None';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'number' || typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map((x) => renderLiteral(x, dialect)).join(', ')}]`;
  return `{${Object.entries(v)
    .map(([k, x]) => `${JSON.stringify(k)}: ${renderLiteral(x, dialect)}`)
    .join(', ')}}`;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

function fail(where: string, why: string): never {
  throw new ChatGLMError('GRAMMAR', `JSON schema ${where}: ${why}`);
}

function isObject(v: unknown): v is { [key: string]: JsonValue } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Collects rules; several schemas (one per tool) can share one builder and one grammar. */
export class GrammarBuilder {
  private readonly rules: string[] = [];
  private readonly names = new Set<string>();
  private readonly byBody = new Map<string, string>();
  private readonly refs = new Map<string, string>();
  private root: Schema = true;

  constructor(readonly dialect: LiteralDialect) {
    const d = dialect;
    // One fixed spelling of the separators (Python's repr and json.dumps write ", " and ": "):
    // optional whitespace would make many tokens context-dependent and the mask slow.
    this.define('sp', '" "?');
    this.define('comma', '", "');
    this.define('colon', '": "');
    // A string as runs of plain characters between escapes: written as `char*` over a rule with
    // two alternatives, every multi-character token would need a runtime check (~100 ms a token
    // at 65k ids instead of ~0.05 ms).
    const escape = '"\\\\" (["\\\\nrt] | "u" [0-9a-cA-Ce-fE-F] [0-9a-fA-F]{3})';
    this.define('char', `${STRING_CHAR_CLASS} | ${escape}`);
    this.define('string', `"\\"" ${STRING_CHAR_CLASS}* (${escape} ${STRING_CHAR_CLASS}*)* "\\""`);
    // Digit runs are bounded so that a model cannot write digits forever (beyond 15 digits a
    // JSON number has lost its precision anyway).
    this.define('integer', `"-"? ("0" | [1-9] [0-9]{0,${MAX_DIGITS - 1}})`);
    this.define('number', `integer ("." [0-9]{1,${MAX_DIGITS}})? ([eE] [-+]? [0-9]{1,3})?`);
    this.define('boolean', d === 'json' ? '"true" | "false"' : '"True" | "False"');
    this.define('null', d === 'json' ? '"null"' : '"None"');
    this.define('value', 'object | array | string | number | boolean | null');
    this.define('object', '"{" (string colon value (comma string colon value)*)? "}"');
    this.define('array', '"[" (value (comma value)*)? "]"');
  }

  /** Adds a rule under exactly `name` (which must be new). */
  define(name: string, body: string): string {
    if (this.names.has(name)) throw new Error(`grammar rule ${name} defined twice`);
    this.names.add(name);
    this.rules.push(`${name} ::= ${body}`);
    return name;
  }

  /** A rule for `body` named after `hint` (an identical body reuses its rule). */
  rule(hint: string, body: string): string {
    const known = this.byBody.get(body);
    if (known) return known;
    const name = this.fresh(hint);
    this.byBody.set(body, name);
    return this.define(name, body);
  }

  private fresh(hint: string): string {
    const base = hint.replace(/[^A-Za-z0-9_]/g, '_').replace(/^([^A-Za-z_])/, '_$1').slice(0, 40) || 'r';
    let name = base;
    for (let i = 2; this.names.has(name); i++) name = `${base}_${i}`;
    return name;
  }

  /**
   * The rules with every rule name prefixed (to merge two builders' rules into one grammar);
   * string literals and character classes are left alone.
   */
  ruleLines(prefix = ''): string[] {
    if (prefix === '') return [...this.rules];
    return this.rules.map((line) => prefixNames(line, this.names, prefix));
  }

  /** An expression with this builder's rule names prefixed as ruleLines(prefix) does. */
  prefixed(expr: string, prefix: string): string {
    return prefixNames(expr, this.names, prefix);
  }

  /** The grammar with `root ::= rootExpr`. */
  toEbnf(rootExpr: string): string {
    return [`root ::= ${rootExpr}`, ...this.rules].join('\n');
  }

  /** An expression for a value of `schema` (its `$ref`s resolve against `schema` itself). */
  valueOf(schema: JsonValue, hint = 'v'): string {
    this.root = asSchema(schema, '(root)');
    this.refs.clear();
    return this.value(this.root, hint, '#');
  }

  /**
   * Keyword arguments `k=v, ...` for an object schema (ChatGLM3's tool_call): the same properties,
   * required and optional, in the schema's order.
   */
  kwargsOf(schema: JsonValue, hint = 'args'): string {
    this.root = asSchema(schema, '(root)');
    this.refs.clear();
    const s = this.resolve(this.root, '#');
    if (s === true || (isObject(s) && s['properties'] === undefined)) return '""';
    if (s === false) fail('#', 'false allows no value');
    const props = isObject(s['properties']) ? s['properties'] : {};
    const required = new Set(Array.isArray(s['required']) ? s['required'].filter((x): x is string => typeof x === 'string') : []);
    const items = Object.entries(props).map(([k, sub]) => {
      if (!IDENTIFIER.test(k)) fail(`#/properties/${k}`, 'a tool_call keyword argument must be a Python identifier');
      return { body: `${ebnfLiteral(`${k}=`)} ${this.value(asSchema(sub, `#/properties/${k}`), `${hint}_${k}`, `#/properties/${k}`)}`, required: required.has(k) };
    });
    for (const r of required) if (!(r in props)) fail('#', `required property "${r}" is not in properties`);
    return this.sequence(items, hint);
  }

  /** Items in order, separated by ", "; optional ones may be left out. */
  private sequence(items: { body: string; required: boolean }[], hint: string): string {
    if (items.length === 0) return '""';
    // tail[i]: items i.. each preceded by a separator; head[i]: items i.., the first one without.
    const tail: string[] = new Array<string>(items.length + 1);
    const head: string[] = new Array<string>(items.length + 1);
    tail[items.length] = '""';
    head[items.length] = '""';
    for (let i = items.length - 1; i >= 0; i--) {
      const it = items[i]!;
      const withSep = `comma ${it.body} ${tail[i + 1]}`;
      tail[i] = this.rule(`${hint}_t${i}`, it.required ? withSep : `(${withSep}) | ${tail[i + 1]}`);
      const first = `${it.body} ${tail[i + 1]}`;
      head[i] = this.rule(`${hint}_h${i}`, it.required ? first : `(${first}) | ${head[i + 1]}`);
    }
    return head[0]!;
  }

  private resolve(s: Schema, where: string): Schema {
    let cur = s;
    for (let depth = 0; isObject(cur) && typeof cur['$ref'] === 'string'; depth++) {
      if (depth > 32) fail(where, '$ref chain too long');
      cur = this.lookup(cur['$ref'], where);
    }
    return cur;
  }

  private lookup(ref: string, where: string): Schema {
    if (!ref.startsWith('#')) fail(where, `$ref "${ref}": only references inside the schema (#/...) are supported`);
    let cur: JsonValue = this.root as JsonValue;
    for (const raw of ref.slice(1).split('/').slice(1)) {
      const key = decodeURIComponent(raw).replaceAll('~1', '/').replaceAll('~0', '~');
      if (!isObject(cur) || !(key in cur)) fail(where, `$ref "${ref}" does not point into the schema`);
      cur = cur[key]!;
    }
    return asSchema(cur, ref);
  }

  private value(s: Schema, hint: string, where: string): string {
    if (s === true) return 'value';
    if (s === false) fail(where, 'false allows no value');
    if (typeof s['$ref'] === 'string') {
      const ref = s['$ref'];
      const known = this.refs.get(ref);
      if (known) return known;
      // Named before its body is built, so a recursive reference finds it.
      const name = this.fresh(`ref_${ref.split('/').pop() ?? 'x'}`);
      this.refs.set(ref, name);
      this.names.add(name);
      const body = this.value(this.lookup(ref, where), `${hint}_${name}`, ref);
      this.rules.push(`${name} ::= ${body}`);
      return name;
    }
    for (const k of UNSUPPORTED) if (s[k] !== undefined) fail(where, `"${k}" is not supported by constrained decoding`);
    if (s['const'] !== undefined) return ebnfLiteral(renderLiteral(s['const'], this.dialect));
    if (Array.isArray(s['enum'])) {
      if (s['enum'].length === 0) fail(where, 'an empty enum allows no value');
      return this.rule(`${hint}_enum`, s['enum'].map((v) => ebnfLiteral(renderLiteral(v, this.dialect))).join(' | '));
    }
    const alts = Array.isArray(s['anyOf']) ? s['anyOf'] : Array.isArray(s['oneOf']) ? s['oneOf'] : undefined;
    if (alts !== undefined) {
      if (alts.length === 0) fail(where, 'anyOf/oneOf with no schema');
      return this.rule(`${hint}_any`, alts.map((a, i) => this.value(asSchema(a, `${where}/anyOf/${i}`), `${hint}_${i}`, `${where}/anyOf/${i}`)).join(' | '));
    }
    if (Array.isArray(s['allOf'])) {
      if (s['allOf'].length !== 1) fail(where, 'allOf is supported with one schema only');
      return this.value(asSchema(s['allOf'][0]!, `${where}/allOf/0`), hint, `${where}/allOf/0`);
    }
    let types: string[];
    if (typeof s['type'] === 'string') types = [s['type']];
    else if (Array.isArray(s['type'])) types = s['type'].filter((t): t is string => typeof t === 'string');
    else if (s['properties'] !== undefined || s['additionalProperties'] !== undefined || s['required'] !== undefined) types = ['object'];
    else if (s['items'] !== undefined || s['minItems'] !== undefined || s['maxItems'] !== undefined) types = ['array'];
    else if (s['minLength'] !== undefined || s['maxLength'] !== undefined || s['pattern'] !== undefined) types = ['string'];
    else return 'value';
    const exprs = types.map((t) => this.typed(s, t, types.length > 1 ? `${hint}_${t}` : hint, where));
    return exprs.length === 1 ? exprs[0]! : this.rule(`${hint}_types`, exprs.join(' | '));
  }

  private typed(s: { [key: string]: JsonValue }, type: string, hint: string, where: string): string {
    switch (type) {
      case 'string':
        return this.string(s, hint, where);
      case 'integer':
        return this.integer(s, hint, where);
      case 'number':
        return this.number(s, hint, where);
      case 'boolean':
        return 'boolean';
      case 'null':
        return 'null';
      case 'array':
        return this.array(s, hint, where);
      case 'object':
        return this.object(s, hint, where);
    }
    return fail(where, `unknown type "${type}"`);
  }

  private string(s: { [key: string]: JsonValue }, hint: string, where: string): string {
    const min = nonNegInt(s['minLength'], 'minLength', where) ?? 0;
    const max = nonNegInt(s['maxLength'], 'maxLength', where);
    if (max !== undefined && max < min) fail(where, 'maxLength < minLength');
    if (typeof s['pattern'] === 'string') {
      if (s['minLength'] !== undefined || s['maxLength'] !== undefined) fail(where, 'pattern together with minLength/maxLength is not supported');
      return this.rule(`${hint}_str`, `"\\"" ${patternToEbnf(s['pattern'])} "\\""`);
    }
    if (min === 0 && max === undefined) return 'string';
    return this.rule(`${hint}_str`, `"\\"" char{${min},${max ?? ''}} "\\""`);
  }

  private bounds(s: { [key: string]: JsonValue }, where: string): { lo: number | undefined; hi: number | undefined; exLo: boolean; exHi: boolean } {
    const num = (k: string): number | undefined => {
      const v = s[k];
      if (v === undefined) return undefined;
      if (typeof v !== 'number' || !Number.isFinite(v)) fail(where, `${k} must be a number`);
      return v;
    };
    let lo = num('minimum');
    let hi = num('maximum');
    let exLo = false;
    let exHi = false;
    const xl = num('exclusiveMinimum');
    const xh = num('exclusiveMaximum');
    if (xl !== undefined && (lo === undefined || xl >= lo)) {
      lo = xl;
      exLo = true;
    }
    if (xh !== undefined && (hi === undefined || xh <= hi)) {
      hi = xh;
      exHi = true;
    }
    return { lo, hi, exLo, exHi };
  }

  private integer(s: { [key: string]: JsonValue }, hint: string, where: string): string {
    const b = this.bounds(s, where);
    if (b.lo === undefined && b.hi === undefined) return 'integer';
    const lo = b.lo === undefined ? undefined : b.exLo ? Math.floor(b.lo) + 1 : Math.ceil(b.lo);
    const hi = b.hi === undefined ? undefined : b.exHi ? Math.ceil(b.hi) - 1 : Math.floor(b.hi);
    if (lo !== undefined && hi !== undefined && hi < lo) fail(where, 'no integer lies between minimum and maximum');
    for (const v of [lo, hi]) if (v !== undefined && Math.abs(v) >= 10 ** MAX_DIGITS) fail(where, `integer bounds beyond ${MAX_DIGITS} digits are not supported`);
    return this.rule(`${hint}_int`, intRange(lo, hi));
  }

  private number(s: { [key: string]: JsonValue }, hint: string, where: string): string {
    const b = this.bounds(s, where);
    if (b.lo === undefined && b.hi === undefined) return 'number';
    const whole = (v: number | undefined): boolean => v === undefined || (Number.isInteger(v) && v >= 0 && v < 10 ** MAX_DIGITS);
    if (b.exLo || b.exHi || !whole(b.lo) || !whole(b.hi) || b.lo === undefined) {
      fail(where, 'number bounds are supported as inclusive whole numbers >= 0 with a minimum (use type "integer" or drop the bound)');
    }
    const frac = `("." [0-9]{1,${MAX_DIGITS}})?`;
    if (b.hi === undefined) return this.rule(`${hint}_num`, `(${intRange(b.lo, undefined)}) ${frac}`);
    const zeros = `("." "0"{1,${MAX_DIGITS}})?`;
    const below = b.hi > b.lo ? `(${intRange(b.lo, b.hi - 1)}) ${frac} | ` : '';
    return this.rule(`${hint}_num`, `${below}${ebnfLiteral(String(b.hi))} ${zeros}`);
  }

  private array(s: { [key: string]: JsonValue }, hint: string, where: string): string {
    if (Array.isArray(s['items'])) fail(where, 'tuple-style "items" (an array) is not supported');
    const item = s['items'] === undefined ? 'value' : this.value(asSchema(s['items'], `${where}/items`), `${hint}_item`, `${where}/items`);
    const min = nonNegInt(s['minItems'], 'minItems', where) ?? 0;
    const max = nonNegInt(s['maxItems'], 'maxItems', where);
    if (max !== undefined && max < min) fail(where, 'maxItems < minItems');
    if (max === 0) return ebnfLiteral('[]');
    const more = `(comma ${item}){${Math.max(0, min - 1)},${max === undefined ? '' : max - 1}}`;
    const list = `${item} ${more}`;
    return this.rule(`${hint}_arr`, `"[" ${min === 0 ? `(${list})?` : list} "]"`);
  }

  private object(s: { [key: string]: JsonValue }, hint: string, where: string): string {
    const props = s['properties'];
    if (props === undefined) {
      const extra = s['additionalProperties'];
      if (extra === undefined || extra === true) return 'object';
      if (extra === false) return ebnfLiteral('{}');
      const v = this.value(asSchema(extra, `${where}/additionalProperties`), `${hint}_val`, `${where}/additionalProperties`);
      return this.rule(`${hint}_map`, `"{" (string colon ${v} (comma string colon ${v})*)? "}"`);
    }
    if (!isObject(props)) fail(where, 'properties must be an object');
    const required = new Set(Array.isArray(s['required']) ? s['required'].filter((x): x is string => typeof x === 'string') : []);
    for (const r of required) if (!(r in props)) fail(where, `required property "${r}" is not in properties`);
    const items = Object.entries(props).map(([k, sub]) => ({
      body: `${ebnfLiteral(JSON.stringify(k))} colon ${this.value(asSchema(sub, `${where}/properties/${k}`), `${hint}_${k}`, `${where}/properties/${k}`)}`,
      required: required.has(k),
    }));
    return this.rule(`${hint}_obj`, `"{" ${this.sequence(items, `${hint}_p`)} "}"`);
  }
}

function prefixNames(text: string, names: ReadonlySet<string>, prefix: string): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === '"' || c === '[') {
      const close = c === '"' ? '"' : ']';
      let j = i + 1;
      while (j < text.length && text[j] !== close) j += text[j] === '\\' ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j + 1;
    } else if (/[A-Za-z_]/.test(c)) {
      let j = i;
      while (j < text.length && /[A-Za-z0-9_]/.test(text[j]!)) j++;
      const word = text.slice(i, j);
      out += names.has(word) ? prefix + word : word;
      i = j;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

function asSchema(v: JsonValue, where: string): Schema {
  if (typeof v === 'boolean' || isObject(v)) return v;
  return fail(where, 'a schema must be an object or a boolean');
}

function nonNegInt(v: JsonValue | undefined, name: string, where: string): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) fail(where, `${name} must be an integer >= 0`);
  return v;
}

// ---------------------------------------------------------------- integer ranges

/** Decimal integers in [lo, hi] (either end open), no leading zeros, "-0" never. */
export function intRange(lo: number | undefined, hi: number | undefined): string {
  const alts: string[] = [];
  // Negative part: "-" followed by magnitudes in [max(1, -hi), -lo].
  if (lo === undefined || lo < 0) {
    const magLo = hi === undefined || hi >= 0 ? 1 : -hi;
    const magHi = lo === undefined ? undefined : -lo;
    if (magHi === undefined || magLo <= magHi) alts.push(`"-" (${natRange(magLo, magHi)})`);
  }
  if (hi === undefined || hi >= 0) alts.push(natRange(Math.max(0, lo ?? 0), hi));
  return alts.join(' | ');
}

/** Naturals in [lo, hi] (hi open: up to MAX_DIGITS digits). */
function natRange(lo: number, hi: number | undefined): string {
  const alts: string[] = [];
  const loLen = String(lo).length;
  const hiLen = hi === undefined ? loLen : String(hi).length;
  if (hi === undefined && loLen < MAX_DIGITS) alts.push(`[1-9] [0-9]{${loLen},${MAX_DIGITS - 1}}`);
  for (let len = loLen; len <= hiLen; len++) {
    const a = len === loLen ? lo : 10 ** (len - 1);
    const b = hi !== undefined && len === hiLen ? hi : 10 ** len - 1;
    if (a > b) continue;
    if (len === 1) {
      alts.push(a === b ? `"${a}"` : `[${a}-${b}]`);
      continue;
    }
    alts.push(sameLength(String(a), String(b)));
  }
  return alts.length === 1 ? alts[0]! : alts.map((x) => `(${x})`).join(' | ');
}

/** Digit strings of one length between a and b (inclusive, as strings of equal length). */
function sameLength(a: string, b: string): string {
  if (a === b) return ebnfLiteral(a);
  if (/^0+$/.test(a) && /^9+$/.test(b)) return `[0-9]{${a.length}}`;
  if (a.length === 1) return `[${a}-${b}]`;
  if (a[0] === b[0]) return `${ebnfLiteral(a[0]!)} (${sameLength(a.slice(1), b.slice(1))})`;
  const rest = a.length - 1;
  const alts = [`${ebnfLiteral(a[0]!)} (${sameLength(a.slice(1), '9'.repeat(rest))})`];
  const d0 = Number(a[0]) + 1;
  const d1 = Number(b[0]) - 1;
  if (d0 <= d1) alts.push(`[${d0}-${d1}] [0-9]{${rest}}`);
  alts.push(`${ebnfLiteral(b[0]!)} (${sameLength('0'.repeat(rest), b.slice(1))})`);
  return alts.map((x) => `(${x})`).join(' | ');
}

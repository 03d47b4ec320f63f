/**
 * The grammar of a whole reply segment for constrained decoding, per chat family:
 *
 *   root ::= sp ( "\n" text | name_1 "\n" call_1 | ... )
 *
 * `sp` is the optional space SentencePiece's dummy prefix puts at the start of an encoded piece
 * (the metadata line and the content are encoded separately in ChatGLM3's template). A call names
 * a declared tool; its arguments follow the tool's `parameters` schema, as ChatGLM3's
 * ```python\ntool_call(key=value, ...)\n``` or GLM-4's JSON object. `text` is free (the constraint
 * lets go once the newline is written) or, with a response schema, a JSON value. ChatGLM2 has no
 * metadata line and no tool calls: its reply is the JSON value itself.
 */
import { ChatGLMError } from '../errors.js';
import { GrammarBuilder, ebnfLiteral } from '../grammar/schema-to-ebnf.js';
import type { JsonValue } from './python-literal.js';

export interface ToolSpec {
  name: string;
  /** The JSON Schema of the arguments (undefined: any object). */
  parameters: JsonValue | undefined;
}

/** What the grammar needs from the family (families/*.ts entries have these fields). */
export interface ReplyGrammarFamily {
  readonly name: string;
  readonly displayName: string;
  /** How a tool call is written: a fenced Python call, a JSON object, or not at all. */
  readonly toolCalls: 'python' | 'json' | 'none';
}

export interface ReplyGrammarOptions {
  family: ReplyGrammarFamily;
  /** Declared tools: a call must name one of them, with arguments that satisfy its schema. */
  tools?: readonly ToolSpec[];
  /** The reply must start with a tool call (OpenAI tool_choice "required" or a named tool). */
  requireToolCall?: boolean;
  /** The text of the reply must be a JSON value of this schema (true: any JSON object). */
  responseSchema?: JsonValue;
  /**
   * Tool schemas that cannot be compiled fall back to "any object" instead of failing (for
   * constraints that are on by default). Default false.
   */
  lenientTools?: boolean;
}

export interface ReplyGrammar {
  ebnf: string;
  /** Text segments are free once their first newline is written. */
  freeText: boolean;
}

/**
 * Tool definitions as requests carry them: an OpenAI list of {type: "function", function}, a list
 * of bare function objects, or an object keyed by name (ChatGLM3's composite demo).
 */
export function toolSpecs(tools: JsonValue): ToolSpec[] {
  const list = Array.isArray(tools) ? tools : tools !== null && typeof tools === 'object' ? Object.entries(tools).map(([k, v]) => withName(v, k)) : [];
  const out: ToolSpec[] = [];
  for (const t of list) {
    const fn = isObj(t) && isObj(t['function']) ? t['function'] : t;
    if (!isObj(fn) || typeof fn['name'] !== 'string' || fn['name'] === '') continue;
    out.push({ name: fn['name'], parameters: fn['parameters'] });
  }
  return out;
}

function withName(v: JsonValue, name: string): JsonValue {
  return isObj(v) && v['name'] === undefined ? { ...v, name } : v;
}

function isObj(v: unknown): v is { [key: string]: JsonValue } {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function replyGrammar(o: ReplyGrammarOptions): ReplyGrammar {
  const calls = o.family.toolCalls;
  const dialect = calls === 'python' ? 'python' : 'json';
  const b = new GrammarBuilder(dialect);
  const json = dialect === 'json' ? b : new GrammarBuilder('json');
  const jsonExpr = o.responseSchema === undefined ? undefined : json.valueOf(o.responseSchema, 'reply');
  const response = jsonExpr === undefined || json === b ? jsonExpr : json.prefixed(jsonExpr, 'j_');
  const tools = calls === 'none' ? [] : (o.tools ?? []);
  if (o.requireToolCall && tools.length === 0) {
    throw new ChatGLMError('BAD_ARGUMENT', `a tool call is required but no tools are declared${calls === 'none' ? ` (${o.family.displayName} has no tool calls)` : ''}; declare tools or drop tool_choice`);
  }
  if (calls === 'none') {
    if (response === undefined) throw new ChatGLMError('BAD_ARGUMENT', `${o.family.name}: only response_format can be constrained`);
    return { ebnf: b.toEbnf(`sp ${response}`), freeText: false };
  }
  const branches: string[] = [];
  if (!o.requireToolCall) branches.push(response === undefined ? `"\\n" free` : `"\\n" sp ${response}`);
  if (response === undefined) b.define('free', '[^]*');
  const seen = new Set<string>();
  tools.forEach((t, i) => {
    if (seen.has(t.name)) return;
    seen.add(t.name);
    const hint = `t${i}`;
    let body: string;
    try {
      body = callBody(b, calls, t.parameters ?? {}, hint);
    } catch (err) {
      if (!(o.lenientTools && err instanceof ChatGLMError && err.code === 'GRAMMAR')) throw err;
      body = callBody(b, calls, {}, hint);
    }
    branches.push(`${ebnfLiteral(`${t.name}\n`)} ${body}`);
  });
  const rules = b.toEbnf(`sp (${branches.join(' | ')})`);
  return { ebnf: json === b ? rules : [rules, ...json.ruleLines('j_')].join('\n'), freeText: response === undefined };
}

function callBody(b: GrammarBuilder, calls: 'python' | 'json', schema: JsonValue, hint: string): string {
  if (calls === 'json') return `sp ${b.valueOf(schema, hint)}`;
  const kwargs = isObj(schema) && schema['properties'] === undefined && schema['$ref'] === undefined ? anyKwargs(b) : b.kwargsOf(schema, hint);
  return `sp ${ebnfLiteral('```python\ntool_call(')} ${kwargs} ${ebnfLiteral(')\n```')}`;
}

function anyKwargs(b: GrammarBuilder): string {
  return b.rule('any_kwargs', '([A-Za-z_] [A-Za-z0-9_]* "=" value (comma [A-Za-z_] [A-Za-z0-9_]* "=" value)*)?');
}

/**
 * Built-in tools that need no network: ChatGLM3's `random_number_generator` (same arguments as
 * its tool_registry.py: `seed` and an inclusive `range` pair), a `calculator` over our own safe
 * expression parser, and `get_current_time` for an IANA time zone.
 */
import { ChatGLMError } from '../errors.js';
import { createRng } from '../generate/rng.js';
import { evaluateExpression } from './calculator.js';
import { defineTool, type AnyTool, type Tool } from './tool.js';

export const BUILTIN_TOOL_NAMES = ['random_number_generator', 'calculator', 'get_current_time'] as const;
export type BuiltinToolName = (typeof BUILTIN_TOOL_NAMES)[number];

export interface BuiltinToolOptions {
  /** The clock get_current_time reads (tests pass a fixed one). Default: the system clock. */
  now?: () => Date;
}

export function randomNumberGeneratorTool(): Tool<{ seed: number; range: [number, number] }> {
  return defineTool<{ seed: number; range: [number, number] }>({
    name: 'random_number_generator',
    description: 'Generates a random integer x with range[0] <= x <= range[1]; the same seed gives the same number',
    parameters: {
      type: 'object',
      properties: {
        seed: { type: 'integer', description: 'The random seed used by the generator' },
        range: { type: 'array', items: { type: 'integer' }, minItems: 2, maxItems: 2, description: 'The range of the generated numbers' },
      },
      required: ['seed', 'range'],
    },
    run({ seed, range }) {
      const [lo, hi] = range;
      if (lo > hi) throw new ChatGLMError('BAD_ARGUMENT', `range [${lo}, ${hi}] is empty: the first number must not exceed the second`);
      const span = hi - lo + 1;
      if (!Number.isSafeInteger(span)) throw new ChatGLMError('BAD_ARGUMENT', `range [${lo}, ${hi}] is too wide`);
      return lo + Math.floor(createRng(seed).next() * span);
    },
  });
}

export function calculatorTool(): Tool<{ expression: string }> {
  return defineTool<{ expression: string }>({
    name: 'calculator',
    description: 'Evaluates an arithmetic expression: + - * / % ^, parentheses, pi, e, sqrt, ln, log, sin, cos, tan, abs, floor, ceil, round, min, max',
    parameters: {
      type: 'object',
      properties: { expression: { type: 'string', description: 'The expression, e.g. "(4821 + 377) * 2"' } },
      required: ['expression'],
    },
    run({ expression }) {
      return evaluateExpression(expression);
    },
  });
}

export function currentTimeTool(options: BuiltinToolOptions = {}): Tool<{ timezone?: string }> {
  const now = options.now ?? (() => new Date());
  return defineTool<{ timezone?: string }>({
    name: 'get_current_time',
    description: 'Gets the current date and time in a time zone',
    parameters: {
      type: 'object',
      properties: { timezone: { type: 'string', description: 'An IANA time zone such as "Europe/Paris" or "Asia/Shanghai" (default "UTC")' } },
    },
    run({ timezone }) {
      return timeIn(now(), timezone ?? 'UTC');
    },
  });
}

/** The wall-clock time at `instant` in `timeZone`: ISO 8601 with the zone's UTC offset. */
export function timeIn(instant: Date, timeZone: string): { timezone: string; datetime: string; weekday: string; utc_offset: string } {
  let parts: Intl.DateTimeFormatPart[];
  try {
    parts = new Intl.DateTimeFormat('en-US', {
      timeZone,
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
      hourCycle: 'h23',
      weekday: 'long',
      timeZoneName: 'longOffset',
    }).formatToParts(instant);
  } catch {
    throw new ChatGLMError('BAD_ARGUMENT', `unknown time zone ${JSON.stringify(timeZone)}; use an IANA name such as "Europe/Paris" or "UTC"`);
  }
  const get = (type: Intl.DateTimeFormatPartTypes): string => parts.find((p) => p.type === type)?.value ?? '';
  // "GMT+05:30" -> "+05:30"; plain "GMT" is UTC itself.
  const gmt = get('timeZoneName');
  const offset = gmt === 'GMT' ? '+00:00' : gmt.replace(/^GMT/, '');
  const datetime = `${get('year')}-${get('month')}-${get('day')}T${get('hour')}:${get('minute')}:${get('second')}${offset}`;
  return { timezone: timeZone, datetime, weekday: get('weekday'), utc_offset: offset };
}

/** Built-in tools by name ("random_number_generator,calculator"): unknown names are an error. */
export function builtinTools(names: readonly string[], options: BuiltinToolOptions = {}): AnyTool[] {
  return names.map((raw) => {
    const name = raw.trim();
    switch (name) {
      case 'random_number_generator':
        return randomNumberGeneratorTool();
      case 'calculator':
        return calculatorTool();
      case 'get_current_time':
        return currentTimeTool(options);
      default:
        throw new ChatGLMError('BAD_ARGUMENT', `unknown built-in tool "${name}" (built-ins: ${BUILTIN_TOOL_NAMES.join(', ')})`);
    }
  });
}

/**
 * The constrained-decoding evaluation set for the bundled demo model: questions of the kinds it was
 * trained on (weather, random numbers, arithmetic) and some it was not (flights, stocks, alarms),
 * offered through tools whose names and parameter names never occur in its training data (it only
 * knows get_current_weather(location), random_number(low, high), calculator(expression)). Also a
 * response_format schema with its prompts. Deterministic: the same list every run.
 */
import type { ChatCompletionTool } from '../../src/api.js';

export interface ToolPrompt {
  question: string;
  tools: ChatCompletionTool[];
  /** The tool a person would call. */
  expected: string;
}

const fn = (name: string, description: string, parameters: Record<string, unknown>): ChatCompletionTool => ({
  type: 'function',
  function: { name, description, parameters: parameters as ChatCompletionTool['function']['parameters'] },
});

export const EVAL_TOOLS = {
  climate: fn('lookup_city_climate', 'Get the current weather conditions of a city', {
    type: 'object',
    properties: { city_name: { type: 'string', maxLength: 40 }, unit: { enum: ['celsius', 'fahrenheit'] } },
    required: ['city_name'],
  }),
  rng: fn('random_number_generator', 'Draw a random integer inside a range', {
    type: 'object',
    properties: { range: { type: 'array', items: { type: 'integer', minimum: -100000, maximum: 100000 }, minItems: 2, maxItems: 2 } },
    required: ['range'],
  }),
  math: fn('evaluate_formula', 'Evaluate an arithmetic formula', {
    type: 'object',
    properties: { formula: { type: 'string', pattern: '^[0-9 +*/().-]{1,60}$' } },
    required: ['formula'],
  }),
  flights: fn('search_flights', 'Search flights between two cities on a date', {
    type: 'object',
    properties: {
      origin: { type: 'string', maxLength: 40 },
      destination: { type: 'string', maxLength: 40 },
      date: { type: 'string', pattern: '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' },
    },
    required: ['origin', 'destination', 'date'],
  }),
  stock: fn('get_stock_quote', 'Latest price of a stock', {
    type: 'object',
    properties: { ticker: { type: 'string', pattern: '^[A-Z]{1,5}$' } },
    required: ['ticker'],
  }),
  alarm: fn('set_alarm_clock', 'Set an alarm', {
    type: 'object',
    properties: { hour: { type: 'integer', minimum: 0, maximum: 23 }, minute: { type: 'integer', minimum: 0, maximum: 59 } },
    required: ['hour', 'minute'],
  }),
} as const;

type Key = keyof typeof EVAL_TOOLS;

const QUESTIONS: [Key, string][] = [
  ['climate', "What's the weather like in Lisbon?"],
  ['climate', 'How is the weather in Nairobi today?'],
  ['climate', 'Tell me the current weather in Quito.'],
  ['climate', 'Is it raining in Bergen right now?'],
  ['climate', 'weather in Porto Novo'],
  ['climate', 'Can you check the weather in Tromso for me?'],
  ['climate', '成都天气怎么样？'],
  ['climate', '今天拉萨的天气如何？'],
  ['climate', 'Do I need an umbrella in Galway today?'],
  ['climate', 'How hot is it in Darwin now?'],
  ['rng', 'Give me a random number between 3 and 99.'],
  ['rng', 'Pick a random number from 10 to 250.'],
  ['rng', 'Generate a random integer between 1 and 6.'],
  ['rng', 'I need a random number in the range 500 to 9000.'],
  ['rng', 'random number from 42 to 4242'],
  ['rng', '给我一个1到100之间的随机数。'],
  ['rng', 'Can you choose a number between 7 and 77 at random?'],
  ['rng', 'Roll a random number between 0 and 1000, please.'],
  ['math', 'What is 37 * 41?'],
  ['math', 'Calculate 1234 + 5678.'],
  ['math', 'Compute (12 + 30) * 7 for me.'],
  ['math', 'How much is 999 - 123?'],
  ['math', 'what is 88 / 8'],
  ['math', '帮我算一下 256 * 16。'],
  ['math', 'Please work out 15 * 15 + 1.'],
  ['math', '2048 / 32 = ?'],
  ['flights', 'Find flights from Paris to Berlin on 2024-05-01.'],
  ['flights', 'Are there flights from Tokyo to Osaka on 2025-01-15?'],
  ['flights', 'Search a flight Madrid to Rome, date 2024-12-24.'],
  ['flights', 'I want to fly from Cairo to Dubai on 2024-07-04.'],
  ['flights', '查一下2024-10-01从北京到上海的航班。'],
  ['flights', 'Book me a flight from Oslo to Riga on 2025-03-09.'],
  ['stock', "What's Apple's stock price (AAPL)?"],
  ['stock', 'Get me the latest quote for MSFT.'],
  ['stock', 'How is TSLA trading today?'],
  ['stock', 'Price of NVDA please.'],
  ['stock', '查询一下IBM的股价。'],
  ['alarm', 'Set an alarm for 7:30.'],
  ['alarm', 'Wake me up at 6:15 tomorrow.'],
  ['alarm', 'Please set an alarm at 22:05.'],
  ['alarm', '帮我定一个8点20的闹钟。'],
  ['alarm', 'Alarm at 5:45 please.'],
  ['climate', 'What is the temperature in Reykjavik?'],
  ['rng', 'Pick any number between 2 and 12 at random.'],
  ['math', 'Can you calculate 640 / 16?'],
  ['flights', 'Flights from Lima to Bogota on 2024-09-30?'],
  ['stock', 'Quote for AMZN.'],
  ['alarm', 'Set my alarm to 9:00.'],
  ['climate', 'Could you look up the weather for Hobart?'],
  ['rng', 'I need a random integer from 100 to 200.'],
];

/** 50 prompts; each offers its expected tool and one or two others, in a varying order. */
export function toolPrompts(): ToolPrompt[] {
  const keys = Object.keys(EVAL_TOOLS) as Key[];
  return QUESTIONS.map(([expected, question], i) => {
    const others = keys.filter((k) => k !== expected);
    const extra = [others[i % others.length]!, ...(i % 3 === 0 ? [others[(i + 2) % others.length]!] : [])];
    const set = [expected, ...extra];
    // Rotate so the expected tool is not always first.
    const rotated = set.map((_, k) => set[(k + i) % set.length]!);
    return { question, tools: rotated.map((k) => EVAL_TOOLS[k]), expected: EVAL_TOOLS[expected].function.name };
  });
}

/** The response_format schema of the JSON evaluation and the prompts it is asked with. */
export const REPORT_SCHEMA = {
  type: 'object',
  properties: {
    city: { type: 'string', maxLength: 30 },
    temperature: { type: 'integer', minimum: -50, maximum: 60 },
    conditions: { enum: ['sunny', 'rainy', 'cloudy', 'snowy'] },
    humidity: { type: 'number', minimum: 0, maximum: 100 },
    alerts: { type: 'array', items: { type: 'string', maxLength: 20 }, maxItems: 3 },
  },
  required: ['city', 'temperature', 'conditions'],
} as const;

export const REPORT_PROMPTS = [
  'Describe the weather in Paris as JSON.',
  'Weather report for Lima, please.',
  'What is the weather in 北京?',
  'Give me a weather summary for Oslo.',
  'How is the weather in Cairo today?',
];

/**
 * Checking request bodies of the OpenAI endpoints. Each field is checked as OpenAI documents it;
 * a wrong one is a 400 that names it. Fields that do not change what this server computes
 * (user, metadata, parallel_tool_calls, ...) are accepted and ignored, as llama-server does.
 */
import type { ChatCompletionMessageParam, ChatCompletionTool } from '../api.js';
import type { ResponseFormat } from '../api-constraints.js';
import { planToolChoice, type ChatCompletionToolChoice } from '../chat/tool-choice.js';
import { ChatGLMError } from '../errors.js';
import { badRequest } from './errors.js';

type Json = Record<string, unknown>;

export interface SamplingFields {
  temperature: number;
  topP: number;
  topK: number;
  repetitionPenalty: number;
  /** Undefined: up to the end of the slot's context. */
  maxTokens: number | undefined;
  stop: string[];
  seed: number | undefined;
  stream: boolean;
  includeUsage: boolean;
}

export interface ChatRequest extends SamplingFields {
  model: string;
  messages: ChatCompletionMessageParam[];
  /** undefined when there are none or tool_choice is "none". */
  tools: ChatCompletionTool[] | undefined;
  /** "required" or a named function (enforced by constrained decoding); undefined for auto/none. */
  toolChoice: Exclude<ChatCompletionToolChoice, 'auto' | 'none'> | undefined;
  /** json_object / json_schema (constrained decoding); undefined for text. */
  responseFormat: ResponseFormat | undefined;
}

export interface CompletionRequest extends SamplingFields {
  model: string;
  prompt: string;
  /** llama-server's extension: keep generating past the end-of-text token. */
  ignoreEos: boolean;
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function num(body: Json, name: string, def: number, ok: (v: number) => boolean, rule: string): number {
  const v = body[name];
  if (v === undefined || v === null) return def;
  if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v)) throw badRequest(`${name} must be ${rule}, got ${JSON.stringify(v)}`, name);
  return v;
}

function int(body: Json, name: string, min: number): number | undefined {
  const v = body[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) throw badRequest(`${name} must be an integer >= ${min}, got ${JSON.stringify(v)}`, name);
  return v;
}

function sampling(body: Json, defaultMaxTokens: number | undefined): SamplingFields {
  const n = int(body, 'n', 1);
  if (n !== undefined && n !== 1) throw badRequest(`n must be 1 (this server returns one choice per request), got ${n}`, 'n');
  const maxTokens = int(body, 'max_completion_tokens', 1) ?? int(body, 'max_tokens', 1) ?? defaultMaxTokens;
  let stop: string[] = [];
  const s = body['stop'];
  if (typeof s === 'string') stop = [s];
  else if (Array.isArray(s) && s.length <= 4 && s.every((x) => typeof x === 'string')) stop = s as string[];
  else if (s !== undefined && s !== null) throw badRequest('stop must be a string or an array of up to 4 strings', 'stop');
  const seedValue = body['seed'];
  if (seedValue !== undefined && seedValue !== null && (typeof seedValue !== 'number' || !Number.isSafeInteger(seedValue))) {
    throw badRequest(`seed must be an integer, got ${JSON.stringify(seedValue)}`, 'seed');
  }
  const stream = body['stream'];
  if (stream !== undefined && stream !== null && typeof stream !== 'boolean') throw badRequest('stream must be true or false', 'stream');
  const so = body['stream_options'];
  if (so !== undefined && so !== null && !isObject(so)) throw badRequest('stream_options must be an object like {"include_usage": true}', 'stream_options');
  if (body['logprobs'] === true || (typeof body['logprobs'] === 'number' && body['logprobs'] > 0)) {
    throw badRequest('logprobs are not supported by this server', 'logprobs', 'unsupported_value');
  }
  return {
    // ChatGLM's own defaults (as createChatCompletion): temperature 0.8, top_p 0.8.
    temperature: num(body, 'temperature', 0.8, (v) => v >= 0 && v <= 2, 'a number from 0 to 2'),
    topP: num(body, 'top_p', 0.8, (v) => v > 0 && v <= 1, 'a number in (0, 1]'),
    topK: num(body, 'top_k', 0, (v) => Number.isInteger(v) && v >= 0, 'an integer >= 0'),
    repetitionPenalty: num(body, 'repetition_penalty', 1, (v) => v > 0, 'a number > 0'),
    maxTokens,
    stop,
    seed: typeof seedValue === 'number' ? seedValue : undefined,
    stream: stream === true,
    includeUsage: isObject(so) && so['include_usage'] === true,
  };
}

function modelField(body: Json): string {
  const m = body['model'];
  if (typeof m !== 'string' || m === '') throw badRequest('model is required (GET /v1/models lists it)', 'model', 'missing_required_parameter');
  return m;
}

export function parseChatRequest(body: unknown): ChatRequest {
  if (!isObject(body)) throw badRequest('the request body must be a JSON object');
  const model = modelField(body);
  const messages = body['messages'];
  if (!Array.isArray(messages) || messages.length === 0) throw badRequest('messages must be a non-empty array', 'messages');
  messages.forEach((m, i) => {
    if (!isObject(m) || typeof m['role'] !== 'string') throw badRequest(`messages[${i}] must be an object with a role`, `messages[${i}]`);
    if (m['role'] === 'developer') m['role'] = 'system';
  });
  let tools: ChatCompletionTool[] | undefined;
  const t = body['tools'];
  if (t !== undefined && t !== null) {
    if (!Array.isArray(t)) throw badRequest('tools must be an array of {"type": "function", "function": {...}}', 'tools');
    t.forEach((tool, i) => {
      if (!isObject(tool) || tool['type'] !== 'function' || !isObject(tool['function']) || typeof tool['function']['name'] !== 'string') {
        throw badRequest(`tools[${i}] must be {"type": "function", "function": {"name", "description", "parameters"}}`, `tools[${i}]`);
      }
    });
    if (t.length > 0) tools = t as ChatCompletionTool[];
  }
  const choice = body['tool_choice'];
  let toolChoice: ChatRequest['toolChoice'];
  try {
    const plan = planToolChoice(choice, tools?.map((tool) => tool.function.name));
    if (!plan.offerTools) tools = undefined;
    if (plan.required === true) toolChoice = 'required';
    else if (plan.forced !== undefined) toolChoice = { type: 'function', function: { name: plan.forced } };
  } catch (err) {
    if (err instanceof ChatGLMError) throw badRequest(err.message, 'tool_choice');
    throw err;
  }
  const rf = body['response_format'];
  let responseFormat: ResponseFormat | undefined;
  if (rf !== undefined && rf !== null) {
    const type = isObject(rf) ? rf['type'] : undefined;
    if (type === 'json_object') responseFormat = { type: 'json_object' };
    else if (type === 'json_schema') {
      const js = (rf as Json)['json_schema'];
      if (!isObject(js) || (js['schema'] !== undefined && !isObject(js['schema']) && typeof js['schema'] !== 'boolean')) {
        throw badRequest('response_format json_schema needs "json_schema": {"name", "schema": {...}}', 'response_format');
      }
      responseFormat = rf as ResponseFormat;
    } else if (type !== 'text') {
      throw badRequest('response_format must be {"type": "text" | "json_object" | "json_schema", ...}', 'response_format');
    }
  }
  return { model, messages: messages as ChatCompletionMessageParam[], tools, toolChoice, responseFormat, ...sampling(body, undefined) };
}

export function parseCompletionRequest(body: unknown): CompletionRequest {
  if (!isObject(body)) throw badRequest('the request body must be a JSON object');
  const model = modelField(body);
  let prompt = body['prompt'];
  if (Array.isArray(prompt) && prompt.length === 1 && typeof prompt[0] === 'string') prompt = prompt[0];
  if (typeof prompt !== 'string' || prompt === '') throw badRequest('prompt must be a non-empty string (or an array holding one)', 'prompt');
  if (body['echo'] === true) throw badRequest('echo is not supported', 'echo', 'unsupported_value');
  if (body['suffix'] !== undefined && body['suffix'] !== null) throw badRequest('suffix is not supported', 'suffix', 'unsupported_value');
  const ignoreEos = body['ignore_eos'];
  if (ignoreEos !== undefined && typeof ignoreEos !== 'boolean') throw badRequest('ignore_eos must be true or false', 'ignore_eos');
  // OpenAI's default for the legacy completions endpoint.
  return { model, prompt, ignoreEos: ignoreEos === true, ...sampling(body, 16) };
}

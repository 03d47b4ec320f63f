/**
 * Constrained decoding on the bundled demo model: tool calls to tools it never saw (names and
 * parameter names), with and without constraints, and response_format json_schema samples.
 *
 *   npx tsc -p . && node dist/tools/constrain/eval.js [--model DIR] [--limit N] [--samples N] [--json]
 *
 * Tool prompts run greedy (temperature 0) in three modes: unconstrained (`constrain: false`),
 * constrained (the default when tools are declared: lazy, the model may still answer in text) and
 * `tool_choice: "required"`. A call "names a declared tool" when its name is in the request's
 * tool list; its arguments "validate" when they parse and ajv accepts them against that tool's
 * parameters schema. The JSON samples use temperature 0.8 with seeds 1..N.
 */
import Ajv from 'ajv';
import { pathToFileURL } from 'node:url';
import { loadChatModel, type ChatCompletionRequest, type ChatModel } from '../../src/api.js';
import { REPORT_PROMPTS, REPORT_SCHEMA, toolPrompts, type ToolPrompt } from './eval-set.js';

export type ToolMode = 'unconstrained' | 'constrained' | 'required';

export interface ToolEvalSummary {
  mode: ToolMode;
  prompts: number;
  /** Replies that are a tool call (parsed or not, declared or not; the interpreter included). */
  calls: number;
  /** Calls whose name is one of the request's tools. */
  declared: number;
  /** Calls whose arguments parse and validate against the named (declared) tool's schema. */
  valid: number;
  /** Calls of the tool a person would have called. */
  expected: number;
  /** Per prompt: what the model did, for reading. */
  details: { question: string; name: string | null; arguments: string | null; valid: boolean; text: string | null }[];
}

function ajvFor(): Ajv.default {
  return new Ajv.default({ strict: false });
}

export async function runToolEval(model: ChatModel, prompts: readonly ToolPrompt[], mode: ToolMode): Promise<ToolEvalSummary> {
  const ajv = ajvFor();
  const out: ToolEvalSummary = { mode, prompts: prompts.length, calls: 0, declared: 0, valid: 0, expected: 0, details: [] };
  for (const p of prompts) {
    const request: ChatCompletionRequest = {
      messages: [{ role: 'user', content: p.question }],
      tools: p.tools,
      temperature: 0,
      max_tokens: 160,
      ...(mode === 'unconstrained' ? { constrain: false } : {}),
      ...(mode === 'required' ? { tool_choice: 'required' as const } : {}),
    };
    const r = await model.createChatCompletion({ ...request, stream: false });
    const m = r.choices[0].message;
    const call = m.tool_calls?.[0];
    const name = call?.function.name ?? m.invalid_tool_call?.name ?? null;
    let valid = false;
    if (name !== null) {
      out.calls++;
      const tool = p.tools.find((t) => t.function.name === name);
      if (tool) out.declared++;
      if (name === p.expected) out.expected++;
      if (tool && call) {
        valid = ajv.validate((tool.function.parameters ?? {}) as object, JSON.parse(call.function.arguments)) as boolean;
        if (valid) out.valid++;
      }
    }
    out.details.push({ question: p.question, name, arguments: call?.function.arguments ?? m.invalid_tool_call?.content ?? null, valid, text: m.content });
  }
  return out;
}

export interface JsonEvalSummary {
  samples: number;
  parsed: number;
  valid: number;
  outputs: string[];
}

export async function runJsonEval(model: ChatModel, samples: number, constrained = true): Promise<JsonEvalSummary> {
  const validate = ajvFor().compile(REPORT_SCHEMA);
  const out: JsonEvalSummary = { samples, parsed: 0, valid: 0, outputs: [] };
  for (let i = 0; i < samples; i++) {
    const r = await model.createChatCompletion({
      messages: [{ role: 'user', content: REPORT_PROMPTS[i % REPORT_PROMPTS.length]! }],
      temperature: 0.8,
      seed: i + 1,
      max_tokens: 200,
      ...(constrained ? { response_format: { type: 'json_schema' as const, json_schema: { name: 'weather_report', schema: REPORT_SCHEMA as never } } } : {}),
    });
    const text = r.choices[0].message.content ?? '';
    out.outputs.push(text);
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      continue;
    }
    out.parsed++;
    if (validate(value)) out.valid++;
  }
  return out;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const arg = (name: string): string | undefined => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const model = await loadChatModel(arg('model'));
  try {
    const prompts = toolPrompts().slice(0, Number(arg('limit') ?? 50));
    const samples = Number(arg('samples') ?? 50);
    const t0 = performance.now();
    const tools: ToolEvalSummary[] = [];
    for (const mode of ['unconstrained', 'constrained', 'required'] as const) tools.push(await runToolEval(model, prompts, mode));
    const json = await runJsonEval(model, samples, true);
    const jsonFree = await runJsonEval(model, samples, false);
    const seconds = (performance.now() - t0) / 1000;
    if (args.includes('--json')) {
      process.stdout.write(JSON.stringify({ tools, json, jsonUnconstrained: jsonFree, seconds }, null, 2) + '\n');
      return;
    }
    const pct = (a: number, b: number): string => (b === 0 ? '-' : `${((100 * a) / b).toFixed(0)}%`);
    const lines = [
      `demo model, ${prompts.length} tool prompts (tool and parameter names unseen in training), greedy`,
      '',
      '| mode | tool calls | name declared | arguments validate | expected tool |',
      '|---|---|---|---|---|',
      ...tools.map((t) => `| ${t.mode} | ${t.calls}/${t.prompts} | ${t.declared}/${t.calls} (${pct(t.declared, t.calls)}) | ${t.valid}/${t.calls} (${pct(t.valid, t.calls)}) | ${t.expected}/${t.prompts} |`),
      '',
      `response_format json_schema, ${samples} samples (temperature 0.8, seeds 1..${samples}):`,
      `  constrained:   ${json.parsed}/${samples} parse, ${json.valid}/${samples} validate`,
      `  unconstrained: ${jsonFree.parsed}/${samples} parse, ${jsonFree.valid}/${samples} validate`,
      `(${seconds.toFixed(0)} s)`,
    ];
    process.stdout.write(lines.join('\n') + '\n');
  } finally {
    model.dispose();
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    process.stderr.write(`eval: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}

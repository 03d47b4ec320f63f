/**
 * What the `agent` command and the tool-running `chat` share: collecting tools from
 * --tools-module and --builtin-tools, and printing a finished call as `[tool] name {args} -> result`.
 */
import { ChatGLMError } from '../errors.js';
import { builtinTools } from '../agent/builtin-tools.js';
import { loadToolsModule } from '../agent/tools-module.js';
import type { AnyTool } from '../agent/tool.js';
import type { AgentEvent } from '../agent/loop.js';

export interface ToolCliOptions {
  toolsModule?: string;
  builtinTools?: string;
}

export async function toolsFromCli(opts: ToolCliOptions): Promise<AnyTool[]> {
  const tools: AnyTool[] = [];
  if (opts.builtinTools !== undefined) {
    const names = opts.builtinTools.split(',').filter((n) => n.trim() !== '');
    if (names.length === 0) throw new ChatGLMError('BAD_ARGUMENT', '--builtin-tools needs a comma-separated list, e.g. calculator,get_current_time');
    tools.push(...builtinTools(names));
  }
  if (opts.toolsModule !== undefined) tools.push(...(await loadToolsModule(opts.toolsModule)));
  const seen = new Set<string>();
  for (const t of tools) {
    if (seen.has(t.name)) throw new ChatGLMError('BAD_ARGUMENT', `two tools are named "${t.name}" (--builtin-tools and --tools-module overlap?)`);
    seen.add(t.name);
  }
  return tools;
}

/** One line per finished call, as a person reads it. */
export function toolResultLine(ev: AgentEvent & { type: 'tool_result' }, maxChars = 300): string {
  const shown = ev.result.ok ? ev.content : `error: ${ev.result.error.message}`;
  const clipped = shown.length > maxChars ? `${shown.slice(0, maxChars)}...` : shown;
  return `[tool] ${ev.call.name} ${oneLine(ev.call.arguments)} -> ${oneLine(clipped)}`;
}

function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ');
}

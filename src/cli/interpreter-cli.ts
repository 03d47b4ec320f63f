/**
 * `--interpreter` for `agent` and `chat`: the sandboxed Python that ChatGLM3's `interpreter` replies
 * run in, started before the model loads (a missing sandbox fails at once, naming the packages),
 * and how a run is shown in the terminal: the code, its output, and each plot saved as a PNG file.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { createCodeInterpreter, type CodeInterpreter } from '../agent/interpreter/index.js';
import { INTERPRETER_TOOL_NAME, type AgentEvent } from '../agent/loop.js';
import type { CodeRunImage } from '../agent/interpreter-types.js';
import { ChatGLMError } from '../errors.js';

/** Where `chat --interpreter` writes plots when --out-dir is not given. */
export const DEFAULT_CHAT_OUT_DIR = 'chatglm-output';

export interface InterpreterCliOptions {
  interpreter?: boolean;
  interpreterTimeout?: string;
}

export function addInterpreterOptions(cmd: Command): Command {
  return cmd
    .option('--interpreter', "run the model's Python code (ChatGLM3 `interpreter` replies) in the sandboxed code interpreter (needs bubblewrap, python3-numpy, python3-matplotlib)")
    .option('--interpreter-timeout <ms>', 'time limit of one code run in milliseconds (default 30000)');
}

/** The interpreter the flags ask for, or undefined. The caller closes it. */
export async function interpreterFromCli(opts: InterpreterCliOptions): Promise<CodeInterpreter | undefined> {
  if (opts.interpreter !== true) {
    if (opts.interpreterTimeout !== undefined) throw new ChatGLMError('BAD_ARGUMENT', '--interpreter-timeout needs --interpreter');
    return undefined;
  }
  let timeoutMs: number | undefined;
  if (opts.interpreterTimeout !== undefined) {
    timeoutMs = Number(opts.interpreterTimeout);
    if (!Number.isSafeInteger(timeoutMs) || timeoutMs < 1) {
      throw new ChatGLMError('BAD_ARGUMENT', `--interpreter-timeout must be a positive integer (milliseconds), got ${JSON.stringify(opts.interpreterTimeout)}`);
    }
  }
  return createCodeInterpreter(timeoutMs !== undefined ? { timeoutMs } : {});
}

/** Writes the images of one run to `dir` as `prefix-N.png`; returns the file paths. */
export async function saveImages(images: readonly CodeRunImage[], dir: string, prefix: string): Promise<string[]> {
  if (images.length === 0) return [];
  await mkdir(dir, { recursive: true });
  const files: string[] = [];
  for (let i = 0; i < images.length; i++) {
    const file = path.join(dir, `${prefix}-${i + 1}.png`);
    await writeFile(file, images[i]!.data);
    files.push(file);
  }
  return files;
}

/** The code of an interpreter call, as the agent loop passes it (`{"code": "..."}`). */
function codeOf(args: string): string {
  try {
    const parsed = JSON.parse(args) as unknown;
    if (parsed !== null && typeof parsed === 'object' && typeof (parsed as { code?: unknown }).code === 'string') return (parsed as { code: string }).code;
  } catch {
    // fall through: show what the model wrote
  }
  return args;
}

/**
 * The terminal view of one interpreter run: the code, what it printed (the text the model reads),
 * and the saved plot files. Undefined for calls of other tools.
 */
export async function interpreterRunText(ev: AgentEvent & { type: 'tool_result' }, outDir: string, prefix: string): Promise<string | undefined> {
  if (ev.call.name !== INTERPRETER_TOOL_NAME) return undefined;
  const lines = ['[code]', codeOf(ev.call.arguments).replace(/\s+$/, ''), '[output]'];
  const output = ev.result.ok ? ev.content : `error: ${ev.result.error.message}`;
  lines.push(output === '' ? '(no output)' : output);
  for (const file of await saveImages(ev.images ?? [], outDir, prefix)) lines.push(`[image] ${file}`);
  return lines.join('\n');
}

/**
 * `chatglm tokenize`: text to ids, no special tokens (the parity interface with the original
 * tokenizers). `--jsonl` turns one JSON string per stdin line into one JSON id array per line.
 */
import type { Command } from 'commander';
import { createInterface } from 'node:readline';
import { ChatGLMError } from '../../errors.js';
import { loadTokenizerFile, loadTokenizerForModel } from '../../tokenizer/load.js';
import { loadGgufTokenizer } from '../../api.js';
import { checkModelPath } from '../../model/check-path.js';
import { resolveModelPath } from '../default-model.js';
import { FAMILIES as REGISTRY, FAMILY_NAMES, getFamily, type ModelFamily } from '../../families/registry.js';
import { resolveModelRef } from '../../hub/cache.js';
import type { Tokenizer } from '../../tokenizer/types.js';

export interface TokenizerCliOptions {
  tokenizer?: string;
  model?: string;
  family?: string;
  jsonl?: boolean;
}

// The registry's names, so a new family is accepted here without a line of its own.
const FAMILIES = FAMILY_NAMES;

/**
 * Shared by tokenize and detokenize: --tokenizer FILE, or --model DIR (its tokenizer.model), or
 * with neither the bundled demo model's tokenizer.
 */
export async function tokenizerFromOptions(given: TokenizerCliOptions): Promise<Tokenizer> {
  const opts: TokenizerCliOptions = { ...given };
  if (opts.model !== undefined) opts.model = resolveModelRef(opts.model);
  else if (opts.tokenizer === undefined) opts.model = resolveModelPath(undefined);
  // A bad --model fails here with the same message as every other command.
  const kind = opts.model !== undefined ? await checkModelPath(opts.model) : undefined;
  let family: ModelFamily | undefined;
  if (opts.family !== undefined) {
    if (!(FAMILIES as readonly string[]).includes(opts.family)) {
      throw new ChatGLMError('BAD_ARGUMENT', `--family must be one of ${FAMILIES.join(', ')} (got ${opts.family})`);
    }
    family = opts.family as ModelFamily;
  }
  if (opts.model !== undefined && opts.tokenizer === undefined && kind === 'gguf') {
    return (await loadGgufTokenizer(opts.model, family)).tokenizer;
  }
  if (opts.model !== undefined) {
    const { tokenizer, family: detected } = await loadTokenizerForModel(opts.model, REGISTRY, opts.tokenizer);
    if (family !== undefined && family !== detected.name) {
      return (await loadTokenizerFile(opts.tokenizer ?? `${opts.model}/tokenizer.model`, getFamily(family))).tokenizer;
    }
    return tokenizer;
  }
  // No --model: then --tokenizer was given (see the default above).
  return (await loadTokenizerFile(opts.tokenizer!, family !== undefined ? getFamily(family) : undefined)).tokenizer;
}

/** Reads stdin line by line, maps each non-blank line, writes the results in large chunks. */
export async function mapJsonLines(map: (value: unknown, lineNo: number) => string): Promise<void> {
  const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
  let buf: string[] = [];
  let size = 0;
  let lineNo = 0;
  for await (const line of rl) {
    lineNo++;
    if (line.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      throw new ChatGLMError('BAD_ARGUMENT', `stdin line ${lineNo} is not JSON: ${line.slice(0, 60)}`);
    }
    const out = map(value, lineNo);
    buf.push(out);
    size += out.length;
    if (size > 1 << 16) {
      process.stdout.write(buf.join('\n') + '\n');
      buf = [];
      size = 0;
    }
  }
  if (buf.length > 0) process.stdout.write(buf.join('\n') + '\n');
}

async function readAllStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export function register(program: Command): void {
  program
    .command('tokenize')
    .description('print the token ids of TEXT as JSON (no special tokens)')
    .argument('[text]', 'text to encode (default: all of stdin)')
    .option('-t, --tokenizer <file>', 'tokenizer.model (SentencePiece or GLM-4 tiktoken)')
    .option('-m, --model <dir>', 'model directory whose tokenizer.model to use, or a .gguf file (its own vocabulary)')
    .option('--family <family>', 'chatglm2 | chatglm3 | glm4 (special tokens; detected from --model)')
    .option('--jsonl', 'read one JSON string per stdin line, write one JSON array of ids per line')
    .action(async (text: string | undefined, opts: TokenizerCliOptions) => {
      const tok = await tokenizerFromOptions(opts);
      if (opts.jsonl) {
        if (text !== undefined) throw new ChatGLMError('BAD_ARGUMENT', 'tokenize: give TEXT or --jsonl, not both');
        await mapJsonLines((value, lineNo) => {
          if (typeof value !== 'string') {
            throw new ChatGLMError('BAD_ARGUMENT', `stdin line ${lineNo}: expected a JSON string, got ${JSON.stringify(value).slice(0, 60)}`);
          }
          return JSON.stringify(tok.encode(value));
        });
        return;
      }
      const input = text ?? (await readAllStdin());
      process.stdout.write(JSON.stringify(tok.encode(input)) + '\n');
    });
}

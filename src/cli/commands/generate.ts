/**
 * `chatglm generate --model DIR (--prompt TEXT | --prompt-ids 1,2,3) [--json]`: plain generation,
 * no chat template. A --prompt is encoded after the family's [gMASK] sop prefix, as the Hugging
 * Face tokenizer's encode() does; --prompt-ids are used exactly as given. Generation stops on the
 * family's stop ids. With --json it prints {"ids": [generated ids], "text": "..."}.
 */
import type { Command } from 'commander';
import { ChatGLMError } from '../../errors.js';
import { isBackendName } from '../../backend/select.js';
import { loadChatModel, type LoadChatModelOptions } from '../../api.js';
import type { SamplingOptions } from '../../generate/sampler.js';
import type { ModelFamily } from '../../tokenizer/types.js';
import { CHAT_FORMAT_NAMES } from '../../chat/formats.js';
import { encodePieces } from '../../chat/prompt-pieces.js';
import { resolveModelPath } from '../default-model.js';

/** Options shared by generate and chat. */
export interface ModelCliOptions {
  model?: string;
  backend: string;
  quantize?: string;
  tokenizer?: string;
  format?: string;
  context?: string;
}

export interface SamplingCliOptions {
  greedy?: boolean;
  temperature?: string;
  topP?: string;
  topK?: string;
  seed?: string;
  repetitionPenalty?: string;
  maxNewTokens?: string;
}

export function addModelOptions(cmd: Command): Command {
  return cmd
    .option('-m, --model <path>', 'Hugging Face model directory or .gguf file (default: the bundled demo model)')
    .option('--backend <name>', 'reference | native | auto', 'auto')
    .option('--quantize <type>', 'quantize weights while loading: q8_0 | q4_0')
    .option('--tokenizer <file>', "tokenizer file to use instead of the model's tokenizer.model or the .gguf file's vocabulary")
    .option('--format <family>', `chat format / family: ${CHAT_FORMAT_NAMES.join(' | ')} (default: detected)`)
    .option('--context <n>', 'context length in tokens (default: the model seq_length)');
}

export function addSamplingOptions(cmd: Command): Command {
  return cmd
    .option('--max-new-tokens <n>', 'most tokens to generate')
    .option('--greedy', 'always take the most likely token')
    .option('--temperature <t>', 'sampling temperature (default 0.8; 0 = greedy)')
    .option('--top-p <p>', 'nucleus sampling mass (default 0.8)')
    .option('--top-k <k>', 'keep the k most likely tokens (default 0 = off)')
    .option('--repetition-penalty <r>', 'penalty for repeated tokens (default 1 = off)')
    .option('--seed <s>', 'random seed (same seed, same output)');
}

function num(value: string | undefined, flag: string, integer: boolean): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || (integer && !Number.isSafeInteger(n))) {
    throw new ChatGLMError('BAD_ARGUMENT', `${flag} must be ${integer ? 'an integer' : 'a number'}, got ${JSON.stringify(value)}`);
  }
  return n;
}

export function samplingFromCli(o: SamplingCliOptions): SamplingOptions & { seed?: number; maxNewTokens?: number } {
  const out: SamplingOptions & { seed?: number; maxNewTokens?: number } = {};
  if (o.greedy === true) {
    if (o.temperature !== undefined || o.topP !== undefined || o.topK !== undefined) {
      throw new ChatGLMError('BAD_ARGUMENT', '--greedy cannot be combined with --temperature, --top-p or --top-k');
    }
    out.greedy = true;
  } else {
    out.temperature = num(o.temperature, '--temperature', false) ?? 0.8;
    out.topP = num(o.topP, '--top-p', false) ?? 0.8;
    const k = num(o.topK, '--top-k', true);
    if (k !== undefined) out.topK = k;
  }
  const r = num(o.repetitionPenalty, '--repetition-penalty', false);
  if (r !== undefined) out.repetitionPenalty = r;
  const seed = num(o.seed, '--seed', true);
  if (seed !== undefined) out.seed = seed;
  const max = num(o.maxNewTokens, '--max-new-tokens', true);
  if (max !== undefined) {
    if (max < 1) throw new ChatGLMError('BAD_ARGUMENT', `--max-new-tokens must be >= 1, got ${max}`);
    out.maxNewTokens = max;
  }
  return out;
}

export function loadOptionsFromCli(o: ModelCliOptions): LoadChatModelOptions {
  if (!isBackendName(o.backend)) throw new ChatGLMError('BAD_ARGUMENT', `unknown backend ${JSON.stringify(o.backend)}; choose reference, native or auto`);
  const out: LoadChatModelOptions = { backend: o.backend };
  if (o.quantize !== undefined) {
    if (o.quantize !== 'q8_0' && o.quantize !== 'q4_0') throw new ChatGLMError('BAD_ARGUMENT', `--quantize must be q8_0 or q4_0, got ${JSON.stringify(o.quantize)}`);
    out.quantize = o.quantize;
  }
  if (o.tokenizer !== undefined) out.tokenizer = o.tokenizer;
  if (o.format !== undefined) {
    if (!(CHAT_FORMAT_NAMES as string[]).includes(o.format)) {
      throw new ChatGLMError('BAD_ARGUMENT', `--format must be one of ${CHAT_FORMAT_NAMES.join(', ')}, got ${JSON.stringify(o.format)}`);
    }
    out.family = o.format as ModelFamily;
  }
  const ctx = num(o.context, '--context', true);
  if (ctx !== undefined) out.contextLength = ctx;
  return out;
}

export function parseIdList(text: string, flag: string): number[] {
  const parts = text.split(',').map((s) => s.trim());
  if (parts.some((s) => !/^\d+$/.test(s))) {
    throw new ChatGLMError('BAD_ARGUMENT', `${flag} must be comma-separated token ids like 5,17,3; got ${JSON.stringify(text)}`);
  }
  return parts.map(Number);
}

interface GenerateCliOptions extends ModelCliOptions, SamplingCliOptions {
  prompt?: string;
  promptIds?: string;
  json?: boolean;
  stats?: boolean;
}

export function register(program: Command): void {
  const cmd = program.command('generate').description('generate text from a raw prompt or token ids (no chat template)');
  addModelOptions(cmd);
  addSamplingOptions(cmd);
  cmd
    .option('--prompt <text>', 'prompt text (encoded after the [gMASK] sop prefix)')
    .option('--prompt-ids <ids>', 'prompt as comma-separated token ids, used as given')
    .option('--json', 'print {"ids": [...], "text": "..."} instead of streaming text')
    .option('--stats', 'print token counts and speed to stderr')
    .action(async (opts: GenerateCliOptions) => {
      if ((opts.prompt === undefined) === (opts.promptIds === undefined)) {
        throw new ChatGLMError('BAD_ARGUMENT', 'generate: give exactly one of --prompt TEXT or --prompt-ids 1,2,3');
      }
      const sampling = samplingFromCli(opts);
      const loadOptions = loadOptionsFromCli(opts);
      const promptIds = opts.promptIds !== undefined ? parseIdList(opts.promptIds, '--prompt-ids') : undefined;
      const chat = await loadChatModel(resolveModelPath(opts.model), loadOptions);
      try {
        const ids =
          promptIds ??
encodePieces([...chat.format.prefix.map((special) => ({ special })), { text: opts.prompt! }], chat.tokenizer);
        for (const id of ids) {
          if (id >= chat.model.config.vocabSize) throw new ChatGLMError('BAD_ARGUMENT', `--prompt-ids: id ${id} is outside the vocabulary (${chat.model.config.vocabSize} ids)`);
        }
        const onStep = opts.json === true ? undefined : (s: { text: string }) => process.stdout.write(s.text);
        const r = await chat.generate(ids, { ...sampling, stopIds: chat.stopIds() }, onStep);
        if (opts.json === true) process.stdout.write(JSON.stringify({ ids: r.ids, text: r.text }) + '\n');
        else process.stdout.write('\n');
        if (opts.stats === true) process.stderr.write(JSON.stringify({ finish_reason: r.finishReason, seed: r.seed, usage: r.usage }) + '\n');
      } finally {
        chat.dispose();
      }
    });
}

/**
 * `chatglm generate --model DIR (--prompt TEXT | --prompt-ids 1,2,3) [--json]`: plain generation,
 * no chat template. A --prompt is encoded after the family's [gMASK] sop prefix, as the Hugging
 * Face tokenizer's encode() does; --prompt-ids are used exactly as given. Generation stops on the
 * family's stop ids. With --json it prints {"ids": [generated ids], "text": "..."}.
 */
import type { Command } from 'commander';
import { ChatGLMError } from '../../errors.js';
import { isBackendName } from '../../backend/select.js';
import { isKVType } from '../../backend/kv-type.js';
import type { LoadChatModelOptions } from '../../api.js';
import { openCheckpoint, openModel } from '../../model/open.js';
import { generateAll } from '../../generate/generator.js';
import { checkContextOption, loadChatModelForCli } from '../load-model.js';
import { loadReporter } from '../load-progress.js';
import { usageInWords } from '../usage-words.js';
import type { SamplingOptions } from '../../generate/sampler.js';
import { DEFAULT_TEMPERATURE, DEFAULT_TOP_P } from '../../generate/defaults.js';
import { FAMILIES, FAMILY_NAMES as CHAT_FORMAT_NAMES, type ModelFamily } from '../../families/registry.js';
import { encodePieces } from '../../chat/prompt-pieces.js';
import { resolveModelPath } from '../default-model.js';
import { addPromptCacheOption, CliPromptCache, type PromptCacheCliOption } from '../prompt-cache-cli.js';

/** Options shared by generate and chat. */
export interface ModelCliOptions {
  model?: string;
  backend: string;
  quantize?: string;
  tokenizer?: string;
  format?: string;
  context?: string;
  threads?: string;
  kvType?: string;
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

/** The options of every command that loads weights (logits and bench too). */
export function addWeightOptions(cmd: Command): Command {
  return cmd
    .option('-m, --model <path>', 'Hugging Face model directory or .gguf file (default: the bundled demo model)')
    .option('--backend <name>', 'reference | native | auto', 'auto')
    .option('--quantize <type>', 'quantize weights while loading: q8_0 | q4_0')
    .option('--threads <n>', 'threads for the native backend (default: all cores)');
}

export function addModelOptions(cmd: Command): Command {
  return addWeightOptions(cmd)
    .option('--tokenizer <file>', "tokenizer file to use instead of the model's tokenizer.model or the .gguf file's vocabulary")
    .option('--format <family>', `chat format / family: ${CHAT_FORMAT_NAMES.join(' | ')} (default: detected)`)
    .option('--context <n>', 'context length in tokens (default: the model seq_length)')
    .option('--kv-type <type>', 'KV cache element type: f16 | q8_0 (about half the memory, slightly less exact)');
}

export function addSamplingOptions(cmd: Command): Command {
  return cmd
    .option('--max-new-tokens <n>', 'most tokens to generate')
    .option('--greedy', 'always take the most likely token')
    .option('--temperature <t>', `sampling temperature (default ${DEFAULT_TEMPERATURE}; 0 = greedy)`)
    .option('--top-p <p>', `nucleus sampling mass (default ${DEFAULT_TOP_P})`)
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
    out.temperature = num(o.temperature, '--temperature', false) ?? DEFAULT_TEMPERATURE;
    if (out.temperature < 0) throw new ChatGLMError('BAD_ARGUMENT', `--temperature must be >= 0 (0 = greedy), got ${out.temperature}`);
    out.topP = num(o.topP, '--top-p', false) ?? DEFAULT_TOP_P;
    if (!(out.topP > 0 && out.topP <= 1)) throw new ChatGLMError('BAD_ARGUMENT', `--top-p must be in (0, 1], got ${out.topP}`);
    const k = num(o.topK, '--top-k', true);
    if (k !== undefined && k < 0) throw new ChatGLMError('BAD_ARGUMENT', `--top-k must be >= 0 (0 = off), got ${k}`);
    if (k !== undefined) out.topK = k;
  }
  const r = num(o.repetitionPenalty, '--repetition-penalty', false);
  if (r !== undefined && !(r > 0)) throw new ChatGLMError('BAD_ARGUMENT', `--repetition-penalty must be > 0 (1 = off), got ${r}`);
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
    if (!(CHAT_FORMAT_NAMES as readonly string[]).includes(o.format)) {
      throw new ChatGLMError('BAD_ARGUMENT', `--format must be one of ${CHAT_FORMAT_NAMES.join(', ')}, got ${JSON.stringify(o.format)}`);
    }
    out.family = o.format as ModelFamily;
  }
  const ctx = num(o.context, '--context', true);
  if (ctx !== undefined) {
    if (ctx < 2) throw new ChatGLMError('BAD_ARGUMENT', `--context must be at least 2 tokens, got ${ctx}`);
    out.contextLength = ctx;
  }
  const threads = threadsFromCli(o.threads);
  if (threads !== undefined) out.threads = threads;
  if (o.kvType !== undefined) {
    if (!isKVType(o.kvType)) throw new ChatGLMError('BAD_ARGUMENT', `--kv-type must be f16 or q8_0, got ${JSON.stringify(o.kvType)}`);
    out.kvType = o.kvType;
  }
  return out;
}

/** --threads N: a positive integer. */
export function threadsFromCli(value: string | undefined): number | undefined {
  const n = num(value, '--threads', true);
  if (n !== undefined && n < 1) throw new ChatGLMError('BAD_ARGUMENT', `--threads must be at least 1, got ${n}`);
  return n;
}

export function parseIdList(text: string, flag: string): number[] {
  const parts = text.split(',').map((s) => s.trim());
  if (parts.some((s) => !/^\d+$/.test(s))) {
    throw new ChatGLMError('BAD_ARGUMENT', `${flag} must be comma-separated token ids like 5,17,3; got ${JSON.stringify(text)}`);
  }
  return parts.map(Number);
}

interface GenerateCliOptions extends ModelCliOptions, SamplingCliOptions, PromptCacheCliOption {
  prompt?: string;
  promptIds?: string;
  json?: boolean;
  stats?: boolean;
  verbose?: boolean;
}

export function register(program: Command): void {
  const cmd = program.command('generate').description('generate text from a raw prompt or token ids (no chat template)');
  addModelOptions(cmd);
  addSamplingOptions(cmd);
  addPromptCacheOption(cmd);
  cmd
    .option('--prompt <text>', 'prompt text (encoded after the [gMASK] sop prefix)')
    .option('--prompt-ids <ids>', 'prompt as comma-separated token ids, used as given')
    .option('--json', 'print {"ids": [...], "text": "..."} instead of streaming text')
    .option('--stats', 'print token counts and speed to stderr as JSON')
    .option('--verbose', 'print token counts and speed to stderr in words')
    .action(async (opts: GenerateCliOptions) => {
      if ((opts.prompt === undefined) === (opts.promptIds === undefined)) {
        throw new ChatGLMError('BAD_ARGUMENT', 'generate: give exactly one of --prompt TEXT or --prompt-ids 1,2,3');
      }
      const sampling = samplingFromCli(opts);
      const loadOptions = loadOptionsFromCli(opts);
      const promptIds = opts.promptIds !== undefined ? parseIdList(opts.promptIds, '--prompt-ids') : undefined;
      const modelPath = resolveModelPath(opts.model);
      if (promptIds !== undefined && opts.tokenizer === undefined && !(await hasTokenizer(modelPath))) {
        if (opts.promptCache !== undefined) throw new ChatGLMError('BAD_ARGUMENT', `--prompt-cache needs the model's tokenizer, and ${modelPath} has none; give --tokenizer FILE`);
        await idsOnly(modelPath, promptIds, sampling, loadOptions, opts);
        return;
      }
      const chat = await loadChatModelForCli(modelPath, loadOptions);
      try {
        const ids =
          promptIds ??
encodePieces([...chat.format.prefix.map((special) => ({ special })), { text: opts.prompt! }], chat.tokenizer);
        for (const id of ids) {
          if (id >= chat.model.config.vocabSize) throw new ChatGLMError('BAD_ARGUMENT', `--prompt-ids: id ${id} is outside the vocabulary (${chat.model.config.vocabSize} ids)`);
        }
        const onStep = opts.json === true ? undefined : (s: { text: string }) => process.stdout.write(s.text);
        const t0 = performance.now();
        const cache =
          opts.promptCache !== undefined
            ? await CliPromptCache.open(opts.promptCache, modelPath, loadOptions, chat.model, chat.contextLength, (line) => process.stderr.write(line + '\n'))
            : undefined;
        const r =
          cache !== undefined
            ? await generateAll(
                chat.model,
                ids,
                { contextLength: chat.contextLength, vocabLimit: chat.tokenizer.vocabSize, ...sampling, stopIds: chat.stopIds(), tokenizer: chat.tokenizer, sequence: cache.sequence },
                onStep,
              )
            : await chat.generate(ids, { ...sampling, stopIds: chat.stopIds() }, onStep);
        await cache?.afterPrompt(ids);
        if (opts.json === true) process.stdout.write(JSON.stringify({ ids: r.ids, text: r.text }) + '\n');
        else process.stdout.write(r.finishReason === 'length' ? ' [stopped: length]\n' : '\n');
        if (opts.stats === true) process.stderr.write(JSON.stringify({ finish_reason: r.finishReason, seed: r.seed, usage: r.usage }) + '\n');
        if (opts.verbose === true) process.stderr.write(usageInWords(r.usage, performance.now() - t0, r.finishReason));
      } finally {
        chat.dispose();
      }
    });
}

/** Whether a checkpoint carries a tokenizer (an HF directory's tokenizer.model, a GGUF vocabulary). */
async function hasTokenizer(modelPath: string): Promise<boolean> {
  const h = await openCheckpoint(modelPath, { families: FAMILIES });
  try {
    return h.tokenizerFile !== undefined || h.ggufTokenizer !== undefined;
  } finally {
    await h.source.close();
  }
}

/**
 * --prompt-ids on a checkpoint without a tokenizer: ids in, ids out, no text. Generation stops on
 * the config's eos ids, since the chat format's stop tokens cannot be looked up without a vocabulary.
 */
async function idsOnly(
  modelPath: string,
  promptIds: number[],
  sampling: ReturnType<typeof samplingFromCli>,
  o: LoadChatModelOptions,
  opts: GenerateCliOptions,
): Promise<void> {
  await checkContextOption(modelPath, o.contextLength);
  const progress = loadReporter(modelPath);
  let opened;
  try {
    opened = await openModel(modelPath, {
      families: FAMILIES,
      ...(o.backend !== undefined ? { backend: o.backend } : {}),
      ...(o.quantize !== undefined ? { quantize: o.quantize } : {}),
      ...(o.family !== undefined ? { family: o.family } : {}),
      ...(o.threads !== undefined ? { threads: o.threads } : {}),
      onProgress: (p) => progress.onProgress(p),
    });
    progress.done();
  } catch (err) {
    progress.fail();
    throw err;
  }
  try {
    const vocab = opened.config.vocabSize;
    for (const id of promptIds) {
      if (id >= vocab) throw new ChatGLMError('BAD_ARGUMENT', `--prompt-ids: id ${id} is outside the vocabulary (${vocab} ids)`);
    }
    if (opts.json !== true) process.stderr.write(`chatglm: ${modelPath} has no tokenizer: printing the generated ids\n`);
    const t0 = performance.now();
    const r = await generateAll(opened.model, promptIds, {
      ...sampling,
      stopIds: opened.config.eosTokenIds,
      contextLength: o.contextLength ?? opened.config.seqLength,
    });
    if (opts.json === true) process.stdout.write(JSON.stringify({ ids: r.ids, text: null }) + '\n');
    else process.stdout.write(r.ids.join(',') + '\n');
    if (opts.stats === true) process.stderr.write(JSON.stringify({ finish_reason: r.finishReason, seed: r.seed, usage: r.usage }) + '\n');
    if (opts.verbose === true) process.stderr.write(usageInWords(r.usage, performance.now() - t0, r.finishReason));
  } finally {
    opened.backend.dispose?.();
  }
}

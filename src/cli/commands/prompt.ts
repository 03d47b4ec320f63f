/**
 * `chatglm prompt (--model DIR | --tokenizer FILE) --format chatglm2|chatglm3|glm4 --messages FILE.json`
 * prints the prompt a conversation becomes: text with the special tokens by name, or with --json
 * {"ids": [...], "text": "..."}. No weights are loaded. With only a SentencePiece file, the
 * ChatGLM special tokens take the ids right after its vocabulary.
 */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { ChatGLMError } from '../../errors.js';
import { loadTokenizerFile, loadTokenizerForModel } from '../../tokenizer/load.js';
import { loadGgufTokenizer } from '../../api.js';
import type { Tokenizer } from '../../tokenizer/types.js';
import { FAMILIES, FAMILY_NAMES as CHAT_FORMAT_NAMES, getChatFormat, getFamily, type ModelFamily } from '../../families/registry.js';
import { requestToChatMessages } from '../../api/request-messages.js';
import { validateRequestMessages } from '../../api/validate-request.js';
import type { ChatCompletionMessageParam } from '../../api.js';
import { checkModelPath } from '../../model/check-path.js';
import { encodePieces, piecesToText } from '../../chat/prompt-pieces.js';
import type { JsonValue } from '../../chat/python-literal.js';
import { resolveModelPath } from '../default-model.js';

/** Reads and parses a JSON file, with errors that name the file. */
export async function readJsonFile(file: string, what: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new ChatGLMError('FILE_NOT_FOUND', `${what} file not found: ${file} (check the path)`, { file });
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new ChatGLMError('BAD_FORMAT', `${file}: not valid JSON (${(err as Error).message})`, { file });
  }
}

interface PromptCliOptions {
  model?: string;
  tokenizer?: string;
  format?: string;
  messages: string;
  tools?: string;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command('prompt')
    .description('print the prompt (text, or ids with --json) that a conversation becomes')
    .option('-m, --model <dir>', 'model directory (its tokenizer.model) or .gguf file (its own vocabulary); default: the bundled demo model')
    .option('--tokenizer <file>', 'a tokenizer file instead of a model directory')
    .option('--format <family>', `chat format: ${CHAT_FORMAT_NAMES.join(' | ')} (default: detected from --model)`)
    .requiredOption('--messages <file>', 'JSON array of {role, content, metadata?} messages')
    .option('--tools <file>', 'JSON tool list to put in the system prompt')
    .option('--json', 'print {"ids": [...], "text": "..."}')
    .action(async (opts: PromptCliOptions) => {
      if (opts.format !== undefined && !(CHAT_FORMAT_NAMES as readonly string[]).includes(opts.format)) {
        throw new ChatGLMError('BAD_ARGUMENT', `--format must be one of ${CHAT_FORMAT_NAMES.join(', ')}, got ${JSON.stringify(opts.format)}`);
      }
      const raw = await readJsonFile(opts.messages, 'messages');
      validateRequestMessages(raw, opts.messages);
      let tokenizer: Tokenizer;
      let family: ModelFamily;
      if (opts.model === undefined && opts.tokenizer !== undefined) {
        if (opts.format === undefined) throw new ChatGLMError('BAD_ARGUMENT', 'prompt: with --tokenizer alone, say which chat format with --format chatglm2|chatglm3|glm4');
        family = opts.format as ModelFamily;
        tokenizer = (await loadTokenizerFile(opts.tokenizer, getFamily(family))).tokenizer;
      } else {
        const dir = resolveModelPath(opts.model);
        if ((await checkModelPath(dir)) === 'gguf' && opts.tokenizer === undefined) {
          ({ tokenizer, family } = await loadGgufTokenizer(dir, opts.format as ModelFamily | undefined));
        } else {
          const t = await loadTokenizerForModel(dir, FAMILIES, opts.tokenizer);
          family = (opts.format as ModelFamily | undefined) ?? t.family.name;
          tokenizer = family === t.family.name ? t.tokenizer : (await loadTokenizerFile(opts.tokenizer ?? `${dir}/tokenizer.model`, getFamily(family))).tokenizer;
        }
      }
      const format = getChatFormat(family);
      const tools = opts.tools !== undefined ? ((await readJsonFile(opts.tools, 'tools')) as JsonValue) : undefined;
      // The same conversion `chat --messages` runs (tool calls, tool results, the tool system prompt).
      const messages = requestToChatMessages(raw as ChatCompletionMessageParam[], tools, format, undefined, opts.messages);
      const pieces = format.render(messages).pieces;
      const text = piecesToText(pieces);
      if (opts.json === true) {
        process.stdout.write(JSON.stringify({ ids: encodePieces(pieces, tokenizer), text }) + '\n');
      } else {
        process.stdout.write(text + '\n');
      }
    });
}

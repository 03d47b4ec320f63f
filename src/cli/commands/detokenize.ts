/**
 * `chatglm detokenize`: ids to text. `--jsonl` turns one JSON array of ids per stdin line into
 * one JSON string per line.
 */
import type { Command } from 'commander';
import { ChatGLMError } from '../../errors.js';
import { mapJsonLines, tokenizerFromOptions, type TokenizerCliOptions } from './tokenize.js';

function asIds(value: unknown, where: string): number[] {
  if (!Array.isArray(value) || !value.every((v) => Number.isInteger(v))) {
    throw new ChatGLMError('BAD_ARGUMENT', `${where}: expected a JSON array of integer ids, got ${JSON.stringify(value).slice(0, 60)}`);
  }
  return value as number[];
}

export function register(program: Command): void {
  program
    .command('detokenize')
    .description('print the text of a JSON array of token ids')
    .argument('[ids]', 'JSON array of ids, e.g. "[1228, 11808]"')
    .option('-t, --tokenizer <file>', 'tokenizer.model (SentencePiece or GLM-4 tiktoken)')
    .option('-m, --model <dir>', 'model directory whose tokenizer.model to use')
    .option('--family <family>', 'chatglm2 | chatglm3 | glm4 (how special ids decode; detected from --model)')
    .option('--jsonl', 'read one JSON array of ids per stdin line, write one JSON string per line')
    .action(async (ids: string | undefined, opts: TokenizerCliOptions) => {
      const tok = await tokenizerFromOptions(opts);
      if (opts.jsonl) {
        if (ids !== undefined) throw new ChatGLMError('BAD_ARGUMENT', 'detokenize: give IDS or --jsonl, not both');
        await mapJsonLines((value, lineNo) => JSON.stringify(tok.decode(asIds(value, `stdin line ${lineNo}`))));
        return;
      }
      if (ids === undefined) throw new ChatGLMError('BAD_ARGUMENT', 'detokenize: give a JSON array of ids, or --jsonl');
      let parsed: unknown;
      try {
        parsed = JSON.parse(ids);
      } catch {
        throw new ChatGLMError('BAD_ARGUMENT', `detokenize: ${ids.slice(0, 60)} is not JSON (expected e.g. "[1228, 11808]")`);
      }
      process.stdout.write(tok.decode(asIds(parsed, 'ids')) + '\n');
    });
}

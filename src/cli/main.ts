/**
 * CLI entry: parses argv with commander and hands off to one module per command
 * (src/cli/commands/<name>.ts, each exporting `register`). No model logic lives here.
 */
import { Command, CommanderError } from 'commander';
import { ChatGLMError } from '../errors.js';
import { register as registerInfo } from './commands/info.js';
import { register as registerLogits } from './commands/logits.js';
import { register as registerTokenize } from './commands/tokenize.js';
import { register as registerDetokenize } from './commands/detokenize.js';
import { register as registerPrompt } from './commands/prompt.js';
import { register as registerGenerate } from './commands/generate.js';
import { register as registerChat } from './commands/chat.js';
import { register as registerConvert } from './commands/convert.js';
import { register as registerBench } from './commands/bench.js';
import { register as registerAgent } from './commands/agent.js';
import { register as registerPull } from './commands/pull.js';
import { register as registerList } from './commands/list.js';
import { register as registerRm } from './commands/rm.js';
import { packageVersion } from './version.js';
import { endQuietlyOnClosedPipe } from './quiet-epipe.js';
import { register as registerServe } from './commands/serve.js';

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('chatglm')
    .description('Run ChatGLM2/3 and GLM-4 chat models locally (chatglm.ts)')
    .version(packageVersion(), '-V, --version', 'print the version')
    .exitOverride()
    .showHelpAfterError();
  for (const register of [
    registerInfo,
    registerLogits,
    registerTokenize,
    registerDetokenize,
    registerPrompt,
    registerGenerate,
    registerChat,
    registerConvert,
    registerBench,
    registerAgent,
    registerPull,
    registerList,
    registerRm,
    registerServe,
  ]) {
    register(program);
  }
  return program;
}

/** Runs the CLI; resolves to the process exit code. Known errors print one line, no stack. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  endQuietlyOnClosedPipe(process.stdout);
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version land here with exitCode 0; usage errors were already printed.
      return err.exitCode;
    }
    if (err instanceof ChatGLMError) {
      console.error(`chatglm: ${err.message}`);
      return 1;
    }
    throw err;
  }
}

import type { Command } from 'commander';
import { ChatGLMError } from '../../errors.js';

// Placeholder until the issue that owns this command lands it.
export function register(program: Command): void {
  program
    .command('convert')
    .description('(not implemented yet)')
    .allowUnknownOption()
    .action(() => {
      throw new ChatGLMError('UNSUPPORTED', 'convert: not implemented yet');
    });
}

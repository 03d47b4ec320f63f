/**
 * What the interactive chat makes of each input line: a /command, part of a multi-line message,
 * or a message. Kept apart from the terminal handling so it can be tested line by line.
 *
 * Multi-line messages: a line ending in a backslash continues on the next line; text between two
 * lines of three double quotes (""") is one message. On a terminal that supports bracketed paste,
 * pasted lines are one message too: they are marked `pasted`, and the message ends with the next
 * line the user enters (the rest of the paste, or an empty line).
 */

export const CHAT_HELP = [
  'Commands:',
  '  /help            this list',
  '  /reset           forget the conversation (the system prompt stays)',
  '  /system TEXT     set the system prompt and start over (/system alone removes it)',
  '  /exit, /quit     leave (also Ctrl-D, or Ctrl-C twice at the prompt)',
  'Ctrl-C while the model writes stops the answer.',
  'Several lines: end a line with \\ to go on, or put the text between two """ lines; pasted lines are one message (press Enter to send).',
  'A message that starts with / : begin it with // instead.',
].join('\n');

export type ChatInput =
  | { kind: 'exit' }
  | { kind: 'help' }
  | { kind: 'reset' }
  | { kind: 'system'; text: string }
  | { kind: 'unknown'; command: string }
  | { kind: 'message'; text: string }
  /** A line that belongs to a message not finished yet. */
  | { kind: 'more' }
  /** A blank line: nothing to do. */
  | { kind: 'empty' };

export class ChatInputReader {
  private lines: string[] = [];
  private inBlock = false;
  private continued = false;
  private inPaste = false;

  /** Whether the next line continues a message (the prompt shows "... "). */
  get pending(): boolean {
    return this.inBlock || this.continued || this.inPaste;
  }

  /** `pasted`: the line ended inside a bracketed paste (so it is text, and more follows). */
  push(raw: string, pasted = false): ChatInput {
    if (pasted && !this.inBlock) {
      this.lines.push(raw);
      this.inPaste = true;
      return { kind: 'more' };
    }
    if (this.inPaste) {
      this.inPaste = false;
      this.lines.push(raw);
      return this.finish();
    }
    if (this.inBlock) {
      if (raw.trim() === '"""') {
        this.inBlock = false;
        return this.finish();
      }
      this.lines.push(raw);
      return { kind: 'more' };
    }
    if (this.continued) {
      return this.continueWith(raw);
    }
    const line = raw.trim();
    if (line === '"""' || (line.startsWith('"""') && !line.slice(3).includes('"""'))) {
      this.inBlock = true;
      const first = line.slice(3);
      if (first !== '') this.lines.push(first);
      return { kind: 'more' };
    }
    if (line === '') return { kind: 'empty' };
    if (line.startsWith('//')) return this.continueWith(raw.trimStart().slice(1));
    if (line.startsWith('/')) return command(line);
    return this.continueWith(raw);
  }

  /** Drops a message being collected (Ctrl-C at the prompt). */
  cancel(): void {
    this.lines = [];
    this.inBlock = false;
    this.continued = false;
    this.inPaste = false;
  }

  private continueWith(raw: string): ChatInput {
    if (raw.endsWith('\\')) {
      this.lines.push(raw.slice(0, -1));
      this.continued = true;
      return { kind: 'more' };
    }
    this.lines.push(raw);
    this.continued = false;
    return this.finish();
  }

  private finish(): ChatInput {
    const text = this.lines.join('\n');
    this.lines = [];
    return text.trim() === '' ? { kind: 'empty' } : { kind: 'message', text };
  }
}

function command(line: string): ChatInput {
  const space = line.search(/\s/);
  const name = space < 0 ? line : line.slice(0, space);
  const rest = space < 0 ? '' : line.slice(space).trim();
  switch (name) {
    case '/exit':
    case '/quit':
    case '/bye':
      return { kind: 'exit' };
    case '/help':
    case '/?':
      return { kind: 'help' };
    case '/reset':
    case '/clear':
      return { kind: 'reset' };
    case '/system':
      return { kind: 'system', text: rest };
    default:
      return { kind: 'unknown', command: name };
  }
}

/**
 * `chatglm logits ... | head -c 10`: when the reader closes the pipe, writing to stdout fails with
 * EPIPE. That is the reader saying it has enough, not an error, so the CLI ends quietly (exit 0)
 * instead of dying on an unhandled 'error' event with a stack trace.
 */
const installed = new WeakSet<NodeJS.WriteStream>();

export function endQuietlyOnClosedPipe(stream: NodeJS.WriteStream, exit: (code: number) => void = (code) => process.exit(code)): void {
  if (installed.has(stream)) return;
  installed.add(stream);
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') {
      exit(0);
      return;
    }
    throw err;
  });
}

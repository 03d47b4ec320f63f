/**
 * The contract between the agent loop and a code interpreter: the loop only needs `run`, so the
 * sandboxed Python of agent/interpreter and a scripted fake in tests are interchangeable.
 */

export interface CodeRunImage {
  mime: 'image/png';
  data: Uint8Array;
}

export interface CodeRunError {
  /** The Python exception class name, e.g. 'ZeroDivisionError'. */
  name: string;
  message: string;
  traceback: string;
}

export interface CodeRunResult {
  /** Everything the cell printed (stdout and stderr, in order) plus the repr of a last expression. */
  text: string;
  error?: CodeRunError;
  /** Every matplotlib figure the cell created, as PNG. */
  images: CodeRunImage[];
  /** The cell ran past its time limit. */
  timedOut: boolean;
  /** The interpreter process was restarted during this run: earlier variables are gone. */
  restarted: boolean;
}

export interface CodeInterpreterLike {
  run(code: string, options?: { signal?: AbortSignal }): Promise<CodeRunResult>;
}

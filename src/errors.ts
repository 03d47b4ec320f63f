/**
 * Typed errors. Every error a user can cause (bad path, corrupt file, unknown model, prompt too long)
 * is a ChatGLMError whose message says what is wrong AND how to fix it. The CLI prints `message`
 * without a stack trace; anything that is not a ChatGLMError is a bug in this project.
 */
export type ErrorCode =
  | 'FILE_NOT_FOUND'
  | 'BAD_FORMAT'
  | 'UNSUPPORTED'
  | 'MODEL_MISMATCH'
  | 'BAD_ARGUMENT'
  | 'CONTEXT_OVERFLOW'
  | 'UNSAFE_PICKLE'
  | 'ABORTED'
  | 'BACKEND'
  /** A tool or its arguments (agent loop). */
  | 'TOOL'
  /** The code-interpreter sandbox is missing or failed. */
  | 'SANDBOX'
  /** No network, DNS failure, connection refused. */
  | 'NETWORK'
  /** A remote HTTP endpoint answered with an error status. */
  | 'HTTP'
  | 'TIMEOUT'
  /** A grammar or JSON Schema that cannot be compiled for constrained decoding. */
  | 'GRAMMAR'
  /** NaN/Inf in the model's output (corrupt weights). */
  | 'NON_FINITE';

export class ChatGLMError extends Error {
  readonly code: ErrorCode;
  /** The file the problem was found in, when there is one. */
  readonly file?: string;

  constructor(code: ErrorCode, message: string, options?: { file?: string; cause?: unknown }) {
    super(message, options?.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = 'ChatGLMError';
    this.code = code;
    if (options?.file !== undefined) this.file = options.file;
  }
}

/** Corrupt or unexpected file contents. `file` is named in the message. */
export function badFormat(file: string, problem: string): ChatGLMError {
  return new ChatGLMError('BAD_FORMAT', `${file}: ${problem}`, { file });
}

export function notFound(what: string, file: string, fix: string): ChatGLMError {
  return new ChatGLMError('FILE_NOT_FOUND', `${what} not found: ${file}${fix ? ` (${fix})` : ''}`, { file });
}

/**
 * Errors on the wire, as OpenAI and llama-server send them: a status and
 * `{"error": {"message", "type", "code", ...}}`. The official clients turn these into typed
 * errors (`BadRequestError`, `AuthenticationError`, ...) carrying status, type and code.
 */
import { ChatGLMError } from '../errors.js';

export type ApiErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'not_found_error'
  | 'exceed_context_size_error'
  | 'unavailable_error'
  | 'server_error';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly type: ApiErrorType,
    readonly code: string,
    message: string,
    /** Extra fields of the error object (llama-server's n_prompt_tokens, n_ctx), and `param`. */
    readonly extra: Record<string, string | number | null> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'HttpError';
  }

  body(): { error: Record<string, string | number | null> } {
    return { error: { message: this.message, type: this.type, code: this.code, param: null, ...this.extra } };
  }
}

export function badRequest(message: string, param: string | null = null, code = 'invalid_value'): HttpError {
  return new HttpError(400, 'invalid_request_error', code, message, { param });
}

export function contextExceeded(promptTokens: number, ctx: number): HttpError {
  return new HttpError(
    400,
    'exceed_context_size_error',
    'context_length_exceeded',
    `the request needs ${promptTokens} prompt tokens but a slot's context holds ${ctx}; shorten the messages or start the server with a larger --ctx-size`,
    { n_prompt_tokens: promptTokens, n_ctx: ctx },
  );
}

/** Any error as an HttpError: a ChatGLMError the user caused is a 400, anything else a 500. */
export function toHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  if (err instanceof ChatGLMError) {
    switch (err.code) {
      case 'BAD_ARGUMENT':
      case 'UNSUPPORTED':
      case 'TOOL':
      case 'GRAMMAR':
        return badRequest(err.message);
      case 'CONTEXT_OVERFLOW':
        return new HttpError(400, 'exceed_context_size_error', 'context_length_exceeded', err.message);
      case 'ABORTED':
        return new HttpError(503, 'unavailable_error', 'aborted', err.message);
      default:
        return new HttpError(500, 'server_error', err.code.toLowerCase(), err.message);
    }
  }
  return new HttpError(500, 'server_error', 'internal_error', `internal error: ${err instanceof Error ? err.message : String(err)}`);
}

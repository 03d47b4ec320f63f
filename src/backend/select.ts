/**
 * Picks a backend by name. The model only ever sees the Backend interface, so adding a backend
 * means adding a case here and nothing in model/.
 */
import { ChatGLMError } from '../errors.js';
import type { Backend } from './types.js';
import { ReferenceBackend } from './reference/index.js';

export type BackendName = 'reference' | 'native' | 'auto';

export const BACKEND_NAMES: readonly BackendName[] = ['reference', 'native', 'auto'];

export function isBackendName(s: string): s is BackendName {
  return (BACKEND_NAMES as readonly string[]).includes(s);
}

/** 'auto' (the default) picks the fastest backend available; today that is the reference one. */
export async function createBackend(name: BackendName = 'auto'): Promise<Backend> {
  switch (name) {
    case 'reference':
    case 'auto':
      return new ReferenceBackend();
    case 'native':
      throw new ChatGLMError('UNSUPPORTED', 'the native backend is not built yet; use --backend reference');
    default:
      throw new ChatGLMError('BAD_ARGUMENT', `unknown backend ${JSON.stringify(name)}; choose one of ${BACKEND_NAMES.join(', ')}`);
  }
}

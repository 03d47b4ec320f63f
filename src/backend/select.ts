/**
 * Picks a backend by name. The model only ever sees the Backend interface, so adding a backend
 * means adding a case here and nothing in model/.
 */
import { ChatGLMError } from '../errors.js';
import type { Backend } from './types.js';
import { ReferenceBackend } from './reference/index.js';
import { createNativeBackend, loadAddon } from './native/index.js';

export type BackendName = 'reference' | 'native' | 'auto';

export const BACKEND_NAMES: readonly BackendName[] = ['reference', 'native', 'auto'];

export function isBackendName(s: string): s is BackendName {
  return (BACKEND_NAMES as readonly string[]).includes(s);
}

export interface BackendOptions {
  /** Threads for the native backend (default: all cores). The reference backend ignores it. */
  threads?: number;
}

let warnedFallback = false;

/**
 * 'auto' (the default) picks the native backend when its addon is built and loads, else the
 * reference backend, saying so once per process on stderr. 'native' fails when the addon is missing.
 */
export async function createBackend(name: BackendName = 'auto', options: BackendOptions = {}): Promise<Backend> {
  const nativeOptions = options.threads === undefined ? {} : { threads: options.threads };
  switch (name) {
    case 'reference':
      return new ReferenceBackend();
    case 'native':
      return createNativeBackend(nativeOptions);
    case 'auto': {
      const load = loadAddon();
      if (load.addon !== undefined) return createNativeBackend(nativeOptions);
      if (!warnedFallback) {
        warnedFallback = true;
        process.stderr.write(`chatglm: using the slow reference backend (${load.reason})\n`);
      }
      return new ReferenceBackend();
    }
    default:
      throw new ChatGLMError('BAD_ARGUMENT', `unknown backend ${JSON.stringify(name)}; choose one of ${BACKEND_NAMES.join(', ')}`);
  }
}

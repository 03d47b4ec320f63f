// The sandboxed Python of the code-interpreter mode.
export { createCodeInterpreter } from './code-interpreter.js';
export type { CodeInterpreter, CodeInterpreterOptions } from './code-interpreter.js';
export {
  formatCodeObservation,
  CODE_OBSERVATION_MAX_CHARS,
  CODE_OBSERVATION_TRUNCATED,
  CODE_OBSERVATION_IMAGE,
} from './observation.js';
export { SANDBOX_PACKAGES, SANDBOX_WORK_DIR } from './sandbox-command.js';

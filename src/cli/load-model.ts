/**
 * Loading a model for a CLI command: the bundled model when no --model is given, the options
 * checked with the CLI's own names before anything large is read, and a progress bar while the
 * weights load.
 */
import { ChatGLMError } from '../errors.js';
import { loadChatModel, type ChatModel, type LoadChatModelOptions } from '../api.js';
import { openCheckpoint } from '../model/open.js';
import { FAMILIES } from '../families/registry.js';
import type { GLMConfig } from '../model/config.js';
import { loadReporter } from './load-progress.js';

/** The config of a checkpoint, read from its header only (no weights). */
export async function readCheckpointConfig(modelPath: string): Promise<GLMConfig> {
  const h = await openCheckpoint(modelPath, { families: FAMILIES });
  try {
    return h.config;
  } finally {
    await h.source.close();
  }
}

/** --context must fit the model's trained context: checked before the weights load. */
export async function checkContextOption(modelPath: string, context: number | undefined): Promise<void> {
  if (context === undefined) return;
  if (context < 2) throw new ChatGLMError('BAD_ARGUMENT', `--context must be at least 2 tokens, got ${context}`);
  const trained = (await readCheckpointConfig(modelPath)).seqLength;
  if (context > trained) {
    throw new ChatGLMError('BAD_ARGUMENT', `--context ${context} is larger than the model's trained context (${trained} tokens); use --context ${trained} or less`);
  }
}

/** loadChatModel with the CLI's checks and feedback. */
export async function loadChatModelForCli(modelPath: string, options: LoadChatModelOptions): Promise<ChatModel> {
  await checkContextOption(modelPath, options.contextLength);
  const progress = loadReporter(modelPath);
  try {
    const chat = await loadChatModel(modelPath, { ...options, onProgress: (p) => progress.onProgress(p) });
    progress.done();
    return chat;
  } catch (err) {
    progress.fail();
    throw err;
  }
}

/** Loading a model directory or .gguf file, with its tokenizer and chat format, as a ChatModel. */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ChatGLMError } from '../errors.js';
import { hubModelName, resolveModelRef } from '../hub/cache.js';
import type { Backend } from '../backend/types.js';
import type { BackendName } from '../backend/select.js';
import type { KVType } from '../backend/kv-type.js';
import { openModel, type QuantizeType } from '../model/open.js';
import { checkModelPath } from '../model/check-path.js';
import type { LoadProgress } from '../model/load.js';
import { loadTokenizerFile, loadTokenizerForModel } from '../tokenizer/load.js';
import { tokenizerFromGguf } from '../tokenizer/from-gguf.js';
import { GgufReader } from '../formats/gguf.js';
import { readGgufTokenizer } from '../formats/gguf-checkpoint.js';
import type { Tokenizer } from '../tokenizer/types.js';
import { FAMILIES, getChatFormat, getFamily, type ModelFamily } from '../families/registry.js';
import { ChatModel } from './chat-model.js';

export interface LoadChatModelOptions {
  /** A backend instance or name: 'auto' (default: native when built, else reference), 'native', 'reference'. */
  backend?: Backend | BackendName;
  /** Quantize weights while loading. */
  quantize?: QuantizeType;
  onProgress?: (p: LoadProgress) => void;
  /** Chat format / family, overriding what the model directory says. */
  family?: ModelFamily;
  /** A tokenizer file to use instead of the model directory's tokenizer.model (or the .gguf file's own vocabulary). */
  tokenizer?: string;
  /** Positions a conversation may use (default: the model's seq_length; more is an error). */
  contextLength?: number;
  /** Threads of the native backend (default: all cores). */
  threads?: number;
  /** Element type of the KV caches: 'f16' (default) or 'q8_0' (about half the memory). */
  kvType?: KVType;
}

/** models/chatglm3-demo inside this package: the tiny demonstration model used when no model is given. */
export function bundledModelPath(): string {
  // This file is dist/src/api/load.js once built; the package root is three levels up.
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../models/chatglm3-demo');
}

/**
 * The tokenizer a .gguf file carries in its tokenizer.ggml.* metadata, and the family it shows
 * (`family` overrides it). ChatGLMError when the file has no usable vocabulary.
 */
export async function loadGgufTokenizer(file: string, family?: ModelFamily): Promise<{ tokenizer: Tokenizer; family: ModelFamily }> {
  const reader = await GgufReader.open(file);
  try {
    const r = tokenizerFromGguf(readGgufTokenizer(reader.header), { file, families: FAMILIES, ...(family !== undefined ? { family } : {}) });
    return { tokenizer: r.tokenizer, family: r.family.name };
  } finally {
    await reader.close();
  }
}

/** Loads a model directory or .gguf file for chat; no path = the bundled demo model. */
export async function loadChatModel(modelPath?: string, options: LoadChatModelOptions = {}): Promise<ChatModel> {
  // A path, or a model name (OWNER/NAME[@rev]) found in the Hugging Face cache.
  const dir = modelPath !== undefined ? resolveModelRef(modelPath) : bundledModelPath();
  // What the path is decides how it is read (not its name), and a bad path fails here, before the tokenizer.
  const isGguf = (await checkModelPath(dir)) === 'gguf';
  if (options.contextLength !== undefined && (!Number.isSafeInteger(options.contextLength) || options.contextLength < 2)) {
    throw new ChatGLMError('BAD_ARGUMENT', `contextLength must be an integer >= 2, got ${options.contextLength}`);
  }
  // The tokenizer first: it is small, and a wrong path should fail before gigabytes are read.
  let tokenizer: Tokenizer | undefined;
  let family: ModelFamily | undefined = options.family;
  if (isGguf && options.tokenizer === undefined) {
    // The file's own vocabulary; read before the weights so a file without one fails fast.
    ({ tokenizer, family } = await loadGgufTokenizer(dir, options.family));
  } else if (!isGguf) {
    const t = await loadTokenizerForModel(dir, FAMILIES, options.tokenizer);
    family ??= t.family.name;
    tokenizer = family === t.family.name ? t.tokenizer : (await loadTokenizerFile(options.tokenizer ?? path.join(dir, 'tokenizer.model'), getFamily(family))).tokenizer;
  }
  const opened = await openModel(dir, {
    families: FAMILIES,
    ...(options.backend !== undefined ? { backend: options.backend } : {}),
    ...(options.quantize !== undefined ? { quantize: options.quantize } : {}),
    ...(options.onProgress !== undefined ? { onProgress: options.onProgress } : {}),
    ...(options.family !== undefined ? { family: options.family } : {}),
    ...(options.threads !== undefined ? { threads: options.threads } : {}),
    ...(options.kvType !== undefined ? { kvType: options.kvType } : {}),
  });
  const disposeOwned = (): void => {
    if (typeof options.backend !== 'object') opened.backend.dispose?.();
  };
  if (tokenizer === undefined || family === undefined) {
    // A .gguf file: its family comes from the checkpoint, the tokenizer from the given file.
    family ??= getFamily(opened.family).name;
    try {
      tokenizer = (await loadTokenizerFile(options.tokenizer!, getFamily(family))).tokenizer;
    } catch (err) {
      disposeOwned();
      throw err;
    }
  }
  if (tokenizer.vocabSize > opened.config.vocabSize) {
    disposeOwned();
    throw new ChatGLMError(
      'MODEL_MISMATCH',
      `${dir}: the tokenizer has ${tokenizer.vocabSize} ids but the model only ${opened.config.vocabSize} rows; the tokenizer does not belong to this model`,
      { file: dir },
    );
  }
  if (options.contextLength !== undefined && options.contextLength > opened.config.seqLength) {
    disposeOwned();
    throw new ChatGLMError(
      'BAD_ARGUMENT',
      `contextLength ${options.contextLength} is larger than the model's trained context (${opened.config.seqLength} tokens); use ${opened.config.seqLength} or less`,
    );
  }
  const contextLength = options.contextLength ?? opened.config.seqLength;
  return new ChatModel({
    model: opened.model,
    tokenizer,
    format: getChatFormat(family),
    contextLength,
    name: hubModelName(dir) ?? path.basename(dir),
    // A backend instance the caller passed in stays the caller's to dispose.
    ...(typeof options.backend === 'object' ? {} : { backend: opened.backend }),
  });
}

/**
 * Which files of a repo `pull` downloads. By default what the engine reads (config and tokenizer
 * files, the weights in one format) plus the model card and licence, but not the Python modelling
 * code; --include replaces that choice with glob patterns, --exclude removes files from it.
 * Patterns follow Python's fnmatch, as huggingface-cli's --include/--exclude do: `*` also matches
 * '/', and a pattern ending in '/' means everything below that folder.
 */
import { ChatGLMError } from '../errors.js';
import type { HubFile } from './client.js';

/** fnmatch-style glob to a RegExp matching the whole path. */
export function globToRegExp(pattern: string): RegExp {
  const p = pattern.endsWith('/') ? `${pattern}*` : pattern;
  let re = '';
  for (let i = 0; i < p.length; i++) {
    const c = p[i]!;
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '[') {
      const close = p.indexOf(']', i + 2);
      if (close < 0) {
        re += '\\[';
        continue;
      }
      let body = p.slice(i + 1, close);
      if (body.startsWith('!')) body = `^${body.slice(1)}`;
      re += `[${body.replace(/\\/g, '\\\\')}]`;
      i = close;
    } else re += c.replace(/[.+^${}()|\\/]/g, '\\$&');
  }
  return new RegExp(`^${re}$`, 's');
}

export function matchesAny(file: string, patterns: readonly string[]): boolean {
  return patterns.some((p) => globToRegExp(p).test(file));
}

const ENGINE_FILES = [/^[^/]*\.json$/, /^tokenizer\.model$/, /^[^/]*\.tiktoken$/, /^README\.md$/i, /^(MODEL_)?LICEN[CS]E[^/]*$/i, /^NOTICE[^/]*$/i];
const SAFETENSORS = /^[^/]*\.safetensors$/;
const TORCH_BIN = /^pytorch_model[^/]*\.bin$/;

/** The files to download: the default choice, or the --include patterns; then --exclude. */
export function selectFiles(repo: string, files: readonly HubFile[], include: readonly string[] = [], exclude: readonly string[] = []): HubFile[] {
  let chosen: HubFile[];
  if (include.length > 0) {
    chosen = files.filter((f) => matchesAny(f.path, include));
  } else {
    const safetensors = files.filter((f) => SAFETENSORS.test(f.path));
    const weights = safetensors.length > 0 ? safetensors : files.filter((f) => TORCH_BIN.test(f.path));
    if (weights.length === 0) {
      const ggufs = files.filter((f) => f.path.toLowerCase().endsWith('.gguf')).map((f) => f.path);
      if (ggufs.length > 0) {
        throw new ChatGLMError('BAD_ARGUMENT', `${repo} holds GGUF files; choose one with --include, e.g. --include ${ggufs[0]} (it has: ${ggufs.join(', ')})`);
      }
      throw new ChatGLMError(
        'BAD_ARGUMENT',
        `${repo} has no weights this engine reads (*.safetensors, pytorch_model*.bin, *.gguf); to download anyway pass --include '*' (it has: ${preview(files)})`,
      );
    }
    chosen = files.filter((f) => weights.includes(f) || ENGINE_FILES.some((re) => re.test(f.path)));
  }
  chosen = chosen.filter((f) => !matchesAny(f.path, exclude));
  if (chosen.length === 0) {
    throw new ChatGLMError('BAD_ARGUMENT', `no file of ${repo} matches --include/--exclude (it has: ${preview(files)})`);
  }
  return chosen;
}

function preview(files: readonly HubFile[]): string {
  const names = files.map((f) => f.path);
  return names.length <= 12 ? names.join(', ') : `${names.slice(0, 12).join(', ')} and ${names.length - 12} more`;
}

/**
 * What the single-file TensorSources share: an index of entries by tensor name, built when the file
 * is opened, listed and looked up the same way. Each format only says how to read an entry's bytes.
 */
import { ChatGLMError } from '../errors.js';
import type { TensorData, TensorInfo, TensorSource } from './tensor-source.js';

/** A copy of `info` the caller may change without changing the index. */
export function copyInfo(info: TensorInfo): TensorInfo {
  return { ...info, shape: [...info.shape] };
}

export abstract class IndexedSource<E extends { info: TensorInfo }> implements TensorSource {
  abstract readonly location: string;
  protected abstract readonly entries: ReadonlyMap<string, E>;

  list(): TensorInfo[] {
    return [...this.entries.values()].map((e) => copyInfo(e.info));
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  /** The entry of `name`; a name the file does not hold is a MODEL_MISMATCH naming the file. */
  protected entry(name: string): E {
    const e = this.entries.get(name);
    if (e === undefined) throw new ChatGLMError('MODEL_MISMATCH', `${this.location}: no tensor named ${name}`, { file: this.location });
    return e;
  }

  abstract read(name: string): Promise<TensorData>;
  abstract close(): Promise<void>;
}

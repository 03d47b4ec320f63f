/**
 * Positioned reads from an open file, shared by every checkpoint reader. FileHandle.read takes at
 * most 2^31 - 1 bytes per call (a longer length aborts the process in Node's binding), and single
 * tensors get that large (GLM-4's embedding as f32 is 2.5 GB), so reads go in chunks of 1 GiB.
 */
import type { FileHandle } from 'node:fs/promises';
import { badFormat } from '../errors.js';

const MAX_READ = 1 << 30;

/** Up to `length` bytes at `position`; fewer only where the file ends first. */
export async function readUpTo(fh: FileHandle, position: number, length: number): Promise<Uint8Array> {
  const buf = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(buf, done, Math.min(length - done, MAX_READ), position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done === length ? buf : buf.subarray(0, done);
}

/** Exactly `length` bytes at `position`; a file that ends first is reported as truncated. */
export async function readExactly(fh: FileHandle, file: string, position: number, length: number, what: string): Promise<Uint8Array> {
  const buf = await readUpTo(fh, position, length);
  if (buf.byteLength < length) {
    throw badFormat(file, `file ends after ${position + buf.byteLength} bytes while reading ${what}: the file is truncated (download it again)`);
  }
  return buf;
}

import test from 'node:test';
import assert from 'node:assert/strict';
import type { FileHandle } from 'node:fs/promises';
import { ChatGLMError } from '../src/errors.js';
import { readExactly, readUpTo } from '../src/formats/file-read.js';

/** A file of `size` bytes (byte i = i & 0xff) that records every read call and refuses what Node's binding refuses. */
function fakeFile(size: number): { fh: FileHandle; calls: [number, number][] } {
  const calls: [number, number][] = [];
  const fh = {
    read: async (buf: Uint8Array, offset: number, length: number, position: number) => {
      // Node's fs binding aborts the process on a length that does not fit an int32.
      if (length > 2 ** 31 - 1) throw new Error(`read of ${length} bytes in one call`);
      calls.push([length, position]);
      const n = Math.max(0, Math.min(length, size - position));
      // Only fill small reads: the 2 GiB buffer below stays untouched (and so unallocated by the OS).
      if (n <= 4096) for (let i = 0; i < n; i++) buf[offset + i] = (position + i) & 0xff;
      return { bytesRead: n, buffer: buf };
    },
  };
  return { fh: fh as unknown as FileHandle, calls };
}

test('a read of 2 GiB or more is split into calls Node accepts, positions advancing', async () => {
  const len = 2 ** 31 + 5;
  const { fh, calls } = fakeFile(len + 100);
  const b = await readUpTo(fh, 10, len);
  assert.equal(b.byteLength, len);
  assert.deepEqual(calls, [
    [2 ** 30, 10],
    [2 ** 30, 10 + 2 ** 30],
    [5, 10 + 2 ** 31],
  ]);
});

test('readUpTo returns what is there; readExactly names the file and the truncation', async () => {
  const { fh } = fakeFile(100);
  const b = await readUpTo(fh, 90, 20);
  assert.deepEqual([...b], [90, 91, 92, 93, 94, 95, 96, 97, 98, 99]);
  assert.deepEqual([...(await readExactly(fh, 'x.bin', 95, 5, 'the tail'))], [95, 96, 97, 98, 99]);
  await assert.rejects(readExactly(fh, 'x.bin', 90, 20, 'tensor w'), (e: unknown) => {
    assert.ok(e instanceof ChatGLMError);
    assert.equal(e.code, 'BAD_FORMAT');
    assert.match(e.message, /x\.bin/);
    assert.match(e.message, /ends after 100 bytes while reading tensor w: the file is truncated/);
    return true;
  });
});

// Helpers for the code-interpreter tests: whether the sandbox can exist here, and a small PNG
// decoder (written from the PNG specification) to check the figures the sandbox returns.
import { execFileSync } from 'node:child_process';
import { inflateSync } from 'node:zlib';
import { findExecutable } from '../../src/agent/interpreter/sandbox-command.js';

/**
 * Why the sandbox tests cannot run here, or undefined when they can. Under CI the packages are
 * installed by .ci/run, so there a missing sandbox is a failure, not a skip.
 */
export function sandboxSkipReason(): string | undefined {
  let reason: string | undefined;
  if (findExecutable('bwrap') === undefined) reason = 'bwrap is not installed';
  else {
    try {
      execFileSync('/usr/bin/python3', ['-c', 'import numpy, matplotlib'], { stdio: 'ignore', timeout: 30_000 });
    } catch {
      reason = '/usr/bin/python3 with numpy and matplotlib is not installed';
    }
  }
  if (reason === undefined) return undefined;
  if (process.env.CI) return undefined;
  return `${reason} (apt-get install -y bubblewrap python3-numpy python3-matplotlib)`;
}

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export interface DecodedPng {
  width: number;
  height: number;
  /** RGBA, 8 bits per channel, row by row. */
  rgba: Uint8Array;
}

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** Decodes an 8-bit RGB or RGBA, non-interlaced PNG (what matplotlib's Agg writes); throws otherwise. */
export function decodePng(data: Uint8Array): DecodedPng {
  SIGNATURE.forEach((b, i) => {
    if (data[i] !== b) throw new Error('not a PNG signature');
  });
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let offset = 8;
  let width = 0;
  let height = 0;
  let colorType = -1;
  const idat: Uint8Array[] = [];
  let ended = false;
  while (offset < data.length) {
    const length = view.getUint32(offset);
    const typeAndData = data.subarray(offset + 4, offset + 8 + length);
    const type = String.fromCharCode(...typeAndData.subarray(0, 4));
    const body = typeAndData.subarray(4);
    if (crc32(typeAndData) !== view.getUint32(offset + 8 + length)) throw new Error(`bad CRC in chunk ${type}`);
    if (type === 'IHDR') {
      width = view.getUint32(offset + 8);
      height = view.getUint32(offset + 12);
      const bitDepth = body[8];
      colorType = body[9]!;
      if (bitDepth !== 8 || (colorType !== 2 && colorType !== 6) || body[12] !== 0) throw new Error('unsupported PNG layout');
    } else if (type === 'IDAT') idat.push(body);
    else if (type === 'IEND') {
      ended = true;
      break;
    }
    offset += 12 + length;
  }
  if (!ended) throw new Error('PNG has no IEND');
  const channels = colorType === 6 ? 4 : 3;
  const stride = width * channels;
  const raw = inflateSync(Buffer.concat(idat));
  if (raw.length !== height * (stride + 1)) throw new Error(`PNG data is ${raw.length} bytes, expected ${height * (stride + 1)}`);
  const pixels = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const a = x >= channels ? pixels[y * stride + x - channels]! : 0;
      const b = y > 0 ? pixels[(y - 1) * stride + x]! : 0;
      const c = x >= channels && y > 0 ? pixels[(y - 1) * stride + x - channels]! : 0;
      let predictor: number;
      if (filter === 0) predictor = 0;
      else if (filter === 1) predictor = a;
      else if (filter === 2) predictor = b;
      else if (filter === 3) predictor = (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c;
        const pa = Math.abs(p - a);
        const pb = Math.abs(p - b);
        const pc = Math.abs(p - c);
        predictor = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      } else throw new Error(`bad PNG filter ${filter}`);
      pixels[y * stride + x] = (line[x]! + predictor) & 0xff;
    }
  }
  if (channels === 4) return { width, height, rgba: pixels };
  const rgba = new Uint8Array(width * height * 4);
  for (let i = 0; i < width * height; i++) {
    rgba.set(pixels.subarray(i * 3, i * 3 + 3), i * 4);
    rgba[i * 4 + 3] = 255;
  }
  return { width, height, rgba };
}

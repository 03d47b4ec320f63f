// Shared helpers for the native-backend tests: loading the addon (or a skip reason), seeded random
// data, and error measures.
import { loadAddon } from '../../src/backend/native/addon.js';
import { NativeBackend } from '../../src/backend/native/index.js';

/** Why the native tests skip, or undefined when the addon loads. */
export function nativeSkipReason(): string | undefined {
  const load = loadAddon();
  return load.addon === undefined ? `native addon not built: ${load.reason}` : undefined;
}

/** The kernel variants this CPU runs (scalar always first). */
export function nativeIsas(): string[] {
  const load = loadAddon();
  return load.addon === undefined ? [] : load.addon.isas();
}

export function nativeBackend(isa?: string, threads = 2): NativeBackend {
  const load = loadAddon();
  if (load.addon === undefined) throw new Error(load.reason);
  return new NativeBackend(load.addon, isa === undefined ? { threads } : { threads, isa });
}

/** The seeded mulberry32 generator of the model fixtures, so failures reproduce. */
export { rng as seeded } from './model-fixtures.js';

export function randomF32(rand: () => number, n: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (rand() * 2 - 1) * scale;
  return out;
}

/** ||a - b|| / ||b|| (L2), the measure llama.cpp's own kernel tests use. */
export function relError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - b[i]!;
    if (!Number.isFinite(a[i]!)) return Infinity;
    num += d * d;
    den += b[i]! * b[i]!;
  }
  return Math.sqrt(num / Math.max(den, 1e-30));
}

export function bytesOf(v: Float32Array): Uint8Array {
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

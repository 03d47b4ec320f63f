/**
 * Loads the compiled addon (build/Release/chatglm_native.node, built by scripts/build-native.mjs at
 * install time). Loading never throws: callers get `undefined` plus the reason, so the engine can
 * fall back to the reference backend.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * A native context (native/ops.c cg_ctx): the thread pool, kernel table and scratch buffers of one
 * backend. Opaque; freed with its JS object, or early with `release`.
 */
declare const contextBrand: unique symbol;
export type NativeContext = { readonly [contextBrand]: true };
declare const layerBrand: unique symbol;
/** One decoder layer's weights and shape, checked once (`layerWeights`); holds its arrays alive. */
export type NativeLayer = { readonly [layerBrand]: true };

/** The functions the C side exports (native/addon.c). Arrays are used in place, never copied. */
export interface NativeAddon {
  /** Kernel variants this CPU runs, best last. */
  isas(): string[];
  /** threads 0 = all online cores; isa '' = the best variant. Throws when the variant is not available. */
  createContext(threads: number, isa: string): NativeContext;
  info(ctx: NativeContext): NativeInfo;
  /** Stops the context's threads and frees its buffers now; they come back if it is used again. */
  release(ctx: NativeContext): void;
  /** Rows in ggml's layout -> the row-interleaved layout matmul/embedding read (same size): q4_0/q8_0, and the k-quants a context lists in `repackTypes`. */
  repack(type: number, rows: number, cols: number, src: Uint8Array, dst: Uint8Array): void;
  /**
   * Zeroed memory for a repacked weight matrix, in transparent huge pages where the OS offers them
   * (Linux); null elsewhere, and the caller allocates an ordinary array instead.
   */
  allocWeights(bytes: number): Uint8Array | null;
  /** For q4_0/q8_0, `w` must be in the repacked layout. */
  matmul(ctx: NativeContext, type: number, rows: number, cols: number, w: Uint8Array, x: Float32Array, n: number, out: Float32Array, bias: Float32Array | null): void;
  embedding(ctx: NativeContext, type: number, rows: number, cols: number, w: Uint8Array, ids: Int32Array, out: Float32Array): void;
  rmsnorm(ctx: NativeContext, x: Float32Array, w: Float32Array, n: number, dim: number, eps: number, out: Float32Array): void;
  rope(ctx: NativeContext, x: Float32Array, n: number, nHeads: number, headDim: number, rotaryDim: number, positions: Float32Array, base: number): void;
  swiglu(ctx: NativeContext, x: Float32Array, n: number, half: number, out: Float32Array): void;
  add(ctx: NativeContext, a: Float32Array, b: Float32Array, len: number): void;
  attention(
    ctx: NativeContext,
    q: Float32Array,
    k: Float32Array,
    v: Float32Array,
    out: Float32Array,
    kCache: Uint16Array | Uint8Array,
    vCache: Uint16Array | Uint8Array,
    positions: number,
    rowStart: number,
    nTokens: number,
    startPos: number,
    nHeads: number,
    nGroups: number,
    headDim: number,
    scale: number,
    /** 0: f16 caches in Uint16Arrays (default); 1: q8_0 caches in Uint8Arrays. */
    kvType?: number,
  ): number;
  /** A decoder layer's weights (q4_0/q8_0 already repacked) and shape, checked once, for `layer`. */
  layerWeights(
    inputNorm: Float32Array,
    postNorm: Float32Array,
    qkvBias: Float32Array | null,
    qkvType: number,
    qkv: Uint8Array,
    denseType: number,
    dense: Uint8Array,
    upType: number,
    up: Uint8Array,
    downType: number,
    down: Uint8Array,
    nHeads: number,
    nGroups: number,
    headDim: number,
    rotaryDim: number,
    ropeBase: number,
    eps: number,
    scale: number,
    hidden: number,
    ffn: number,
  ): NativeLayer;
  /** One GLM decoder layer for one sequence, in place on x (native/ops.c cg_layer); returns attention's scratch bytes. */
  layer(ctx: NativeContext, layer: NativeLayer, x: Float32Array, n: number, kCache: Uint16Array | Uint8Array, vCache: Uint16Array | Uint8Array, positions: number, startPos: number, pos: Float32Array, kvType?: number): number;
  /**
   * One GLM decoder layer over several sequences, in place on x[n, hidden] (native/batch_ops.c
   * cg_batch_layer_kv). meta: per sequence [rowStart, nTokens, startPos, capacity, kvType (as for
   * attention)]; the caches of that layer in the same order. Returns attention's scratch bytes. Absent from an addon built
   * before it existed.
   */
  batchLayer?(
    ctx: NativeContext,
    layer: NativeLayer,
    x: Float32Array,
    n: number,
    meta: Int32Array,
    kCaches: readonly (Uint16Array | Uint8Array)[],
    vCaches: readonly (Uint16Array | Uint8Array)[],
    pos: Float32Array,
  ): number;
  /** Read bandwidth of this machine in GB/s: all threads summing a buffer of `mib` MiB, best of `iters`. */
  membw(ctx: NativeContext, mib: number, iters: number): number;
  /** The int8 dot-product loops (native/int8_peak.c) this CPU runs, widest first. */
  int8PeakKinds(): string[];
  /** Ops per second (multiply and add counted apart) of `threads` threads running `iters` iterations of a register-only loop. */
  int8Peak(kind: string, threads: number, iters: number): number;
}

export interface NativeInfo {
  /** The kernel variant in use. */
  isa: string;
  threads: number;
  /** Variants this CPU can run. */
  isas: string[];
  /** Weight type codes this context reads repacked: loadMatrix must `repack` them. */
  repackTypes: number[];
}

export type AddonLoad = { addon: NativeAddon; path: string } | { addon: undefined; reason: string };

let cached: AddonLoad | undefined;

/** Where the addon is looked for: $CHATGLM_NATIVE_ADDON, else <package root>/build/Release. */
export function addonPath(): string {
  const override = process.env['CHATGLM_NATIVE_ADDON'];
  if (override !== undefined && override !== '') return path.resolve(override);
  // This file is dist/src/backend/native/addon.js: the package root is four levels up.
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');
  return path.join(root, 'build', 'Release', 'chatglm_native.node');
}

export function loadAddon(): AddonLoad {
  if (cached !== undefined) return cached;
  const file = addonPath();
  if (!existsSync(file)) {
    cached = { addon: undefined, reason: `${file} does not exist (run \`npm run build:native\` or reinstall with a C compiler)` };
    return cached;
  }
  try {
    const require = createRequire(import.meta.url);
    cached = { addon: require(file) as NativeAddon, path: file };
  } catch (err) {
    cached = { addon: undefined, reason: `${file} failed to load: ${err instanceof Error ? err.message : String(err)}` };
  }
  return cached;
}

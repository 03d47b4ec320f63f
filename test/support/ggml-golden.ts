/**
 * llama.cpp's own quantizer as a test oracle: test/support/ggml-golden.c, compiled with the system C
 * compiler, dlopens libggml-base.so from node-llama-cpp's prebuilt binaries (installed on demand by
 * `npm run bench` into .bench/llama, never a dependency) and runs ggml_quantize_chunk or a
 * dequantize_row_* on our inputs. Tests skip, saying why, when either is missing (CI installs neither).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { repoRoot } from './formats-tmp.js';

export const GGML_TYPE_ID: Record<string, number> = {
  q4_0: 2,
  q4_1: 3,
  q5_0: 6,
  q5_1: 7,
  q8_0: 8,
  q2_K: 10,
  q3_K: 11,
  q4_K: 12,
  q5_K: 13,
  q6_K: 14,
  q8_K: 15,
};

/** libggml-base.so of the node-llama-cpp build for this platform, or undefined. */
export function findGgmlBase(): string | undefined {
  const env = process.env['CHATGLM_GGML_BASE'];
  if (env !== undefined && env !== '') return existsSync(env) ? env : undefined;
  const scope = path.join(repoRoot, '.bench', 'llama', 'node_modules', '@node-llama-cpp');
  const plat = `${process.platform}-${process.arch}`;
  const lib = process.platform === 'darwin' ? 'libggml-base.dylib' : 'libggml-base.so';
  const file = path.join(scope, plat, 'bins', plat, lib);
  return existsSync(file) ? file : undefined;
}

export interface GgmlGolden {
  quantize(type: string, x: Float32Array, rows: number, cols: number): Promise<Uint8Array>;
  dequantize(type: string, bytes: Uint8Array, rows: number, cols: number): Promise<Float32Array>;
  close(): Promise<void>;
}

/** The compiled harness, or the reason it cannot be had. */
export async function ggmlGolden(): Promise<GgmlGolden | string> {
  const lib = findGgmlBase();
  if (lib === undefined) {
    return 'node-llama-cpp is not installed in .bench/llama (run `npm run bench` once, or npm install node-llama-cpp@3.21.1 there); golden ggml bytes unavailable';
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), 'chatglm-ggml-golden-'));
  const exe = path.join(dir, 'ggml-golden');
  const src = path.join(repoRoot, 'test', 'support', 'ggml-golden.c');
  const cc = spawnSync('cc', ['-O1', '-std=c11', src, '-ldl', '-o', exe], { encoding: 'utf8' });
  if (cc.status !== 0) {
    await rm(dir, { recursive: true, force: true });
    return `no working C compiler (cc): ${(cc.stderr ?? String(cc.error)).trim().split('\n')[0]}`;
  }
  let n = 0;
  const run = async (mode: string, type: string, rows: number, cols: number, input: Uint8Array): Promise<Uint8Array> => {
    const id = GGML_TYPE_ID[type];
    if (id === undefined) throw new Error(`no ggml id for ${type}`);
    const inFile = path.join(dir, `in${n}`);
    const outFile = path.join(dir, `out${n++}`);
    await writeFile(inFile, input);
    const r = spawnSync(exe, [lib, mode, String(id), String(rows), String(cols), inFile, outFile], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`ggml-golden ${mode} ${type} exited ${r.status}: ${r.stderr}`);
    return new Uint8Array(await readFile(outFile));
  };
  return {
    quantize: (type, x, rows, cols) => run('quant', type, rows, cols, new Uint8Array(x.buffer, x.byteOffset, rows * cols * 4)),
    dequantize: async (type, bytes, rows, cols) => {
      const b = await run('deq', type, rows, cols, bytes);
      return new Float32Array(b.buffer, b.byteOffset, rows * cols);
    },
    close: () => rm(dir, { recursive: true, force: true }),
  };
}

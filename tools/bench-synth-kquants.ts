/**
 * Random but valid blocks of every ggml type llama.cpp's Q4_K_M and Q5_K_M mixes use (q4_K, q5_K,
 * q6_K and the fallbacks q5_0, q5_1, q8_0 for rows that are not whole super-blocks), written
 * directly for the benchmark's synthetic files: random quant and scale bytes, then each block's f16
 * factors (d, dmin or m) set so the weights come out at about N(0, 0.02) with a mean near 0. No f32
 * matrix is built and no quantizer runs, so a 6B-shape file takes about as long as the disk.
 */
import { randomFillSync } from 'node:crypto';
import { kMixTensorType, type KMix } from '../src/convert/gguf-kquant-mix.js';
import { GGML_TYPE_BY_NAME } from '../src/formats/ggml-types.js';
import { f32ToF16Bits } from '../src/numeric/half.js';

export type KSynthMix = Extract<KMix, 'q4_k_m' | 'q5_k_m'>;
export const K_SYNTH_MIXES: readonly KSynthMix[] = ['q4_k_m', 'q5_k_m'];

export function isKSynthMix(s: string): s is KSynthMix {
  return (K_SYNTH_MIXES as readonly string[]).includes(s);
}

const STD = 0.02;

/**
 * Where each block's f16 factors go and their typical values: [byte offset, value]. With uniform
 * random bytes, q4_K's 6-bit scales and mins average 31.5 and its 4-bit quants 7.5 (std 4.6), so
 * d * 31.5 * 4.6 ~ STD and dmin = 7.5 d centres the values; likewise for the other types.
 */
function blockFactors(type: string): { bytes: number; factors: [number, number][] } {
  const bytes = GGML_TYPE_BY_NAME.get(type)?.typeSize;
  if (bytes === undefined) throw new Error(`unknown ggml type ${type}`);
  const s3 = Math.sqrt(3);
  switch (type) {
    case 'Q4_0': return { bytes, factors: [[0, (STD * s3) / 8]] };
    case 'Q8_0': return { bytes, factors: [[0, (STD * s3) / 127]] };
    case 'Q5_0': return { bytes, factors: [[0, (STD * s3) / 16]] };
    case 'Q5_1': return { bytes, factors: [[0, (STD * s3) / 16], [2, (-16 * STD * s3) / 16]] };
    case 'Q4_K': {
      const d = STD / (31.5 * 4.6);
      return { bytes, factors: [[0, d], [2, 7.5 * d]] };
    }
    case 'Q5_K': {
      const d = STD / (31.5 * 9.2);
      return { bytes, factors: [[0, d], [2, 15.5 * d]] };
    }
    case 'Q6_K': return { bytes, factors: [[208, STD / (74 * 18.5)]] }; /* int8 scales (std 74) x (q - 32) (std 18.5) */
    default: throw new Error(`no random blocks for ${type}`);
  }
}

/** rows x cols weights of ggml type `type` ('Q4_K', ...): random blocks, factors jittered +-25%. */
export function randomTypedRows(type: string, rows: number, cols: number): Uint8Array {
  const { bytes, factors } = blockFactors(type);
  const per = GGML_TYPE_BY_NAME.get(type)!.blockSize;
  const nBlocks = (rows * cols) / per;
  const out = new Uint8Array(nBlocks * bytes);
  randomFillSync(out);
  const bits = factors.map(([, v]) => [0.75, 1, 1.25].map((j) => f32ToF16Bits(v * j)));
  for (let b = 0, o = 0; b < nBlocks; b++, o += bytes) {
    const jitter = out[o + bytes - 1]! % 3; // one random byte picks the jitter of all factors
    for (let f = 0; f < factors.length; f++) {
      const h = bits[f]![jitter]!;
      const at = o + factors[f]![0];
      out[at] = h & 0xff;
      out[at + 1] = h >> 8;
    }
  }
  return out;
}

/** The ggml type name of one tensor of a synthetic file in `mix`, by llama-quantize's rules. */
export function kSynthTensorType(mix: KSynthMix, name: string, rowLength: number, layers: number, gqa: number): string {
  return kMixTensorType(mix, name, rowLength, layers, gqa);
}

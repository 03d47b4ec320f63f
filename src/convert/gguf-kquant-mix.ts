/**
 * llama-quantize's per-tensor type choice (llama.cpp src/llama-quant.cpp, llama_tensor_get_type, as
 * of the release node-llama-cpp 3.21.1 ships) for the k-quant mixes, restricted to the tensors of the
 * `chatglm` architecture, no imatrix:
 *
 *   output.weight      q6_K (q8_0 when its rows are not a multiple of 256)
 *   token_embd.weight  the mix's base type
 *   blk.N.attn_qkv     treated as attn_v ("more sensitive"): Q2_K: q4_K if heads/kv-heads >= 4,
 *                      else q3_K; Q3_K_M: q5_K for N < 2, else q4_K; Q4_K_M and Q5_K_M: q6_K where
 *                      use_more_bits(N, n), else base
 *   blk.N.attn_output  Q2_K: q3_K, Q3_K_M: q4_K, else base
 *   blk.N.ffn_down     Q2_K: q3_K; Q3_K_M: q5_K for N < n/16, else q4_K; Q4_K_M and Q5_K_M:
 *                      q6_K where use_more_bits(N, n), else base
 *   blk.N.ffn_up       base
 * use_more_bits(i, n) = i < n/8 || i >= 7n/8 || (i - n/8) % 3 == 2 (integer division, as in C).
 * A tensor whose rows are not a whole number of 256-element super-blocks falls back as llama.cpp
 * does: q2_K/q3_K -> q4_0, q4_K -> q5_0, q5_K -> q5_1, q6_K -> q8_0, and to f16 when even 32 does
 * not divide the row (ChatGLM3-6B's ffn_down rows of 13696 take these fallbacks).
 * Older llama.cpp releases differ: they gave a fused attn_qkv q5_K / q6_K in Q4_K_M / Q5_K_M and
 * fell back from q2_K/q3_K to iq4_nl.
 */
import { ChatGLMError } from '../errors.js';

export type KMix = 'q2_k' | 'q3_k_m' | 'q4_k_m' | 'q5_k_m' | 'q6_k';
export const K_MIXES: readonly KMix[] = ['q2_k', 'q3_k_m', 'q4_k_m', 'q5_k_m', 'q6_k'];

export function isKMix(s: string): s is KMix {
  return (K_MIXES as readonly string[]).includes(s);
}

/** llama_ftype of each mix, for general.file_type. */
export const K_MIX_FILE_TYPE: Readonly<Record<KMix, number>> = { q2_k: 10, q3_k_m: 12, q4_k_m: 15, q5_k_m: 17, q6_k: 18 };

/** ggml type names (gguf.ts GGML_TYPES) a mix may choose. */
export type KMixTensorType = 'Q2_K' | 'Q3_K' | 'Q4_K' | 'Q5_K' | 'Q6_K' | 'Q4_0' | 'Q5_0' | 'Q5_1' | 'Q8_0' | 'F16';

const BASE: Readonly<Record<KMix, KMixTensorType>> = { q2_k: 'Q2_K', q3_k_m: 'Q3_K', q4_k_m: 'Q4_K', q5_k_m: 'Q5_K', q6_k: 'Q6_K' };

function useMoreBits(i: number, n: number): boolean {
  const n8 = Math.trunc(n / 8);
  return i < n8 || i >= Math.trunc((7 * n) / 8) || (i - n8) % 3 === 2;
}

/**
 * The ggml type llama-quantize gives a 2-D tensor of the chatglm architecture in `mix`: `name` is
 * the GGUF name, `rowLength` its ne[0], `nLayers` the block count, `gqa` attention heads per KV head.
 */
export function kMixTensorType(mix: KMix, name: string, rowLength: number, nLayers: number, gqa = 1): KMixTensorType {
  const base = BASE[mix];
  let t: KMixTensorType = base;
  const layer = /^blk\.(\d+)\./.exec(name);
  const i = layer === null ? -1 : Number(layer[1]);
  if (name === 'output.weight') {
    t = rowLength % 256 !== 0 ? 'Q8_0' : 'Q6_K';
  } else if (name === 'token_embd.weight') {
    t = base;
  } else if (name.includes('attn_qkv.weight')) {
    if (mix === 'q2_k') t = gqa >= 4 ? 'Q4_K' : 'Q3_K';
    else if (mix === 'q3_k_m') t = i < 2 ? 'Q5_K' : 'Q4_K';
    else if ((mix === 'q4_k_m' || mix === 'q5_k_m') && useMoreBits(i, nLayers)) t = 'Q6_K';
  } else if (name.includes('ffn_down')) {
    if (mix === 'q2_k') t = 'Q3_K';
    else if (mix === 'q3_k_m') t = i < Math.trunc(nLayers / 16) ? 'Q5_K' : 'Q4_K';
    else if ((mix === 'q4_k_m' || mix === 'q5_k_m') && useMoreBits(i, nLayers)) t = 'Q6_K';
  } else if (name.includes('attn_output.weight')) {
    if (mix === 'q2_k') t = 'Q3_K';
    else if (mix === 'q3_k_m') t = 'Q4_K';
  }
  if (t === 'Q8_0' || rowLength % 256 === 0) return t;
  // llama.cpp's fallback for rows that do not split into super-blocks
  const fb: Record<string, KMixTensorType> = { Q2_K: 'Q4_0', Q3_K: 'Q4_0', Q4_K: 'Q5_0', Q5_K: 'Q5_1', Q6_K: 'Q8_0' };
  const f = fb[t];
  if (f === undefined) throw new ChatGLMError('UNSUPPORTED', `${name}: no fallback type for ${t} with rows of ${rowLength}`);
  return rowLength % 32 === 0 ? f : 'F16';
}

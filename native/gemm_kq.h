/*
 * Prefill GEMM for k-quant weights (gemm_kquants_avx512.c): many tokens against q4_K / q5_K / q6_K
 * weights and q8_K activations, 16 weight rows x up to 8 tokens per call. The weights stay in
 * ggml's row layout in memory; a thread first packs 16 rows at a time ("panel") into a
 * row-interleaved scratch layout (unsigned 8-bit quants, one row per 32-bit lane, sub-block scales
 * and mins as 16-lane vectors), then runs every 8-token tile of the prompt over the panels it
 * packed, so the unpacking is paid once per matmul rather than once per 8 tokens.
 *
 * Result of row r for token t: the sum over super-blocks, in order, of
 *   d_a * (d * (float)isum - dmin * (float)msum)
 * where isum = sum_j sc_j * (q . a)_j with the type's offset included, and msum = sum_j m_j * bsum_j
 * are the exact int32 sums (q6_K: dmin = msum = 0), then + bias[r]; the same float operations in the
 * same order as the portable kernel (gen_kq_dot in kernels_kquants.inc), so bit-identical to it.
 */
#ifndef CHATGLM_GEMM_KQ_H
#define CHATGLM_GEMM_KQ_H

#include "kernels.h"

#define CG_GEMM_KQ_ROWS 16
#define CG_GEMM_KQ_TOKENS 8

typedef struct cg_gemm_kq {
  /* Bytes of one packed panel of 16 rows of nbk super-blocks; 0 for a type without a kernel. */
  size_t (*panel_bytes)(int type, int nbk);
  /* Packs rows w, w + row_bytes, ... (nr <= 16 of them; the rest of the panel is zero weights)
   * into panel (64-byte aligned, panel_bytes(type, nbk) bytes). */
  void (*pack)(int type, int nbk, const uint8_t *w, size_t row_bytes, int nr, uint8_t *panel);
  /* The panel against nt <= 8 activation rows a + t * astride (nbk q8_K blocks each):
   * out[t * ostride + r] = row r . token t + bias[r] for r < nr (bias may be NULL: + 0.0f). */
  void (*tile)(int type, int nbk, const uint8_t *panel, const block_q8_K *a, size_t astride, int nt, const float *bias,
               int nr, float *out, size_t ostride);
  /* Weights the loader repacked to the x16 layout (kq16.h), for the types x16_types accepts (NULL:
   * none). x16_dot: one group of 16 rows of nbk super-blocks against nt <= 8 activation rows:
   * out[t * 16 + r] = row r . token t, bit-identical to the tile and the portable kernel (same
   * float steps). x16_pack: the group's panel for tile, as pack makes it from ggml's rows. */
  int (*x16_types)(int type);
  void (*x16_dot)(int type, int nbk, const uint8_t *group, const block_q8_K *a, size_t astride, int nt, float *out);
  void (*x16_pack)(int type, int nbk, const uint8_t *group, uint8_t *panel);
} cg_gemm_kq;

/*
 * The same for q4_1 / q5_0 / q5_1 (the k-quant mixes' ffn_down, whose rows are not whole 256-blocks)
 * against our 8-bit activation blocks (block_qa): nb blocks of 32 per row; asum[t * astride + i] is
 * the exact integer sum of token t's block i quants (q5_0's -16 comes back through it). Row r, token t:
 * the sum over blocks, in order, of d * d_a * (float)isum + m * s_a (q5_0: m = 0), isum the exact
 * int32 dot of the signed quants, then + bias[r]: gen_lq_dot's float steps, bit-identical to it.
 */
typedef struct cg_gemm_lq {
  size_t (*panel_bytes)(int type, int nb);
  void (*pack)(int type, int nb, const uint8_t *w, size_t row_bytes, int nr, uint8_t *panel);
  void (*tile)(int type, int nb, const uint8_t *panel, const block_qa *a, const int32_t *asum, size_t astride, int nt,
               const float *bias, int nr, float *out, size_t ostride);
  /* As cg_gemm_kq's x16 members, for q4_1 / q5_0 / q5_1 repacked to the x16 layout (kq16.h):
   * x16_dot: one group of 16 rows of nb blocks against nt <= 8 activation rows (asum as for tile;
   * read for q5_0 only): out[t * 16 + r] = row r . token t, bit-identical to tile and gen_lq_dot.
   * x16_pack: the group's panel for tile, byte for byte what pack makes of ggml's rows. */
  int (*x16_types)(int type);
  void (*x16_dot)(int type, int nb, const uint8_t *group, const block_qa *a, const int32_t *asum, size_t astride, int nt,
                  float *out);
  void (*x16_pack)(int type, int nb, const uint8_t *group, uint8_t *panel);
} cg_gemm_lq;

#if defined(__x86_64__) || defined(_M_X64)
extern const cg_gemm_kq cg_gemm_kq_avx512;
extern const cg_gemm_lq cg_gemm_lq_avx512;
#endif

#endif

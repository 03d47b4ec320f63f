/*
 * Prefill GEMM kernels (gemm_avx512.c): many tokens against q4_0/q8_0 weights in the x8 layout,
 * register-blocked 16 weight rows (two x8 groups) x 8 tokens, on 512-bit registers. The kernel
 * table's gemm_* entries point here where the ISA has them (NULL elsewhere: the matmul then uses
 * the 4-token x8 kernels).
 */
#ifndef CHATGLM_GEMM_H
#define CHATGLM_GEMM_H

#include "kernels.h"

/*
 * Rows of groups w0 and w1 (nb x8 records each) against the 8 activation rows a + t * astride:
 * out[t * ostride + r] = dot(row r, token t) + bias[r] for r < 16 (rows 0-7 from w0, 8-15 from w1;
 * bias may be NULL), bit-identical to what the same table's x8 kernels give for that row and token.
 */
typedef void (*cg_gemm_fn)(int nb, const uint8_t *w0, const uint8_t *w1, const block_qa *a, size_t astride,
                           const float *bias, float *out, size_t ostride);

#if defined(__x86_64__) || defined(_M_X64)
void cg_gemm_q4_0_16x8_avx512(int nb, const uint8_t *w0, const uint8_t *w1, const block_qa *a, size_t astride,
                              const float *bias, float *out, size_t ostride);
void cg_gemm_q8_0_16x8_avx512(int nb, const uint8_t *w0, const uint8_t *w1, const block_qa *a, size_t astride,
                              const float *bias, float *out, size_t ostride);
#endif

#endif

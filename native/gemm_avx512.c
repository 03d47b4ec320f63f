/*
 * Prefill GEMM on AVX-512 VNNI (declarations and contract in gemm.h). Where the decode-shaped x8
 * kernels put 8 rows in a 256-bit register, these put 16 (two x8 groups side by side) in a 512-bit
 * one: on cores with full-width 512-bit units that is twice the int8 work per instruction
 * (tools/bench-int8-peak measures both). Each weight record is unpacked once per block and used
 * for 8 tokens; each token keeps its 16 rows' float accumulators across the whole row.
 *
 * Bit-identical to the x8 kernels of the same table (x8_*_1, x8_*_4, x8_*_1g4): a row's result must
 * not depend on how many tokens share the matmul (a sequence's logits are the same alone, in
 * chunks and batched with others). So the arithmetic is theirs, in the same order: the exact int32
 * dot product of the unsigned weights (q4_0 nibbles q + 8, q8_0 flipped to q + 128) with the
 * activation quants, acc = fma(float(p), dw * da, acc) and corr = fma(dw, sa, corr) per block, and
 * acc - offset * corr at the end.
 */
#if defined(__x86_64__) || defined(_M_X64)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")
#endif
#include <immintrin.h>
#include <string.h>

#include "gemm.h"

#define GT 8 /* tokens per tile */

static inline int32_t ld_i32(const int8_t *p) {
  int32_t v;
  memcpy(&v, p, 4);
  return v;
}

/* Chunk c (32 bytes: 8 rows x 4 quants) of two groups' records side by side in one register. */
static inline __m512i pair_chunk(const uint8_t *q0, const uint8_t *q1, int c) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(q0 + 32 * c))),
                            _mm256_loadu_si256((const __m256i *)(q1 + 32 * c)), 1);
}

/* The 16 f16 row scales of the two records. */
static inline __m512 pair_scales(const uint8_t *r0, const uint8_t *r1) {
  return _mm512_cvtph_ps(_mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)r0)),
                                                 _mm_loadu_si128((const __m128i *)r1), 1));
}

static inline void store_tile(const __m512 *acc, const __m512 *corr, float offset, const float *bias, float *out, size_t ostride) {
  const __m512 b = bias ? _mm512_loadu_ps(bias) : _mm512_setzero_ps();
  const __m512 off = _mm512_set1_ps(offset);
  for (int t = 0; t < GT; t++) _mm512_storeu_ps(out + (size_t)t * ostride, _mm512_add_ps(_mm512_fnmadd_ps(off, corr[t], acc[t]), b));
}

void cg_gemm_q4_0_16x8_avx512(int nb, const uint8_t *w0, const uint8_t *w1, const block_qa *a, size_t astride,
                              const float *bias, float *out, size_t ostride) {
  const __m512i m4 = _mm512_set1_epi8(0x0f);
  __m512 acc[GT], corr[GT];
  for (int t = 0; t < GT; t++) acc[t] = corr[t] = _mm512_setzero_ps();
  for (int i = 0; i < nb; i++, w0 += X8_Q4_BYTES, w1 += X8_Q4_BYTES) {
    const __m512 dw = pair_scales(w0, w1);
    __m512i lo[4], hi[4];
    for (int c = 0; c < 4; c++) {
      const __m512i u = pair_chunk(w0 + 16, w1 + 16, c);
      lo[c] = _mm512_and_si512(u, m4);
      hi[c] = _mm512_and_si512(_mm512_srli_epi16(u, 4), m4);
    }
#pragma GCC unroll 8
    for (int t = 0; t < GT; t++) {
      const block_qa *at = a + (size_t)t * astride + i;
      /* one chain per token: the 8 tokens' chains are independent, which covers the latency */
      __m512i p = _mm512_setzero_si512();
      p = _mm512_dpbusd_epi32(p, lo[0], _mm512_set1_epi32(ld_i32(at->qs + 0)));
      p = _mm512_dpbusd_epi32(p, hi[0], _mm512_set1_epi32(ld_i32(at->qs + 16)));
      p = _mm512_dpbusd_epi32(p, lo[1], _mm512_set1_epi32(ld_i32(at->qs + 4)));
      p = _mm512_dpbusd_epi32(p, hi[1], _mm512_set1_epi32(ld_i32(at->qs + 20)));
      p = _mm512_dpbusd_epi32(p, lo[2], _mm512_set1_epi32(ld_i32(at->qs + 8)));
      p = _mm512_dpbusd_epi32(p, hi[2], _mm512_set1_epi32(ld_i32(at->qs + 24)));
      p = _mm512_dpbusd_epi32(p, lo[3], _mm512_set1_epi32(ld_i32(at->qs + 12)));
      p = _mm512_dpbusd_epi32(p, hi[3], _mm512_set1_epi32(ld_i32(at->qs + 28)));
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_mul_ps(dw, _mm512_set1_ps(at->d)), acc[t]);
      corr[t] = _mm512_fmadd_ps(dw, _mm512_set1_ps(at->s), corr[t]);
    }
  }
  store_tile(acc, corr, 8.0f, bias, out, ostride);
}

void cg_gemm_q8_0_16x8_avx512(int nb, const uint8_t *w0, const uint8_t *w1, const block_qa *a, size_t astride,
                              const float *bias, float *out, size_t ostride) {
  const __m512i flip = _mm512_set1_epi8((char)0x80);
  __m512 acc[GT], corr[GT];
  for (int t = 0; t < GT; t++) acc[t] = corr[t] = _mm512_setzero_ps();
  for (int i = 0; i < nb; i++, w0 += X8_Q8_BYTES, w1 += X8_Q8_BYTES) {
    const __m512 dw = pair_scales(w0, w1);
    __m512i u[8];
    /* signed q to unsigned q + 128, as the x8 kernels do */
    for (int c = 0; c < 8; c++) u[c] = _mm512_xor_si512(pair_chunk(w0 + 16, w1 + 16, c), flip);
#pragma GCC unroll 8
    for (int t = 0; t < GT; t++) {
      const block_qa *at = a + (size_t)t * astride + i;
      __m512i p = _mm512_setzero_si512();
      for (int c = 0; c < 8; c++) p = _mm512_dpbusd_epi32(p, u[c], _mm512_set1_epi32(ld_i32(at->qs + 4 * c)));
      acc[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_mul_ps(dw, _mm512_set1_ps(at->d)), acc[t]);
      corr[t] = _mm512_fmadd_ps(dw, _mm512_set1_ps(at->s), corr[t]);
    }
  }
  store_tile(acc, corr, 128.0f, bias, out, ostride);
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif

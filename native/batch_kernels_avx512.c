/* The batched-decode kernel for AVX-512 VL/BW/VNNI: vpdpbusd on 256-bit registers (see batch_kernels_x86.inc). */
#if defined(__x86_64__) || defined(_M_X64)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")
#endif
#define CG_VNNI 1
#define BKNAME cg_batch_q4_4_avx512
#include "batch_kernels_x86.inc"
#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif

#if (defined(__x86_64__) || defined(_M_X64)) && defined(CG_VNNI)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"))), apply_to = function)
#endif
/*
 * Two consecutive x8 groups (w and w + gstride: 16 weight rows) against 4 activation rows on
 * 512-bit registers, out[g * 32 + t * 8 + r]: lane by lane the operations of the 256-bit kernel
 * (so bit-identical to it), with each broadcast activation word and each vpdpbusd serving 16 rows
 * instead of 8. Worth it on cores with full-width 512-bit units (Zen 5): the 4-row matmul is
 * bound by these instructions once the weights are prefetched.
 */
void cg_batch_q4_4x2_avx512(int nb, const uint8_t *w, size_t gstride, const block_qa *a, size_t astride, float *out) {
  const block_qa *a0 = a, *a1 = a + astride, *a2 = a + 2 * astride, *a3 = a + 3 * astride;
  const uint8_t *w1 = w + gstride;
  __m512 c0 = _mm512_setzero_ps(), c1 = _mm512_setzero_ps(), c2 = _mm512_setzero_ps(), c3 = _mm512_setzero_ps();
  __m512 r0 = _mm512_setzero_ps(), r1 = _mm512_setzero_ps(), r2 = _mm512_setzero_ps(), r3 = _mm512_setzero_ps();
  const __m512i m4 = _mm512_set1_epi8(0x0f);
  for (int i = 0; i < nb; i++, w += X8_Q4_BYTES, w1 += X8_Q4_BYTES) {
    _mm_prefetch((const char *)(w + BK_PF), _MM_HINT_T0);
    _mm_prefetch((const char *)(w + BK_PF + 64), _MM_HINT_T0);
    _mm_prefetch((const char *)(w + BK_PF + 128), _MM_HINT_T0);
    _mm_prefetch((const char *)(w1 + BK_PF), _MM_HINT_T0);
    _mm_prefetch((const char *)(w1 + BK_PF + 64), _MM_HINT_T0);
    _mm_prefetch((const char *)(w1 + BK_PF + 128), _MM_HINT_T0);
    const __m512 dw = _mm512_cvtph_ps(
        _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)w)), _mm_loadu_si128((const __m128i *)w1), 1));
    __m512i p0 = _mm512_setzero_si512(), p1 = _mm512_setzero_si512(), p2 = _mm512_setzero_si512(), p3 = _mm512_setzero_si512();
    for (int c = 0; c < 4; c++) {
      const __m512i u = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(w + 16 + 32 * c))),
                                           _mm256_loadu_si256((const __m256i *)(w1 + 16 + 32 * c)), 1);
      const __m512i lo = _mm512_and_si512(u, m4);
      const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(u, 4), m4);
      p0 = _mm512_dpbusd_epi32(p0, lo, _mm512_set1_epi32(bk_i32(a0[i].qs + 4 * c)));
      p1 = _mm512_dpbusd_epi32(p1, lo, _mm512_set1_epi32(bk_i32(a1[i].qs + 4 * c)));
      p2 = _mm512_dpbusd_epi32(p2, lo, _mm512_set1_epi32(bk_i32(a2[i].qs + 4 * c)));
      p3 = _mm512_dpbusd_epi32(p3, lo, _mm512_set1_epi32(bk_i32(a3[i].qs + 4 * c)));
      p0 = _mm512_dpbusd_epi32(p0, hi, _mm512_set1_epi32(bk_i32(a0[i].qs + 16 + 4 * c)));
      p1 = _mm512_dpbusd_epi32(p1, hi, _mm512_set1_epi32(bk_i32(a1[i].qs + 16 + 4 * c)));
      p2 = _mm512_dpbusd_epi32(p2, hi, _mm512_set1_epi32(bk_i32(a2[i].qs + 16 + 4 * c)));
      p3 = _mm512_dpbusd_epi32(p3, hi, _mm512_set1_epi32(bk_i32(a3[i].qs + 16 + 4 * c)));
    }
    c0 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p0), _mm512_mul_ps(dw, _mm512_set1_ps(a0[i].d)), c0);
    c1 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p1), _mm512_mul_ps(dw, _mm512_set1_ps(a1[i].d)), c1);
    c2 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p2), _mm512_mul_ps(dw, _mm512_set1_ps(a2[i].d)), c2);
    c3 = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p3), _mm512_mul_ps(dw, _mm512_set1_ps(a3[i].d)), c3);
    r0 = _mm512_fmadd_ps(dw, _mm512_set1_ps(a0[i].s), r0);
    r1 = _mm512_fmadd_ps(dw, _mm512_set1_ps(a1[i].s), r1);
    r2 = _mm512_fmadd_ps(dw, _mm512_set1_ps(a2[i].s), r2);
    r3 = _mm512_fmadd_ps(dw, _mm512_set1_ps(a3[i].s), r3);
  }
  const __m512 eight = _mm512_set1_ps(8.0f);
  const __m512 res[4] = {_mm512_fnmadd_ps(eight, r0, c0), _mm512_fnmadd_ps(eight, r1, c1), _mm512_fnmadd_ps(eight, r2, c2),
                         _mm512_fnmadd_ps(eight, r3, c3)};
  for (int t = 0; t < 4; t++) {
    _mm256_storeu_ps(out + 8 * t, _mm512_castps512_ps256(res[t]));
    _mm256_storeu_ps(out + 32 + 8 * t, _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(res[t]), 1)));
  }
}
#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif

/*
 * bf16 prefill attention on AVX-512 BF16 (contract in attn_bf16.h): 16 query rows in lanes, as
 * attn_rows16, with vdpbf16ps (two bf16 products summed into each f32 lane) for Q K^T and P V.
 * Scores: lane r of QT2[p] holds row r's channels 2p, 2p+1; each key's pair of channels is one
 * 32-bit broadcast, so K needs no transpose. P V: VT2 holds pairs of keys per channel, the
 * softmax weights of a key pair are one 32-bit broadcast, and f32 accumulators hold channels.
 * Only for CPUs with avx512_bf16 (the dispatch in ops.c checks at run time).
 */
#if defined(__x86_64__) || defined(_M_X64)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512bf16"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")
#endif
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "attn_bf16.h"

#include "exp512.h"

void cg_attn_bf16_tiles_avx512(int hd, const float *K, const float *V, int n, uint16_t *K2, uint16_t *VT2) {
  for (int j = 0; j < n; j++)
    for (int i = 0; i < hd; i += 32) {
      const float *k = K + (size_t)j * hd + i;
      _mm512_storeu_si512(K2 + (size_t)j * hd + i, (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(k + 16), _mm512_loadu_ps(k)));
    }
  /* words 0..15 key 2jp, 16..31 key 2jp+1 -> interleaved by channel */
  const __m512i il = _mm512_setr_epi32(0x00100000, 0x00110001, 0x00120002, 0x00130003, 0x00140004, 0x00150005, 0x00160006, 0x00170007,
                                       0x00180008, 0x00190009, 0x001a000a, 0x001b000b, 0x001c000c, 0x001d000d, 0x001e000e, 0x001f000f);
  for (int j = 0; j < n; j += 2)
    for (int i = 0; i < hd; i += 16) {
      const __m512 a = _mm512_loadu_ps(V + (size_t)j * hd + i);
      const __m512 b = j + 1 < n ? _mm512_loadu_ps(V + (size_t)(j + 1) * hd + i) : _mm512_setzero_ps();
      _mm512_storeu_si512(VT2 + (size_t)(j / 2) * 2 * hd + 2 * i, _mm512_permutexvar_epi16(il, (__m512i)_mm512_cvtne2ps_pbh(b, a)));
    }
}

static inline __m512bh bcast32(const uint16_t *p) {
  int32_t x;
  memcpy(&x, p, sizeof x);
  return (__m512bh)_mm512_set1_epi32(x);
}

void cg_attn_rows16_bf16_avx512(int hd, const uint16_t *QT2, int nr, const uint16_t *K2, const uint16_t *VT2, int n,
                                const int *lim, float scale, float *P, float *m, float *l, float *acc) {
  const __m512 ninf = _mm512_set1_ps(-INFINITY);
  const __m512 vs = _mm512_set1_ps(scale);
  const __mmask16 rows = nr >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << nr) - 1);
  const __m512i limv = _mm512_loadu_si512(lim);
  const __m512 mo = _mm512_loadu_ps(m);
  __m512 mx = mo;
  for (int jb = 0; jb < n; jb += 16) {
    const uint16_t *kb = K2 + (size_t)jb * hd;
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0, s7 = s0;
    __m512 s8 = s0, s9 = s0, s10 = s0, s11 = s0, s12 = s0, s13 = s0, s14 = s0, s15 = s0;
    for (int d = 0; d < hd; d += 2) {
      const __m512bh q = (__m512bh)_mm512_loadu_si512(QT2 + (size_t)d * ATD_ROWS);
      const uint16_t *kd = kb + d;
      s0 = _mm512_dpbf16_ps(s0, q, bcast32(kd)), s1 = _mm512_dpbf16_ps(s1, q, bcast32(kd + (size_t)hd));
      s2 = _mm512_dpbf16_ps(s2, q, bcast32(kd + (size_t)2 * hd)), s3 = _mm512_dpbf16_ps(s3, q, bcast32(kd + (size_t)3 * hd));
      s4 = _mm512_dpbf16_ps(s4, q, bcast32(kd + (size_t)4 * hd)), s5 = _mm512_dpbf16_ps(s5, q, bcast32(kd + (size_t)5 * hd));
      s6 = _mm512_dpbf16_ps(s6, q, bcast32(kd + (size_t)6 * hd)), s7 = _mm512_dpbf16_ps(s7, q, bcast32(kd + (size_t)7 * hd));
      s8 = _mm512_dpbf16_ps(s8, q, bcast32(kd + (size_t)8 * hd)), s9 = _mm512_dpbf16_ps(s9, q, bcast32(kd + (size_t)9 * hd));
      s10 = _mm512_dpbf16_ps(s10, q, bcast32(kd + (size_t)10 * hd)), s11 = _mm512_dpbf16_ps(s11, q, bcast32(kd + (size_t)11 * hd));
      s12 = _mm512_dpbf16_ps(s12, q, bcast32(kd + (size_t)12 * hd)), s13 = _mm512_dpbf16_ps(s13, q, bcast32(kd + (size_t)13 * hd));
      s14 = _mm512_dpbf16_ps(s14, q, bcast32(kd + (size_t)14 * hd)), s15 = _mm512_dpbf16_ps(s15, q, bcast32(kd + (size_t)15 * hd));
    }
    const __m512 s[16] = {s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11, s12, s13, s14, s15};
    const int nb = n - jb < 16 ? n - jb : 16;
    for (int jj = 0; jj < nb; jj++) {
      const int j = jb + jj;
      const __mmask16 vis = rows & _mm512_cmpgt_epi32_mask(limv, _mm512_set1_epi32(j));
      const __m512 x = _mm512_mask_mov_ps(ninf, vis, _mm512_mul_ps(s[jj], vs));
      _mm512_storeu_ps(P + (size_t)j * ATD_ROWS, x);
      mx = _mm512_max_ps(mx, x);
    }
  }
  const __mmask16 fin = _mm512_cmp_ps_mask(mx, ninf, _CMP_NEQ_OQ) & _mm512_cmp_ps_mask(mo, ninf, _CMP_NEQ_OQ);
  const __m512 c = exp512(_mm512_maskz_sub_ps(fin, mo, mx));
  __m512 sum = _mm512_setzero_ps();
  /* Weights rounded to bf16 here, so the sum l is of exactly the weights P V uses. */
  for (int j = 0; j < n; j++) {
    const __m512 x = _mm512_loadu_ps(P + (size_t)j * ATD_ROWS);
    const __mmask16 vis = _mm512_cmp_ps_mask(x, ninf, _CMP_NEQ_OQ);
    const __m512 p = _mm512_cvtpbh_ps(_mm512_cvtneps_pbh(_mm512_maskz_mov_ps(vis, exp512(_mm512_maskz_sub_ps(vis, x, mx)))));
    _mm512_storeu_ps(P + (size_t)j * ATD_ROWS, p);
    sum = _mm512_add_ps(sum, p);
  }
  _mm512_storeu_ps(l, _mm512_fmadd_ps(_mm512_loadu_ps(l), c, sum));
  _mm512_storeu_ps(m, mx);
  float cr[16];
  _mm512_storeu_ps(cr, c);
  for (int r = 0; r < nr; r++) {
    if (cr[r] == 1.0f) continue;
    const __m512 vc = _mm512_set1_ps(cr[r]);
    float *ar = acc + (size_t)r * hd;
    for (int i = 0; i < hd; i += 16) _mm512_storeu_ps(ar + i, _mm512_mul_ps(_mm512_loadu_ps(ar + i), vc));
  }
  /* Key pairs of weights, in place: P2[jp][r] = bf16 P[2jp][r] | bf16 P[2jp+1][r] << 16 (exact:
   * the weights are bf16 values already). Row jp is written after rows 2jp, 2jp+1 are read. */
  const int np = (n + 1) / 2;
  uint32_t *P2 = (uint32_t *)P;
  for (int jp = 0; jp < np; jp++) {
    const __m512i lo = _mm512_srli_epi32(_mm512_castps_si512(_mm512_loadu_ps(P + (size_t)(2 * jp) * ATD_ROWS)), 16);
    const __m512i hi = 2 * jp + 1 < n ? _mm512_and_si512(_mm512_castps_si512(_mm512_loadu_ps(P + (size_t)(2 * jp + 1) * ATD_ROWS)),
                                                         _mm512_set1_epi32((int)0xffff0000u))
                                      : _mm512_setzero_si512();
    _mm512_storeu_si512(P2 + (size_t)jp * ATD_ROWS, _mm512_or_si512(lo, hi));
  }
  for (int r = 0; r < nr; r += 4) {
    float *a0 = acc + (size_t)r * hd, *a1 = a0 + hd, *a2 = a1 + hd, *a3 = a2 + hd;
    const uint16_t *pr = (const uint16_t *)(P2 + r);
    for (int i = 0; i < hd; i += 64) {
      __m512 c00 = _mm512_loadu_ps(a0 + i), c01 = _mm512_loadu_ps(a0 + i + 16), c02 = _mm512_loadu_ps(a0 + i + 32), c03 = _mm512_loadu_ps(a0 + i + 48);
      __m512 c10 = _mm512_loadu_ps(a1 + i), c11 = _mm512_loadu_ps(a1 + i + 16), c12 = _mm512_loadu_ps(a1 + i + 32), c13 = _mm512_loadu_ps(a1 + i + 48);
      __m512 c20 = _mm512_loadu_ps(a2 + i), c21 = _mm512_loadu_ps(a2 + i + 16), c22 = _mm512_loadu_ps(a2 + i + 32), c23 = _mm512_loadu_ps(a2 + i + 48);
      __m512 c30 = _mm512_loadu_ps(a3 + i), c31 = _mm512_loadu_ps(a3 + i + 16), c32 = _mm512_loadu_ps(a3 + i + 32), c33 = _mm512_loadu_ps(a3 + i + 48);
      for (int jp = 0; jp < np; jp++) {
        const uint16_t *v = VT2 + (size_t)jp * 2 * hd + 2 * i;
        const uint16_t *p = pr + (size_t)jp * 2 * ATD_ROWS;
        const __m512bh v0 = (__m512bh)_mm512_loadu_si512(v), v1 = (__m512bh)_mm512_loadu_si512(v + 32);
        const __m512bh v2 = (__m512bh)_mm512_loadu_si512(v + 64), v3 = (__m512bh)_mm512_loadu_si512(v + 96);
        __m512bh b = bcast32(p);
        c00 = _mm512_dpbf16_ps(c00, b, v0), c01 = _mm512_dpbf16_ps(c01, b, v1), c02 = _mm512_dpbf16_ps(c02, b, v2), c03 = _mm512_dpbf16_ps(c03, b, v3);
        b = bcast32(p + 2);
        c10 = _mm512_dpbf16_ps(c10, b, v0), c11 = _mm512_dpbf16_ps(c11, b, v1), c12 = _mm512_dpbf16_ps(c12, b, v2), c13 = _mm512_dpbf16_ps(c13, b, v3);
        b = bcast32(p + 4);
        c20 = _mm512_dpbf16_ps(c20, b, v0), c21 = _mm512_dpbf16_ps(c21, b, v1), c22 = _mm512_dpbf16_ps(c22, b, v2), c23 = _mm512_dpbf16_ps(c23, b, v3);
        b = bcast32(p + 6);
        c30 = _mm512_dpbf16_ps(c30, b, v0), c31 = _mm512_dpbf16_ps(c31, b, v1), c32 = _mm512_dpbf16_ps(c32, b, v2), c33 = _mm512_dpbf16_ps(c33, b, v3);
      }
      _mm512_storeu_ps(a0 + i, c00), _mm512_storeu_ps(a0 + i + 16, c01), _mm512_storeu_ps(a0 + i + 32, c02), _mm512_storeu_ps(a0 + i + 48, c03);
      _mm512_storeu_ps(a1 + i, c10), _mm512_storeu_ps(a1 + i + 16, c11), _mm512_storeu_ps(a1 + i + 32, c12), _mm512_storeu_ps(a1 + i + 48, c13);
      _mm512_storeu_ps(a2 + i, c20), _mm512_storeu_ps(a2 + i + 16, c21), _mm512_storeu_ps(a2 + i + 32, c22), _mm512_storeu_ps(a2 + i + 48, c23);
      _mm512_storeu_ps(a3 + i, c30), _mm512_storeu_ps(a3 + i + 16, c31), _mm512_storeu_ps(a3 + i + 32, c32), _mm512_storeu_ps(a3 + i + 48, c33);
    }
  }
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif

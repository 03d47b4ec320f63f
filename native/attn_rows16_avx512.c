/*
 * The attn_rows16 kernel on AVX-512 (contract in attn_decode.h): up to 16 query rows of one KV group,
 * one per lane, against a tile of keys in the cache's own row layout. Scores: for 16 keys at a time,
 * s[j] (16 rows) += QT[d] x broadcast K[j][d], so K needs no transpose and one 16-lane register holds
 * one key's scores for every row. The softmax update then runs on whole registers (max, exp and sums
 * of 16 rows at once), and acc[4 rows][64 channels] += P x V as in the four-row prefill kernel.
 * hd even and at most 256 where nr <= 8 (the paired-channel scores).
 */
#if defined(__x86_64__) || defined(_M_X64)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq")
#endif
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "attn_decode.h"

#include "exp512.h"

/* [p[0], p[1]] in every 64-bit lane (one broadcast load). */
static inline __m512 bcast2(const float *p) {
  double x;
  memcpy(&x, p, sizeof x);
  return _mm512_castpd_ps(_mm512_set1_pd(x));
}

void cg_attn_rows16_avx512(int hd, const float *QT, int nr, const float *K, const float *V, int n, const int *lim,
                           float scale, float *P, float *m, float *l, float *acc) {
  const __m512 ninf = _mm512_set1_ps(-INFINITY);
  const __m512 vs = _mm512_set1_ps(scale);
  const __mmask16 rows = nr >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << nr) - 1);
  const __m512i limv = _mm512_loadu_si512(lim);
  const __m512 mo = _mm512_loadu_ps(m);
  __m512 mx = mo;
  /* Eight rows or fewer (models with 8 query heads per group): half the lanes would idle, so lane
   * 2r + p holds row r's products of the even (p = 0) or odd (p = 1) channels, K is read two
   * channels at a time, and adjacent lanes are summed at the end. QT2[(d / 2) * 16 + 2r + p]. */
  const int pairs = nr <= 8 && hd <= 256;
  float QT2[128 * ATD_ROWS];
  if (pairs) {
    const __m512i il = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    for (int d = 0; d < hd; d += 2)
      _mm512_storeu_ps(QT2 + (size_t)(d / 2) * ATD_ROWS,
                       _mm512_permutex2var_ps(_mm512_loadu_ps(QT + (size_t)d * ATD_ROWS), il, _mm512_loadu_ps(QT + (size_t)(d + 1) * ATD_ROWS)));
  }
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 0, 2, 4, 6, 8, 10, 12, 14);
  for (int jb = 0; jb < n; jb += 16) {
    /* Keys jb..jb+15 (past n: whatever the tile buffer holds; masked below, never summed). */
    const float *kb = K + (size_t)jb * hd;
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0, s4 = s0, s5 = s0, s6 = s0, s7 = s0;
    __m512 s8 = s0, s9 = s0, s10 = s0, s11 = s0, s12 = s0, s13 = s0, s14 = s0, s15 = s0;
    if (pairs) {
#define BC2(i) bcast2(kd + (size_t)(i) * hd)
      for (int d = 0; d < hd; d += 2) {
        const __m512 q = _mm512_loadu_ps(QT2 + (size_t)(d / 2) * ATD_ROWS);
        const float *kd = kb + d;
        s0 = _mm512_fmadd_ps(q, BC2(0), s0), s1 = _mm512_fmadd_ps(q, BC2(1), s1);
        s2 = _mm512_fmadd_ps(q, BC2(2), s2), s3 = _mm512_fmadd_ps(q, BC2(3), s3);
        s4 = _mm512_fmadd_ps(q, BC2(4), s4), s5 = _mm512_fmadd_ps(q, BC2(5), s5);
        s6 = _mm512_fmadd_ps(q, BC2(6), s6), s7 = _mm512_fmadd_ps(q, BC2(7), s7);
        s8 = _mm512_fmadd_ps(q, BC2(8), s8), s9 = _mm512_fmadd_ps(q, BC2(9), s9);
        s10 = _mm512_fmadd_ps(q, BC2(10), s10), s11 = _mm512_fmadd_ps(q, BC2(11), s11);
        s12 = _mm512_fmadd_ps(q, BC2(12), s12), s13 = _mm512_fmadd_ps(q, BC2(13), s13);
        s14 = _mm512_fmadd_ps(q, BC2(14), s14), s15 = _mm512_fmadd_ps(q, BC2(15), s15);
      }
#undef BC2
    } else {
      for (int d = 0; d < hd; d++) {
        const __m512 q = _mm512_loadu_ps(QT + (size_t)d * ATD_ROWS);
        const float *kd = kb + d;
        s0 = _mm512_fmadd_ps(q, _mm512_set1_ps(kd[0]), s0);
        s1 = _mm512_fmadd_ps(q, _mm512_set1_ps(kd[(size_t)hd]), s1);
        s2 = _mm512_fmadd_ps(q, _mm512_set1_ps(kd[(size_t)2 * hd]), s2);
        s3 = _mm512_fmadd_ps(q, _mm512_set1_ps(kd[(size_t)3 * hd]), s3);
        s4 = _mm512_fmadd_ps(q, _mm512_set1_ps(kd[(size_t)4 * hd]), s4);
        s5 = _mm512_fmadd_ps(q, _mm512_set1_ps(kd[(size_t)5 * hd]), s5);
        s6 = _mm512_fmadd_ps(q, _mm512_set1_ps(kd[(size_t)6 * hd]), s6);
        s7 = _mm512_fmadd_ps(q, _mm512_set1_ps(kd[(size_t)7 * hd]), s7);
        s8 = _mm512_fmadd_ps(q, _mm512_set1_ps(kd[(size_t)8 * hd]), s8);
        s9 = _mm512_fmadd_ps(q, _mm512_set1_ps(kd[(size_t)9 * hd]), s9);
        s10 = _mm512_fmadd_ps(q, _mm512_set1_ps(kd[(size_t)10 * hd]), s10);
        s11 = _mm512_fmadd_ps(q, _mm512_set1_ps(kd[(size_t)11 * hd]), s11);
        s12 = _mm512_fmadd_ps(q, _mm512_set1_ps(kd[(size_t)12 * hd]), s12);
        s13 = _mm512_fmadd_ps(q, _mm512_set1_ps(kd[(size_t)13 * hd]), s13);
        s14 = _mm512_fmadd_ps(q, _mm512_set1_ps(kd[(size_t)14 * hd]), s14);
        s15 = _mm512_fmadd_ps(q, _mm512_set1_ps(kd[(size_t)15 * hd]), s15);
      }
    }
    __m512 s[16] = {s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11, s12, s13, s14, s15};
    const int nb = n - jb < 16 ? n - jb : 16;
    if (pairs)
      for (int jj = 0; jj < nb; jj++) s[jj] = _mm512_permutexvar_ps(even, _mm512_add_ps(s[jj], _mm512_permute_ps(s[jj], 0xB1)));
    for (int jj = 0; jj < nb; jj++) {
      const int j = jb + jj;
      const __mmask16 vis = rows & _mm512_cmpgt_epi32_mask(limv, _mm512_set1_epi32(j));
      const __m512 x = _mm512_mask_mov_ps(ninf, vis, _mm512_mul_ps(s[jj], vs));
      _mm512_storeu_ps(P + (size_t)j * ATD_ROWS, x);
      mx = _mm512_max_ps(mx, x);
    }
  }
  /* Rows that have seen no key yet keep m = -inf, l = 0, acc = 0: their correction is 1 and their
   * probabilities 0, so no -inf - -inf is ever used. */
  const __mmask16 fin = _mm512_cmp_ps_mask(mx, ninf, _CMP_NEQ_OQ) & _mm512_cmp_ps_mask(mo, ninf, _CMP_NEQ_OQ);
  const __m512 c = exp512(_mm512_maskz_sub_ps(fin, mo, mx));
  __m512 sum = _mm512_setzero_ps();
  for (int j = 0; j < n; j++) {
    const __m512 x = _mm512_loadu_ps(P + (size_t)j * ATD_ROWS);
    const __mmask16 vis = _mm512_cmp_ps_mask(x, ninf, _CMP_NEQ_OQ);
    const __m512 p = _mm512_maskz_mov_ps(vis, exp512(_mm512_maskz_sub_ps(vis, x, mx)));
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
  /* acc[r] += sum_j P[j][r] V[j]: four rows x 64 channels per pass (16 channels where hd is not a
   * multiple of 64). Rows nr..3 of the last group have P = 0 and scratch rows of acc. */
  for (int r = 0; r < nr; r += 4) {
    float *a0 = acc + (size_t)r * hd, *a1 = a0 + hd, *a2 = a1 + hd, *a3 = a2 + hd;
    const float *pr = P + r;
    int i = 0;
    for (; i + 64 <= hd; i += 64) {
      __m512 c00 = _mm512_loadu_ps(a0 + i), c01 = _mm512_loadu_ps(a0 + i + 16), c02 = _mm512_loadu_ps(a0 + i + 32), c03 = _mm512_loadu_ps(a0 + i + 48);
      __m512 c10 = _mm512_loadu_ps(a1 + i), c11 = _mm512_loadu_ps(a1 + i + 16), c12 = _mm512_loadu_ps(a1 + i + 32), c13 = _mm512_loadu_ps(a1 + i + 48);
      __m512 c20 = _mm512_loadu_ps(a2 + i), c21 = _mm512_loadu_ps(a2 + i + 16), c22 = _mm512_loadu_ps(a2 + i + 32), c23 = _mm512_loadu_ps(a2 + i + 48);
      __m512 c30 = _mm512_loadu_ps(a3 + i), c31 = _mm512_loadu_ps(a3 + i + 16), c32 = _mm512_loadu_ps(a3 + i + 32), c33 = _mm512_loadu_ps(a3 + i + 48);
      for (int j = 0; j < n; j++) {
        const float *v = V + (size_t)j * hd + i;
        const float *p = pr + (size_t)j * ATD_ROWS;
        const __m512 v0 = _mm512_loadu_ps(v), v1 = _mm512_loadu_ps(v + 16), v2 = _mm512_loadu_ps(v + 32), v3 = _mm512_loadu_ps(v + 48);
        __m512 b = _mm512_set1_ps(p[0]);
        c00 = _mm512_fmadd_ps(b, v0, c00), c01 = _mm512_fmadd_ps(b, v1, c01), c02 = _mm512_fmadd_ps(b, v2, c02), c03 = _mm512_fmadd_ps(b, v3, c03);
        b = _mm512_set1_ps(p[1]);
        c10 = _mm512_fmadd_ps(b, v0, c10), c11 = _mm512_fmadd_ps(b, v1, c11), c12 = _mm512_fmadd_ps(b, v2, c12), c13 = _mm512_fmadd_ps(b, v3, c13);
        b = _mm512_set1_ps(p[2]);
        c20 = _mm512_fmadd_ps(b, v0, c20), c21 = _mm512_fmadd_ps(b, v1, c21), c22 = _mm512_fmadd_ps(b, v2, c22), c23 = _mm512_fmadd_ps(b, v3, c23);
        b = _mm512_set1_ps(p[3]);
        c30 = _mm512_fmadd_ps(b, v0, c30), c31 = _mm512_fmadd_ps(b, v1, c31), c32 = _mm512_fmadd_ps(b, v2, c32), c33 = _mm512_fmadd_ps(b, v3, c33);
      }
      _mm512_storeu_ps(a0 + i, c00), _mm512_storeu_ps(a0 + i + 16, c01), _mm512_storeu_ps(a0 + i + 32, c02), _mm512_storeu_ps(a0 + i + 48, c03);
      _mm512_storeu_ps(a1 + i, c10), _mm512_storeu_ps(a1 + i + 16, c11), _mm512_storeu_ps(a1 + i + 32, c12), _mm512_storeu_ps(a1 + i + 48, c13);
      _mm512_storeu_ps(a2 + i, c20), _mm512_storeu_ps(a2 + i + 16, c21), _mm512_storeu_ps(a2 + i + 32, c22), _mm512_storeu_ps(a2 + i + 48, c23);
      _mm512_storeu_ps(a3 + i, c30), _mm512_storeu_ps(a3 + i + 16, c31), _mm512_storeu_ps(a3 + i + 32, c32), _mm512_storeu_ps(a3 + i + 48, c33);
    }
    for (; i < hd; i += 16) {
      __m512 c0 = _mm512_loadu_ps(a0 + i), c1 = _mm512_loadu_ps(a1 + i), c2 = _mm512_loadu_ps(a2 + i), c3 = _mm512_loadu_ps(a3 + i);
      for (int j = 0; j < n; j++) {
        const __m512 v = _mm512_loadu_ps(V + (size_t)j * hd + i);
        const float *p = pr + (size_t)j * ATD_ROWS;
        c0 = _mm512_fmadd_ps(_mm512_set1_ps(p[0]), v, c0), c1 = _mm512_fmadd_ps(_mm512_set1_ps(p[1]), v, c1);
        c2 = _mm512_fmadd_ps(_mm512_set1_ps(p[2]), v, c2), c3 = _mm512_fmadd_ps(_mm512_set1_ps(p[3]), v, c3);
      }
      _mm512_storeu_ps(a0 + i, c0), _mm512_storeu_ps(a1 + i, c1), _mm512_storeu_ps(a2 + i, c2), _mm512_storeu_ps(a3 + i, c3);
    }
  }
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif

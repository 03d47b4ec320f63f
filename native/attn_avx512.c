/*
 * Prefill attention on AVX-512: four query rows (heads of one KV group at one position, so they
 * share their causal limit) against one tile of up to ATT4_TILE keys, as two small register-blocked
 * GEMMs on 512-bit registers: scores S[4][64] = Q[4][hd] x K^T (K^T tile laid out [hd][64], so one
 * register holds 16 keys and each q element is a broadcast), then the online-softmax update and
 * acc[4][hd] += P[4][n] x V[n][hd] with 64 output channels of all four rows in 16 registers.
 * The per-row kernel (attn_tile) reloads K and V for every query row; here each K/V load serves
 * four rows. Declarations and the contract in attn4.h.
 */
#if defined(__x86_64__) || defined(_M_X64)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq")
#endif
#include <immintrin.h>
#include <math.h>

#include "attn4.h"

#include "exp512.h"

void cg_attn_rows4_avx512(int hd, const float *q, size_t qstride, const float *KT, const float *V, int n, float scale,
                          float *s, float *m, float *l, float *acc) {
  const float *q0 = q, *q1 = q + qstride, *q2 = q + 2 * qstride, *q3 = q + 3 * qstride;
  /* Scores: 4 rows x 64 keys in 16 registers. Keys at or past n hold whatever the tile buffer
   * held (finite or not); they are replaced by -inf below, never used in arithmetic. */
  __m512 s00 = _mm512_setzero_ps(), s01 = s00, s02 = s00, s03 = s00, s10 = s00, s11 = s00, s12 = s00, s13 = s00;
  __m512 s20 = s00, s21 = s00, s22 = s00, s23 = s00, s30 = s00, s31 = s00, s32 = s00, s33 = s00;
  for (int d = 0; d < hd; d++) {
    const float *kt = KT + (size_t)d * ATT4_TILE;
    const __m512 k0 = _mm512_loadu_ps(kt), k1 = _mm512_loadu_ps(kt + 16), k2 = _mm512_loadu_ps(kt + 32), k3 = _mm512_loadu_ps(kt + 48);
    __m512 b = _mm512_set1_ps(q0[d]);
    s00 = _mm512_fmadd_ps(b, k0, s00), s01 = _mm512_fmadd_ps(b, k1, s01), s02 = _mm512_fmadd_ps(b, k2, s02), s03 = _mm512_fmadd_ps(b, k3, s03);
    b = _mm512_set1_ps(q1[d]);
    s10 = _mm512_fmadd_ps(b, k0, s10), s11 = _mm512_fmadd_ps(b, k1, s11), s12 = _mm512_fmadd_ps(b, k2, s12), s13 = _mm512_fmadd_ps(b, k3, s13);
    b = _mm512_set1_ps(q2[d]);
    s20 = _mm512_fmadd_ps(b, k0, s20), s21 = _mm512_fmadd_ps(b, k1, s21), s22 = _mm512_fmadd_ps(b, k2, s22), s23 = _mm512_fmadd_ps(b, k3, s23);
    b = _mm512_set1_ps(q3[d]);
    s30 = _mm512_fmadd_ps(b, k0, s30), s31 = _mm512_fmadd_ps(b, k1, s31), s32 = _mm512_fmadd_ps(b, k2, s32), s33 = _mm512_fmadd_ps(b, k3, s33);
  }
  const __m512 vs = _mm512_set1_ps(scale);
  const __m512 ninf = _mm512_set1_ps(-INFINITY);
  /* valid-key masks of the four 16-key chunks */
  __mmask16 km[4];
  for (int c = 0; c < 4; c++) {
    const int v = n - 16 * c;
    km[c] = v >= 16 ? (__mmask16)0xffff : v <= 0 ? (__mmask16)0 : (__mmask16)((1u << v) - 1);
  }
  const __m512 rows[4][4] = {{s00, s01, s02, s03}, {s10, s11, s12, s13}, {s20, s21, s22, s23}, {s30, s31, s32, s33}};
  for (int r = 0; r < 4; r++) {
    float *sr = s + r * ATT4_TILE;
    __m512 x[4];
    for (int c = 0; c < 4; c++) x[c] = _mm512_mask_mov_ps(ninf, km[c], _mm512_mul_ps(rows[r][c], vs));
    const float mx = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_max_ps(x[0], x[1]), _mm512_max_ps(x[2], x[3])));
    const float mnew = mx > m[r] ? mx : m[r];
    if (m[r] != -INFINITY && mnew != m[r]) {
      const float cr = expf(m[r] - mnew);
      l[r] *= cr;
      const __m512 vc = _mm512_set1_ps(cr);
      float *ar = acc + (size_t)r * hd;
      for (int i = 0; i < hd; i += 16) _mm512_storeu_ps(ar + i, _mm512_mul_ps(_mm512_loadu_ps(ar + i), vc));
    }
    const __m512 vm = _mm512_set1_ps(mnew);
    __m512 sum = _mm512_setzero_ps();
    for (int c = 0; c < 4; c++) {
      /* masked keys: exp(-inf - mnew) would be 0 too, but zeroing by mask needs no -inf arithmetic */
      const __m512 p = _mm512_maskz_mov_ps(km[c], exp512(_mm512_sub_ps(x[c], vm)));
      _mm512_storeu_ps(sr + 16 * c, p);
      sum = _mm512_add_ps(sum, p);
    }
    l[r] += _mm512_reduce_add_ps(sum);
    m[r] = mnew;
  }
  /* acc[r] += sum_j p[r][j] V[j]: 64 channels of the four rows per pass */
  for (int i = 0; i < hd; i += 64) {
    float *a0 = acc + i, *a1 = a0 + hd, *a2 = a1 + hd, *a3 = a2 + hd;
    __m512 c00 = _mm512_loadu_ps(a0), c01 = _mm512_loadu_ps(a0 + 16), c02 = _mm512_loadu_ps(a0 + 32), c03 = _mm512_loadu_ps(a0 + 48);
    __m512 c10 = _mm512_loadu_ps(a1), c11 = _mm512_loadu_ps(a1 + 16), c12 = _mm512_loadu_ps(a1 + 32), c13 = _mm512_loadu_ps(a1 + 48);
    __m512 c20 = _mm512_loadu_ps(a2), c21 = _mm512_loadu_ps(a2 + 16), c22 = _mm512_loadu_ps(a2 + 32), c23 = _mm512_loadu_ps(a2 + 48);
    __m512 c30 = _mm512_loadu_ps(a3), c31 = _mm512_loadu_ps(a3 + 16), c32 = _mm512_loadu_ps(a3 + 32), c33 = _mm512_loadu_ps(a3 + 48);
    for (int j = 0; j < n; j++) {
      const float *v = V + (size_t)j * hd + i;
      const __m512 v0 = _mm512_loadu_ps(v), v1 = _mm512_loadu_ps(v + 16), v2 = _mm512_loadu_ps(v + 32), v3 = _mm512_loadu_ps(v + 48);
      __m512 p = _mm512_set1_ps(s[j]);
      c00 = _mm512_fmadd_ps(p, v0, c00), c01 = _mm512_fmadd_ps(p, v1, c01), c02 = _mm512_fmadd_ps(p, v2, c02), c03 = _mm512_fmadd_ps(p, v3, c03);
      p = _mm512_set1_ps(s[ATT4_TILE + j]);
      c10 = _mm512_fmadd_ps(p, v0, c10), c11 = _mm512_fmadd_ps(p, v1, c11), c12 = _mm512_fmadd_ps(p, v2, c12), c13 = _mm512_fmadd_ps(p, v3, c13);
      p = _mm512_set1_ps(s[2 * ATT4_TILE + j]);
      c20 = _mm512_fmadd_ps(p, v0, c20), c21 = _mm512_fmadd_ps(p, v1, c21), c22 = _mm512_fmadd_ps(p, v2, c22), c23 = _mm512_fmadd_ps(p, v3, c23);
      p = _mm512_set1_ps(s[3 * ATT4_TILE + j]);
      c30 = _mm512_fmadd_ps(p, v0, c30), c31 = _mm512_fmadd_ps(p, v1, c31), c32 = _mm512_fmadd_ps(p, v2, c32), c33 = _mm512_fmadd_ps(p, v3, c33);
    }
    _mm512_storeu_ps(a0, c00), _mm512_storeu_ps(a0 + 16, c01), _mm512_storeu_ps(a0 + 32, c02), _mm512_storeu_ps(a0 + 48, c03);
    _mm512_storeu_ps(a1, c10), _mm512_storeu_ps(a1 + 16, c11), _mm512_storeu_ps(a1 + 32, c12), _mm512_storeu_ps(a1 + 48, c13);
    _mm512_storeu_ps(a2, c20), _mm512_storeu_ps(a2 + 16, c21), _mm512_storeu_ps(a2 + 32, c22), _mm512_storeu_ps(a2 + 48, c23);
    _mm512_storeu_ps(a3, c30), _mm512_storeu_ps(a3 + 16, c31), _mm512_storeu_ps(a3 + 32, c32), _mm512_storeu_ps(a3 + 48, c33);
  }
}

#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif

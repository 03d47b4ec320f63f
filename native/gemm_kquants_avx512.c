/*
 * k-quant prefill GEMM on AVX-512 VNNI (contract in gemm_kq.h).
 *
 * The decode kernels (kernels_kquants_avx512.inc) put 64 quants of ONE row in a register and must
 * reduce across lanes for every row, token and super-block. Here a register holds 4 quants of each
 * of 16 rows (one row per 32-bit lane), so vpdpbusd with 4 activation bytes broadcast adds a
 * sub-block's products straight into per-row lanes: 16 rows x 8 tokens per tile, no horizontal
 * reduction. Per 32-element (q4_K, q5_K) or 16-element (q6_K) sub-block and token: a chain of 8
 * (4) vpdpbusd, times the rows' sub-block scales (vpmulld), added into the token's int32 sum; per
 * super-block and token the mins (or q6_K's -32 offset) through vpdpwssd against the q8_K block
 * sums, then one float conversion. All integer sums are exact, so any order gives the same int32;
 * the float steps are gen_kq_dot's (kernels_kquants.inc), giving bit-identical results to it.
 *
 * The row-interleaved panel is built per matmul (pack): a row's super-block is unpacked to 4
 * registers of 64 unsigned quants (the decode kernels' unpacking, copied here), 16 rows at a time,
 * and transposed as 32-bit words (16 x 16) so that word k of every row lands in one register.
 */
#if defined(__x86_64__) || defined(_M_X64)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")
#endif
#include <immintrin.h>
#include <string.h>

#include "gemm_kq.h"
#include "kq16.h"

#define R16 CG_GEMM_KQ_ROWS
#define NT CG_GEMM_KQ_TOKENS

/*
 * Panel layout, per super-block (64-byte aligned sections; lane r = row r everywhere):
 *   quants: 64 registers, register k = elements 4k .. 4k+3 of each row (unsigned: q4_K 0..15,
 *           q5_K 0..31, q6_K 0..63 before its -32)                                     4096 B
 *   q4_K / q5_K: S[8] sub-block scales (i32), M[8] mins as an i16 pair (m, m) for the two
 *                q8_K block sums of the sub-block, d[16], dmin[16] (f32)        512+512+64+64 B
 *   q6_K: S[16] sub-block scales (i32), O[8] i16 pairs (-32 sc_2k, -32 sc_2k+1) for block
 *         sums 2k, 2k+1 (the -32 offset), d[16]                                   1024+512+64 B
 */
#define QB 4096
#define P45_BYTES (QB + 512 + 512 + 64 + 64)
#define P6_BYTES (QB + 1024 + 512 + 64)

static size_t kq_panel_bytes(int type, int nbk) {
  switch (type) {
    case WT_Q4_K:
    case WT_Q5_K: return (size_t)nbk * P45_BYTES;
    case WT_Q6_K: return (size_t)nbk * P6_BYTES;
    default: return 0;
  }
}

static inline int32_t ld_i32(const void *p) {
  int32_t v;
  memcpy(&v, p, 4);
  return v;
}

/* ---------------------------------------------------------------- packing */

/* i16 shift counts: the low 32 bytes by lo, the high 32 bytes by hi. */
static inline __m512i shift2(int lo, int hi) {
  return _mm512_inserti64x4(_mm512_set1_epi16((short)lo), _mm256_set1_epi16((short)hi), 1);
}

/* 32 bytes at p in both halves of a register. */
static inline __m512i bcast32(const uint8_t *p) { return _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)p)); }

/* bytes: the low 32 carry bit lo, the high 32 carry bit hi. */
static inline __m512i bits2(int lo, int hi) {
  return _mm512_inserti64x4(_mm512_set1_epi8((char)(1 << lo)), _mm256_set1_epi8((char)(1 << hi)), 1);
}

/* 16 x 16 transpose of 32-bit words: afterwards r[k] lane i = (before) r[i] lane k. */
static inline void transpose16(__m512i r[16]) {
  __m512i t[16], u[16];
  for (int i = 0; i < 8; i++) {
    t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  /* u[4i + e], 128-bit lane L: rows 4i .. 4i+3 of column 4L + e */
  for (int i = 0; i < 4; i++) {
    u[4 * i] = _mm512_unpacklo_epi64(t[4 * i], t[4 * i + 2]);
    u[4 * i + 1] = _mm512_unpackhi_epi64(t[4 * i], t[4 * i + 2]);
    u[4 * i + 2] = _mm512_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
    u[4 * i + 3] = _mm512_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
  }
  for (int e = 0; e < 4; e++) {
    const __m512i v0 = _mm512_shuffle_i32x4(u[e], u[4 + e], 0x88), w0 = _mm512_shuffle_i32x4(u[e], u[4 + e], 0xdd);
    const __m512i v1 = _mm512_shuffle_i32x4(u[8 + e], u[12 + e], 0x88), w1 = _mm512_shuffle_i32x4(u[8 + e], u[12 + e], 0xdd);
    r[e] = _mm512_shuffle_i32x4(v0, v1, 0x88);
    r[8 + e] = _mm512_shuffle_i32x4(v0, v1, 0xdd);
    r[4 + e] = _mm512_shuffle_i32x4(w0, w1, 0x88);
    r[12 + e] = _mm512_shuffle_i32x4(w0, w1, 0xdd);
  }
}

/* The 64 unsigned quants of register c (elements 64c .. 64c+63) of one q4_K / q5_K super-block. */
static inline __m512i q45_quants(int five, const uint8_t *b, int c) {
  const __m512i m4 = _mm512_set1_epi8(0x0f);
  __m512i W = _mm512_and_si512(_mm512_srlv_epi16(bcast32(b + (five ? 48 : 16) + 32 * c), shift2(0, 4)), m4);
  if (five)
    W = _mm512_mask_add_epi8(W, _mm512_test_epi8_mask(bcast32(b + 16), bits2(2 * c, 2 * c + 1)), W, _mm512_set1_epi8(16));
  return W;
}

/* The same for q6_K (before its -32). */
static inline __m512i q6_quants(const uint8_t *b, int c) {
  const __m512i m4 = _mm512_set1_epi8(0x0f), m3 = _mm512_set1_epi8(3);
  const int h = c >> 1;
  const __m512i l = _mm512_loadu_si512(b + 64 * h);
  const __m512i hb = bcast32(b + 128 + 32 * h);
  if ((c & 1) == 0)
    return _mm512_or_si512(_mm512_and_si512(l, m4), _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi16(hb, shift2(0, 2)), m3), 4));
  return _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(l, 4), m4),
                         _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi16(hb, shift2(4, 6)), m3), 4));
}

/* i32 lanes: bits [sh, sh + n) of x. */
static inline __m512i bitfield(__m512i x, int sh, int n) { return _mm512_and_si512(_mm512_srli_epi32(x, (unsigned)sh), _mm512_set1_epi32((1 << n) - 1)); }

/* The f16 in the low (hi = 0) or high (hi = 1) half of every i32 lane, as f32 (exact, as cg_f16_to_f32). */
static inline __m512 f16_lanes(__m512i x, int hi) { return _mm512_cvtph_ps(_mm512_cvtepi32_epi16(hi ? _mm512_srli_epi32(x, 16) : x)); }

/*
 * Scales, mins and d of one super-block of 16 rows, straight into lane r = row r: the 32-bit words
 * at byte `at` of every row's block, gathered (rows r >= nr read nothing and are 0).
 */
static inline __m512i gather_rows(const uint8_t *b, __m512i rowoff, __mmask16 live, int at) {
  return _mm512_mask_i32gather_epi32(_mm512_setzero_si512(), live, rowoff, b + at, 1);
}

/*
 * The sub-block scales S[j] (i32) and mins M[j] (i16 pair (m, m), m < 64) of one super-block of 16
 * rows from the packed 12 bytes as three 32-bit words per lane (ggml's get_scale_min_k4 on bytes s:
 * j < 4: sc = s[j] & 63, m = s[j + 4] & 63; j = 4 + q: sc = (s[8 + q] & 15) | (s[q] >> 6) << 4,
 * m = (s[8 + q] >> 4) | (s[4 + q] >> 6) << 4).
 */
static inline __attribute__((always_inline)) void q45_scales(__m512i s0, __m512i s1, __m512i s2, __m512i S[8], __m512i M[8]) {
  for (int q = 0; q < 4; q++) {
    const __m512i m_lo = bitfield(s1, 8 * q, 6);
    const __m512i m_hi = _mm512_or_si512(bitfield(s2, 8 * q + 4, 4), _mm512_slli_epi32(bitfield(s1, 8 * q + 6, 2), 4));
    S[q] = bitfield(s0, 8 * q, 6);
    S[4 + q] = _mm512_or_si512(bitfield(s2, 8 * q, 4), _mm512_slli_epi32(bitfield(s0, 8 * q + 6, 2), 4));
    M[q] = _mm512_or_si512(m_lo, _mm512_slli_epi32(m_lo, 16));
    M[4 + q] = _mm512_or_si512(m_hi, _mm512_slli_epi32(m_hi, 16));
  }
}

/* Panel scales, mins and d / dmin from the words of a super-block of 16 rows (dd: d and dmin). */
static void store_scales_q45(__m512i dd, __m512i s0, __m512i s1, __m512i s2, uint8_t *p) {
  __m512i S[8], M[8];
  q45_scales(s0, s1, s2, S, M);
  for (int j = 0; j < 8; j++) {
    _mm512_store_si512((__m512i *)(p + QB) + j, S[j]);
    _mm512_store_si512((__m512i *)(p + QB + 512) + j, M[j]);
  }
  _mm512_store_ps(p + QB + 1024, f16_lanes(dd, 0));
  _mm512_store_ps(p + QB + 1024 + 64, f16_lanes(dd, 1));
}

static void pack_scales_q45(const uint8_t *b, __m512i rowoff, __mmask16 live, uint8_t *p) {
  store_scales_q45(gather_rows(b, rowoff, live, 0), gather_rows(b, rowoff, live, 4), gather_rows(b, rowoff, live, 8),
                   gather_rows(b, rowoff, live, 12), p);
}

/* Panel scales S[16], offsets O[8] and d of one q6_K super-block of 16 rows from its int8 scales as
 * four 32-bit words per lane (g[q]: scales 4q .. 4q+3) and the rows' d. */
static void store_scales_q6(const __m512i g[4], __m512 d, uint8_t *p) {
  __m512i *S = (__m512i *)(p + QB), *O = (__m512i *)(p + QB + 1024);
  const __m512i lo16 = _mm512_set1_epi32(0xffff), m32 = _mm512_set1_epi32(-32);
  for (int q = 0; q < 4; q++) {
    __m512i sc[4];
    for (int e = 0; e < 4; e++) {
      sc[e] = _mm512_srai_epi32(_mm512_slli_epi32(g[q], (unsigned)(24 - 8 * e)), 24);
      _mm512_store_si512(S + 4 * q + e, sc[e]);
    }
    /* pairs (-32 sc_2k, -32 sc_2k+1), k = 2q and 2q + 1 */
    for (int h = 0; h < 2; h++)
      _mm512_store_si512(O + 2 * q + h, _mm512_or_si512(_mm512_and_si512(_mm512_mullo_epi32(sc[2 * h], m32), lo16),
                                                        _mm512_slli_epi32(_mm512_mullo_epi32(sc[2 * h + 1], m32), 16)));
  }
  _mm512_store_ps(p + QB + 1024 + 512, d);
}

static void pack_scales_q6(const uint8_t *b, __m512i rowoff, __mmask16 live, uint8_t *p) {
  __m512i g[4];
  for (int q = 0; q < 4; q++) g[q] = gather_rows(b, rowoff, live, 192 + 4 * q);
  /* d is the f16 at 208: the word at 206 (inside the 210-byte block), high half */
  store_scales_q6(g, f16_lanes(gather_rows(b, rowoff, live, 206), 1), p);
}

static void kq_pack(int type, int nbk, const uint8_t *w, size_t row_bytes, int nr, uint8_t *panel) {
  const int six = type == WT_Q6_K, five = type == WT_Q5_K;
  const size_t bb = six ? 210 : five ? 176 : 144;
  const size_t pb = six ? P6_BYTES : P45_BYTES;
  const __mmask16 live = nr >= R16 ? (__mmask16)0xffff : (__mmask16)((1u << nr) - 1);
  const __m512i rowoff = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                            _mm512_set1_epi32((int)row_bytes));
  for (int i = 0; i < nbk; i++) {
    uint8_t *p = panel + (size_t)i * pb;
    const uint8_t *b0 = w + (size_t)i * bb;
    for (int c = 0; c < 4; c++) {
      __m512i R[R16];
      for (int r = 0; r < R16; r++) {
        const uint8_t *b = b0 + (size_t)r * row_bytes;
        R[r] = r >= nr ? _mm512_setzero_si512() : six ? q6_quants(b, c) : q45_quants(five, b, c);
      }
      transpose16(R);
      for (int k = 0; k < 16; k++) _mm512_store_si512((__m512i *)(p + 64 * (16 * c + k)), R[k]);
    }
    if (six) pack_scales_q6(b0, rowoff, live, p);
    else pack_scales_q45(b0, rowoff, live, p);
  }
}

/* ---------------------------------------------------------------- tiles */

#define BC(p) _mm512_set1_epi32(ld_i32(p))

/* gen_kq_dot's float step of q4_K / q5_K for one token and super-block: acc + d_a * (d * isum -
 * dmin * msum), msum the sub-block mins M (i16 pairs) against the token's q8_K block sums. */
static inline __attribute__((always_inline)) __m512 kq45_token(const __m512i M[8], __m512 d, __m512 dm, __m512i isum,
                                                               const block_q8_K *y, __m512 acc) {
  __m512i ms = _mm512_setzero_si512();
  for (int k = 0; k < 8; k++) ms = _mm512_dpwssd_epi32(ms, M[k], BC(y->bsums + 2 * k));
  const __m512 v = _mm512_sub_ps(_mm512_mul_ps(d, _mm512_cvtepi32_ps(isum)), _mm512_mul_ps(dm, _mm512_cvtepi32_ps(ms)));
  return _mm512_add_ps(acc, _mm512_mul_ps(_mm512_set1_ps(y->d), v));
}

/*
 * One super-block of a panel against nt tokens, into the tokens' float accumulators. SUB: quants
 * per sub-block (32 for q4_K / q5_K, 16 for q6_K); G = SUB / 4 registers per sub-block.
 */
static inline __attribute__((always_inline)) void tile_sb(int six, const uint8_t *p, const block_q8_K *a, size_t astride,
                                                          int i, int nt, __m512 *acc) {
  const int G = six ? 4 : 8, NS = six ? 16 : 8;
  __m512i isum[NT];
  for (int t = 0; t < nt; t++) isum[t] = _mm512_setzero_si512();
  for (int j = 0; j < NS; j++) {
    __m512i W[8];
    for (int g = 0; g < G; g++) W[g] = _mm512_load_si512((const __m512i *)(p + 64 * (G * j + g)));
    const __m512i S = _mm512_load_si512((const __m512i *)(p + QB + 64 * j));
    for (int t = 0; t < nt; t++) {
      const int8_t *q = a[(size_t)t * astride + i].qs + 4 * G * j;
      /* two chains per sub-block and token: shorter dependency chains for the out-of-order core */
      __m512i s0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), W[0], BC(q));
      __m512i s1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), W[1], BC(q + 4));
      for (int g = 2; g < G; g += 2) {
        s0 = _mm512_dpbusd_epi32(s0, W[g], BC(q + 4 * g));
        s1 = _mm512_dpbusd_epi32(s1, W[g + 1], BC(q + 4 * g + 4));
      }
      isum[t] = _mm512_add_epi32(isum[t], _mm512_mullo_epi32(_mm512_add_epi32(s0, s1), S));
    }
  }
  if (six) {
    __m512i O[8];
    for (int k = 0; k < 8; k++) O[k] = _mm512_load_si512((const __m512i *)(p + QB + 1024 + 64 * k));
    const __m512 d = _mm512_load_ps((const float *)(p + QB + 1024 + 512));
    for (int t = 0; t < nt; t++) {
      const block_q8_K *y = a + (size_t)t * astride + i;
      __m512i s = isum[t];
      for (int k = 0; k < 8; k++) s = _mm512_dpwssd_epi32(s, O[k], BC(y->bsums + 2 * k));
      /* gen_kq_dot: d_a * (d * isum - 0 * 0); x - 0 is x exactly */
      acc[t] = _mm512_add_ps(acc[t], _mm512_mul_ps(_mm512_set1_ps(y->d), _mm512_mul_ps(d, _mm512_cvtepi32_ps(s))));
    }
  } else {
    __m512i M[8];
    for (int k = 0; k < 8; k++) M[k] = _mm512_load_si512((const __m512i *)(p + QB + 512 + 64 * k));
    const __m512 d = _mm512_load_ps((const float *)(p + QB + 1024)), dm = _mm512_load_ps((const float *)(p + QB + 1024 + 64));
    for (int t = 0; t < nt; t++) acc[t] = kq45_token(M, d, dm, isum[t], a + (size_t)t * astride + i, acc[t]);
  }
}

static inline __attribute__((always_inline)) void tile_n(int six, int nbk, const uint8_t *p, const block_q8_K *a,
                                                         size_t astride, int nt, const float *bias, int nr, float *out,
                                                         size_t ostride) {
  const size_t pb = six ? P6_BYTES : P45_BYTES;
  __m512 acc[NT];
  for (int t = 0; t < nt; t++) acc[t] = _mm512_setzero_ps();
  for (int i = 0; i < nbk; i++, p += pb) tile_sb(six, p, a, astride, i, nt, acc);
  const __mmask16 k = nr >= R16 ? (__mmask16)0xffff : (__mmask16)((1u << nr) - 1);
  /* + 0.0f without a bias, as ops.c's put() adds */
  const __m512 b = bias ? _mm512_maskz_loadu_ps(k, bias) : _mm512_setzero_ps();
  for (int t = 0; t < nt; t++) _mm512_mask_storeu_ps(out + (size_t)t * ostride, k, _mm512_add_ps(acc[t], b));
}

/* type and nt as constants for the full 8-token tile, so the accumulators stay in registers. */
static void kq_tile(int type, int nbk, const uint8_t *panel, const block_q8_K *a, size_t astride, int nt, const float *bias,
                    int nr, float *out, size_t ostride) {
  const int six = type == WT_Q6_K;
  if (nt == NT) {
    if (six) tile_n(1, nbk, panel, a, astride, NT, bias, nr, out, ostride);
    else tile_n(0, nbk, panel, a, astride, NT, bias, nr, out, ostride);
  } else {
    if (six) tile_n(1, nbk, panel, a, astride, nt, bias, nr, out, ostride);
    else tile_n(0, nbk, panel, a, astride, nt, bias, nr, out, ostride);
  }
}

/* ---------------------------------------------------------------- x16 layout (kq16.h) */

/* the k-quants only: q4_1 / q5_0 / q5_1 have their own (cg_gemm_lq) */
static int x16_types(int type) { return WT_IS_KQUANT(type) && cg_kq16_type(type); }

/* Nibble section k of a record with its high bits: the unsigned quants of elements 4k .. 4k+3 (*lo)
 * and 128 + 4k .. 128 + 4k+3 (*up) of every row, i.e. the GEMM panel's registers k and 32 + k. */
static inline __attribute__((always_inline)) void x16_quants(int type, const uint8_t *rec, int k, __m512i *lo, __m512i *up) {
  const __m512i m4 = _mm512_set1_epi8(0x0f);
  const __m512i q = _mm512_loadu_si512((const __m512i *)(rec + kq16_nibble_at(type, k)));
  *lo = _mm512_and_si512(q, m4);
  *up = _mm512_and_si512(_mm512_srli_epi16(q, 4), m4);
  if (type == WT_Q5_K) {
    const __m512i h = _mm512_loadu_si512((const __m512i *)(rec + kq16_high_at(type, k))), sixteen = _mm512_set1_epi8(16);
    const int sh = 2 * (k % 4);
    *lo = _mm512_mask_add_epi8(*lo, _mm512_test_epi8_mask(h, _mm512_set1_epi8((char)(1 << sh))), *lo, sixteen);
    *up = _mm512_mask_add_epi8(*up, _mm512_test_epi8_mask(h, _mm512_set1_epi8((char)(2 << sh))), *up, sixteen);
  } else if (type == WT_Q6_K) {
    /* the two bits to bits 4-5 of every byte: 16-bit shifts by at most 4 bring no bit of the other byte there */
    const __m512i h = _mm512_loadu_si512((const __m512i *)(rec + kq16_high_at(type, k))), m30 = _mm512_set1_epi8(0x30);
    const __m512i hl = k % 2 ? h : _mm512_slli_epi16(h, 4), hu = k % 2 ? _mm512_srli_epi16(h, 2) : _mm512_slli_epi16(h, 2);
    *lo = _mm512_or_si512(*lo, _mm512_and_si512(hl, m30));
    *up = _mm512_or_si512(*up, _mm512_and_si512(hu, m30));
  }
}

/* The 16 rows' f16 d (q6_K) or (d, dmin) words (q4_K, q5_K) at the start of a record. */
static inline __m512 x16_q6_d(const uint8_t *rec) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)rec)); }
static inline __m512i x16_word(const uint8_t *rec, int at) { return _mm512_loadu_si512((const __m512i *)(rec + at)); }

static void x16_pack(int type, int nbk, const uint8_t *group, uint8_t *panel) {
  const int six = type == WT_Q6_K;
  const size_t rb = cg_kq16_record(type), pb = six ? P6_BYTES : P45_BYTES;
  for (int i = 0; i < nbk; i++) {
    const uint8_t *rec = group + (size_t)i * rb;
    uint8_t *p = panel + (size_t)i * pb;
    for (int k = 0; k < 32; k++) {
      __m512i lo, up;
      x16_quants(type, rec, k, &lo, &up);
      _mm512_store_si512((__m512i *)(p + 64 * k), lo);
      _mm512_store_si512((__m512i *)(p + 64 * (32 + k)), up);
    }
    if (six) {
      const __m512i g[4] = {x16_word(rec, 32), x16_word(rec, 96), x16_word(rec, 160), x16_word(rec, 224)};
      store_scales_q6(g, x16_q6_d(rec), p);
    } else {
      store_scales_q45(x16_word(rec, 0), x16_word(rec, 64), x16_word(rec, 128), x16_word(rec, 192), p);
    }
  }
}

/*
 * Software prefetch of the weight stream, X16_PF_RECORDS k-quant records (9-13 KiB) ahead, a pass's
 * share at a time. Without it a decode thread read x16 records slower than ggml's rows although its
 * kernel is twice as fast from cache (one thread, 13696 x 2048 streamed from DRAM: q4_K 23.6 GB/s,
 * q5_K 15.9 against 33.1 and 31.5 with it; 2, 6 and 8 records ahead measured worse or no better).
 * The q4_1 / q5_0 / q5_1 records stream well without it (the same prefetch measured no better).
 */
#define X16_PF_RECORDS 4

static inline __attribute__((always_inline)) void x16_prefetch(const uint8_t *p, size_t bytes) {
  for (size_t o = 0; o < bytes; o += 64) _mm_prefetch((const char *)p + o, _MM_HINT_T0);
}

/* Sub-block j's scale of q6_K as i32 lanes: int8 j % 4 of the scale word j / 4. */
static inline __m512i x16_q6_scale(const uint8_t *rec, int j) {
  return _mm512_srai_epi32(_mm512_slli_epi32(x16_word(rec, 32 + 64 * (j / 4)), (unsigned)(24 - 8 * (j % 4))), 24);
}

/*
 * One record (16 rows x one super-block) against nt tokens, into their float accumulators: tile_sb's
 * integer sums and float steps (records need not be 64-byte aligned: a plain typed array holds them).
 * Pass h takes G nibble sections: sub-block h in their low nibbles, sub-block NH + h in their high
 * ones. q6_K's -32 goes in per sub-block (the q8_K block sums times 32) rather than through O pairs:
 * the same exact int32.
 */
static inline __attribute__((always_inline)) void x16_sb(int type, const uint8_t *rec, const block_q8_K *a, size_t astride, int i, int nt,
                                                         __m512 *acc) {
  const int six = type == WT_Q6_K, G = six ? 4 : 8, NH = six ? 8 : 4;
  __m512i S[8], M[8], isum[NT];
  if (!six) q45_scales(x16_word(rec, 64), x16_word(rec, 128), x16_word(rec, 192), S, M);
  for (int t = 0; t < nt; t++) isum[t] = _mm512_setzero_si512();
  for (int h = 0; h < NH; h++) {
    __m512i L[8], U[8];
    for (int g = 0; g < G; g++) x16_quants(type, rec, G * h + g, &L[g], &U[g]);
    {
      const size_t rb = cg_kq16_record(type), part = (rb + NH - 1) / NH;
      x16_prefetch(rec + X16_PF_RECORDS * rb + h * part, part);
    }
    const __m512i sl = six ? x16_q6_scale(rec, h) : S[h], su = six ? x16_q6_scale(rec, NH + h) : S[NH + h];
    for (int t = 0; t < nt; t++) {
      const block_q8_K *y = a + (size_t)t * astride + i;
      const int8_t *q = y->qs + 4 * G * h;
      __m512i l0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), L[0], BC(q));
      __m512i l1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), L[1], BC(q + 4));
      __m512i u0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), U[0], BC(q + 128));
      __m512i u1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), U[1], BC(q + 132));
      for (int g = 2; g < G; g += 2) {
        l0 = _mm512_dpbusd_epi32(l0, L[g], BC(q + 4 * g));
        l1 = _mm512_dpbusd_epi32(l1, L[g + 1], BC(q + 4 * g + 4));
        u0 = _mm512_dpbusd_epi32(u0, U[g], BC(q + 128 + 4 * g));
        u1 = _mm512_dpbusd_epi32(u1, U[g + 1], BC(q + 132 + 4 * g));
      }
      __m512i ls = _mm512_add_epi32(l0, l1), us = _mm512_add_epi32(u0, u1);
      if (six) {
        ls = _mm512_sub_epi32(ls, _mm512_set1_epi32(32 * y->bsums[h]));
        us = _mm512_sub_epi32(us, _mm512_set1_epi32(32 * y->bsums[NH + h]));
      }
      isum[t] = _mm512_add_epi32(isum[t], _mm512_add_epi32(_mm512_mullo_epi32(ls, sl), _mm512_mullo_epi32(us, su)));
    }
  }
  if (six) {
    const __m512 d = x16_q6_d(rec);
    for (int t = 0; t < nt; t++)
      acc[t] = _mm512_add_ps(acc[t], _mm512_mul_ps(_mm512_set1_ps(a[(size_t)t * astride + i].d), _mm512_mul_ps(d, _mm512_cvtepi32_ps(isum[t]))));
    return;
  }
  const __m512i dd = x16_word(rec, 0);
  const __m512 d = f16_lanes(dd, 0), dm = f16_lanes(dd, 1);
  for (int t = 0; t < nt; t++) acc[t] = kq45_token(M, d, dm, isum[t], a + (size_t)t * astride + i, acc[t]);
}

static inline __attribute__((always_inline)) void x16_dot_n(int type, int nbk, const uint8_t *group, const block_q8_K *a, size_t astride,
                                                            int nt, float *out) {
  const size_t rb = cg_kq16_record(type);
  __m512 acc[NT];
  for (int t = 0; t < nt; t++) acc[t] = _mm512_setzero_ps();
  for (int i = 0; i < nbk; i++) x16_sb(type, group + (size_t)i * rb, a, astride, i, nt, acc);
  for (int t = 0; t < nt; t++) _mm512_storeu_ps(out + 16 * t, acc[t]);
}

/* type as a constant, and nt too for one token (decode), so the accumulators stay in registers. */
static void x16_dot(int type, int nbk, const uint8_t *group, const block_q8_K *a, size_t astride, int nt, float *out) {
  switch (type) {
    case WT_Q4_K:
      if (nt == 1) x16_dot_n(WT_Q4_K, nbk, group, a, astride, 1, out);
      else x16_dot_n(WT_Q4_K, nbk, group, a, astride, nt, out);
      break;
    case WT_Q5_K:
      if (nt == 1) x16_dot_n(WT_Q5_K, nbk, group, a, astride, 1, out);
      else x16_dot_n(WT_Q5_K, nbk, group, a, astride, nt, out);
      break;
    default:
      if (nt == 1) x16_dot_n(WT_Q6_K, nbk, group, a, astride, 1, out);
      else x16_dot_n(WT_Q6_K, nbk, group, a, astride, nt, out);
      break;
  }
}

const cg_gemm_kq cg_gemm_kq_avx512 = {
    .panel_bytes = kq_panel_bytes,
    .pack = kq_pack,
    .tile = kq_tile,
    .x16_types = x16_types,
    .x16_dot = x16_dot,
    .x16_pack = x16_pack,
};

/* ---------------------------------------------------------------- q4_1, q5_0, q5_1 */

/*
 * Panel per block of 32 (16 rows): 8 registers of unsigned quants (register k = elements 4k .. 4k+3
 * of each row; q4_1 0..15, q5 0..31 before q5_0's -16), then d[16] and m[16] (f32; q5_0 m = 0).
 */
#define LQ_BYTES (512 + 64 + 64)

static size_t lq_panel_bytes(int type, int nb) { return WT_IS_LEGACY(type) ? (size_t)nb * LQ_BYTES : 0; }

/* One row's block as 32 unsigned quants: element j < 16 the low nibble of qs[j], j >= 16 the high one of qs[j - 16], + 16 where bit j of qh is set. */
static inline __m256i lq_quants(int type, const uint8_t *b) {
  const __m128i m4 = _mm_set1_epi8(0x0f);
  const int qs_at = type == WT_Q4_1 ? 4 : type == WT_Q5_0 ? 6 : 8;
  const __m128i q = _mm_loadu_si128((const __m128i *)(b + qs_at));
  __m256i W = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_and_si128(q, m4)), _mm_and_si128(_mm_srli_epi16(q, 4), m4), 1);
  if (type != WT_Q4_1) W = _mm256_mask_add_epi8(W, (__mmask32)(uint32_t)ld_i32(b + (type == WT_Q5_0 ? 2 : 4)), W, _mm256_set1_epi8(16));
  return W;
}

static void lq_pack(int type, int nb, const uint8_t *w, size_t row_bytes, int nr, uint8_t *panel) {
  const size_t bb = type == WT_Q4_1 ? 20 : type == WT_Q5_0 ? 22 : 24;
  const __mmask16 live = nr >= R16 ? (__mmask16)0xffff : (__mmask16)((1u << nr) - 1);
  const __m512i rowoff = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                            _mm512_set1_epi32((int)row_bytes));
  /* two blocks per transpose: a row's register holds block i in its low half, i + 1 in its high one */
  for (int i = 0; i < nb; i += 2) {
    const int two = i + 1 < nb;
    __m512i R[R16];
    for (int r = 0; r < R16; r++) {
      const uint8_t *b = w + (size_t)r * row_bytes + (size_t)i * bb;
      R[r] = r >= nr ? _mm512_setzero_si512()
                     : _mm512_inserti64x4(_mm512_castsi256_si512(lq_quants(type, b)), two ? lq_quants(type, b + bb) : _mm256_setzero_si256(), 1);
    }
    transpose16(R);
    for (int h = 0; h <= two; h++) {
      uint8_t *p = panel + (size_t)(i + h) * LQ_BYTES;
      for (int k = 0; k < 8; k++) _mm512_store_si512((__m512i *)(p + 64 * k), R[8 * h + k]);
      const __m512i dm = gather_rows(w + (size_t)(i + h) * bb, rowoff, live, 0);
      _mm512_store_ps(p + 512, f16_lanes(dm, 0));
      _mm512_store_ps(p + 576, type == WT_Q5_0 ? _mm512_setzero_ps() : f16_lanes(dm, 1));
    }
  }
}

/* acc + one block of 16 rows (W: the panel's 8 registers, d and m) . one token's block y (*asum: its quants' sum). */
static inline __attribute__((always_inline)) __m512 lq_block_token(int q50, const __m512i W[8], __m512 d, __m512 m, const block_qa *y,
                                                                   const int32_t *asum, __m512 acc) {
  __m512i s0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), W[0], BC(y->qs));
  __m512i s1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), W[1], BC(y->qs + 4));
  for (int k = 2; k < 8; k += 2) {
    s0 = _mm512_dpbusd_epi32(s0, W[k], BC(y->qs + 4 * k));
    s1 = _mm512_dpbusd_epi32(s1, W[k + 1], BC(y->qs + 4 * k + 4));
  }
  __m512i s = _mm512_add_epi32(s0, s1);
  /* broadcast straight from memory, then * 16 in the vector unit (a scalar multiply first would go through a GPR) */
  if (q50) s = _mm512_sub_epi32(s, _mm512_slli_epi32(_mm512_set1_epi32(*asum), 4));
  /* gen_lq_dot: acc += d * d_a * (float)s + m * s_a, left to right, no fused multiply-add */
  const __m512 v = _mm512_add_ps(_mm512_mul_ps(_mm512_mul_ps(d, _mm512_set1_ps(y->d)), _mm512_cvtepi32_ps(s)),
                                 _mm512_mul_ps(m, _mm512_set1_ps(y->s)));
  return _mm512_add_ps(acc, v);
}

static inline __attribute__((always_inline)) void lq_tile_n(int q50, int nb, const uint8_t *p, const block_qa *a,
                                                            const int32_t *asum, size_t astride, int nt, const float *bias,
                                                            int nr, float *out, size_t ostride) {
  __m512 acc[NT];
  for (int t = 0; t < nt; t++) acc[t] = _mm512_setzero_ps();
  for (int i = 0; i < nb; i++, p += LQ_BYTES) {
    __m512i W[8];
    for (int k = 0; k < 8; k++) W[k] = _mm512_load_si512((const __m512i *)(p + 64 * k));
    const __m512 d = _mm512_load_ps((const float *)(p + 512)), m = _mm512_load_ps((const float *)(p + 576));
    for (int t = 0; t < nt; t++) acc[t] = lq_block_token(q50, W, d, m, a + (size_t)t * astride + i, asum + (size_t)t * astride + i, acc[t]);
  }
  const __mmask16 k = nr >= R16 ? (__mmask16)0xffff : (__mmask16)((1u << nr) - 1);
  const __m512 b = bias ? _mm512_maskz_loadu_ps(k, bias) : _mm512_setzero_ps();
  for (int t = 0; t < nt; t++) _mm512_mask_storeu_ps(out + (size_t)t * ostride, k, _mm512_add_ps(acc[t], b));
}

static void lq_tile(int type, int nb, const uint8_t *panel, const block_qa *a, const int32_t *asum, size_t astride, int nt,
                    const float *bias, int nr, float *out, size_t ostride) {
  const int q50 = type == WT_Q5_0;
  if (nt == NT) {
    if (q50) lq_tile_n(1, nb, panel, a, asum, astride, NT, bias, nr, out, ostride);
    else lq_tile_n(0, nb, panel, a, asum, astride, NT, bias, nr, out, ostride);
  } else {
    if (q50) lq_tile_n(1, nb, panel, a, asum, astride, nt, bias, nr, out, ostride);
    else lq_tile_n(0, nb, panel, a, asum, astride, nt, bias, nr, out, ostride);
  }
}

/* ---------------------------------------------------------------- x16 layout of q4_1 / q5_0 / q5_1 (kq16.h) */

static int lq16_types(int type) { return WT_IS_LEGACY(type); }

/* A record's bytes (its sections' offsets: kq16.h). */
static inline size_t lq16_record(int type) { return type == WT_Q4_1 ? 320 : type == WT_Q5_0 ? 352 : 384; }

static inline __mmask64 ld_mask64(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return _cvtu64_mask64(v);
}

/*
 * One record (16 rows x one block) as the lq panel's registers W[8] (unsigned quants, before q5_0's
 * -16), d and m (q5_0: 0), what lq_pack makes of the same rows: nibble section k's low nibbles are
 * register k, its high ones register 4 + k, and mask j says where register j gets its 16.
 */
static inline __attribute__((always_inline)) void lq16_unpack(int type, const uint8_t *rec, __m512i W[8], __m512 *d, __m512 *m) {
  const __m512i m4 = _mm512_set1_epi8(0x0f);
  const uint8_t *nib = rec + lq16_nibbles_at(type);
  for (int k = 0; k < 4; k++) {
    const __m512i q = _mm512_loadu_si512((const __m512i *)(nib + 64 * k));
    W[k] = _mm512_and_si512(q, m4);
    W[4 + k] = _mm512_and_si512(_mm512_srli_epi16(q, 4), m4);
  }
  if (type != WT_Q4_1) {
    const __m512i sixteen = _mm512_set1_epi8(16);
    const uint8_t *masks = rec + lq16_masks_at(type);
    for (int j = 0; j < 8; j++) W[j] = _mm512_mask_add_epi8(W[j], ld_mask64(masks + 8 * j), W[j], sixteen);
  }
  if (type == WT_Q5_0) {
    *d = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)rec));
    *m = _mm512_setzero_ps();
  } else {
    const __m512i dm = _mm512_loadu_si512((const __m512i *)rec);
    *d = f16_lanes(dm, 0);
    *m = f16_lanes(dm, 1);
  }
}

static void lq16_pack(int type, int nb, const uint8_t *group, uint8_t *panel) {
  const size_t rb = lq16_record(type);
  for (int i = 0; i < nb; i++) {
    __m512i W[8];
    __m512 d, m;
    uint8_t *p = panel + (size_t)i * LQ_BYTES;
    lq16_unpack(type, group + (size_t)i * rb, W, &d, &m);
    for (int k = 0; k < 8; k++) _mm512_store_si512((__m512i *)(p + 64 * k), W[k]);
    _mm512_store_ps(p + 512, d);
    _mm512_store_ps(p + 576, m);
  }
}

/* lq_tile_n on a group read in place: the same registers, so the same sums and float steps. */
static inline __attribute__((always_inline)) void lq16_dot_n(int type, int nb, const uint8_t *group, const block_qa *a,
                                                             const int32_t *asum, size_t astride, int nt, float *out) {
  const size_t rb = lq16_record(type);
  const int q50 = type == WT_Q5_0;
  __m512 acc[NT];
  for (int t = 0; t < nt; t++) acc[t] = _mm512_setzero_ps();
  for (int i = 0; i < nb; i++) {
    __m512i W[8];
    __m512 d, m;
    lq16_unpack(type, group + (size_t)i * rb, W, &d, &m);
    for (int t = 0; t < nt; t++)
      acc[t] = lq_block_token(q50, W, d, m, a + (size_t)t * astride + i, q50 ? asum + (size_t)t * astride + i : NULL, acc[t]);
  }
  for (int t = 0; t < nt; t++) _mm512_storeu_ps(out + 16 * t, acc[t]);
}

/* The type as a constant (its record offsets fold), and one token (decode) with its accumulator in a register. */
#define LQ16_DOT(T)                                                   \
  do {                                                                \
    if (nt == 1) lq16_dot_n(T, nb, group, a, asum, astride, 1, out);  \
    else lq16_dot_n(T, nb, group, a, asum, astride, nt, out);         \
  } while (0)

static void lq16_dot(int type, int nb, const uint8_t *group, const block_qa *a, const int32_t *asum, size_t astride, int nt,
                     float *out) {
  switch (type) {
    case WT_Q4_1: LQ16_DOT(WT_Q4_1); break;
    case WT_Q5_0: LQ16_DOT(WT_Q5_0); break;
    default: LQ16_DOT(WT_Q5_1); break;
  }
}

const cg_gemm_lq cg_gemm_lq_avx512 = {
    .panel_bytes = lq_panel_bytes,
    .pack = lq_pack,
    .tile = lq_tile,
    .x16_types = lq16_types,
    .x16_dot = lq16_dot,
    .x16_pack = lq16_pack,
};

#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif

/*
 * Kernel-table check without Node: every kernel of every table this CPU can run (as the addon's
 * dispatch in ops.c lists them) against the portable scalar table on seeded random inputs, and the
 * scalar integer dot products against an exact integer/double oracle. x8 inputs are built by
 * cg_repack, the routine the addon uses; then matmul and attention through ops.c with the table
 * selected by name, as the addon does. One line per check; exit status 1 on any mismatch.
 *
 *   cc -O3 -std=c11 -fno-strict-aliasing native/test/kernel-check.c native/ops.c native/pool.c \
 *      native/kernels_scalar.c native/kernels_avx2.c native/kernels_avx512.c native/kernels_neon.c native/gemm_avx512.c native/gemm_kquants_avx512.c native/kq16.c \
 *      -lm -lpthread -o kernel-check && ./kernel-check [--expect-best NAME] [--expect-isas a,b,c]
 *
 * The same sources cross-compile for aarch64 (-static) and run under qemu-aarch64 -cpu max (SDOT)
 * or -cpu cortex-a57 (none): see native/test/check-neon.sh.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../attn_bf16.h"
#include "../attn_decode.h"
#include "../gemm.h"
#include "../gemm_kq.h"
#include "../kernels.h"
#include "../kq16.h"
#include "../ops.h"

/* ------------------------------------------------------------ inputs */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}
static float uni(void) { return (float)((rnd() >> 40) * (1.0 / 16777216.0)); } /* [0, 1) */
static float sym(float s) { return (2.0f * uni() - 1.0f) * s; }
static int irange(int lo, int hi) { return lo + (int)(rnd() % (uint64_t)(hi - lo + 1)); }

/* k floats; block b gets its own scale (some tiny, some large) and block 1 is all zero. */
static void fill_act(float *x, int k) {
  for (int b = 0; b < k / QK; b++) {
    const float s = b == 1 ? 0.0f : powf(10.0f, sym(3.0f));
    for (int j = 0; j < QK; j++) x[b * QK + j] = sym(s);
  }
}

static void fill_q8_rows(uint8_t *dst, int rows, int nb) {
  block_q8_0 *b = (block_q8_0 *)dst;
  for (int i = 0; i < rows * nb; i++) {
    b[i].d = cg_f32_to_f16(0.001f + 0.05f * uni());
    /* [-127, 127]: what ggml's quantizer produces. */
    for (int j = 0; j < QK; j++) b[i].qs[j] = (int8_t)irange(-127, 127);
  }
}

static void fill_q4_rows(uint8_t *dst, int rows, int nb) {
  block_q4_0 *b = (block_q4_0 *)dst;
  for (int i = 0; i < rows * nb; i++) {
    b[i].d = cg_f32_to_f16(0.001f + 0.05f * uni());
    for (int j = 0; j < QK / 2; j++) b[i].qs[j] = (uint8_t)(rnd() & 0xff);
  }
}

/* ------------------------------------------------------------ oracle */

/* Exact integer block sums, scaled in double: the value every int8 dot product approximates.
 * *mag bounds what float rounding can be relative to: the same sum over |terms|, with the +8 offset
 * for q4_0 that the x86 kernels carry through the float accumulation. */
static double oracle_row(int q4, int nb, const uint8_t *row, const block_qa *a, double *mag) {
  double acc = 0, m = 0;
  for (int i = 0; i < nb; i++) {
    long s = 0, sa = 0;
    float dw;
    if (q4) {
      const block_q4_0 *w = (const block_q4_0 *)row + i;
      dw = cg_f16_to_f32(w->d);
      for (int j = 0; j < QK / 2; j++) {
        const int lo = (w->qs[j] & 0x0f) - 8, hi = (w->qs[j] >> 4) - 8;
        s += (long)lo * a[i].qs[j] + (long)hi * a[i].qs[j + 16];
        sa += (long)(labs(lo) + 8) * labs(a[i].qs[j]) + (long)(labs(hi) + 8) * labs(a[i].qs[j + 16]);
      }
    } else {
      const block_q8_0 *w = (const block_q8_0 *)row + i;
      dw = cg_f16_to_f32(w->d);
      for (int j = 0; j < QK; j++) {
        s += (long)w->qs[j] * a[i].qs[j];
        sa += labs(w->qs[j]) * labs(a[i].qs[j]);
      }
    }
    acc += (double)dw * a[i].d * (double)s;
    m += fabs((double)dw * a[i].d) * (double)sa;
  }
  *mag = m;
  return acc;
}

/* ------------------------------------------------------------ bookkeeping */

typedef struct {
  double worst; /* max |got - want| / allowed; <= 1 passes */
  double rel;   /* max |got - want| / scale, for the report */
  long n;
} stat_t;

static int failures = 0;

static void note(stat_t *st, double got, double want, double scale, double tol) {
  const double err = fabs(got - want);
  const double allowed = tol * scale + 1e-30;
  const double r = (got != got || want != want) ? (got != got && want != want ? 0 : INFINITY) : err / allowed;
  if (r > st->worst) st->worst = r;
  if (scale > 0 && err / scale > st->rel) st->rel = err / scale;
  st->n++;
}

static void report(const char *isa, const char *kernel, const char *against, stat_t *st, const char *how) {
  const int ok = st->worst <= 1.0;
  if (!ok) failures++;
  printf("%-11s %-12s vs %-7s %s  %6ld values, max err %.2e %s\n", isa, kernel, against, ok ? "ok  " : "FAIL", st->n,
         st->rel, how);
}

static uint32_t fbits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}

/* ------------------------------------------------------------ k-quants */

static const int KQ_TYPES[] = {WT_Q2_K, WT_Q3_K, WT_Q4_K, WT_Q5_K, WT_Q6_K};
static const int KQ_BYTES[] = {84, 110, 144, 176, 210};

static double h16(const uint8_t *p) { return cg_f16_to_f32((uint16_t)(p[0] | (p[1] << 8))); }

/* Element e of a k-quant super-block, exactly, read straight from ggml-common.h's layout. */
static double kq_element(int type, const uint8_t *b, int e) {
  const int half = e >> 7, g = (e & 127) >> 5, l = e & 31;
  switch (type) {
    case WT_Q2_K: {
      const int sc = b[e >> 4], q = (b[16 + 32 * half + l] >> (2 * g)) & 3;
      return h16(b + 80) * (sc & 15) * q - h16(b + 82) * (sc >> 4);
    }
    case WT_Q3_K: {
      const int j = e >> 4;
      const int lo = j < 8 ? b[96 + j] & 15 : b[96 + j - 8] >> 4;
      const int hi = (b[104 + j % 4] >> (2 * (j / 4))) & 3;
      const int q = ((b[32 + 32 * half + l] >> (2 * g)) & 3) + 4 * ((b[e & 31] >> (e >> 5)) & 1) - 4;
      return h16(b + 108) * (lo + 16 * hi - 32) * q;
    }
    case WT_Q4_K:
    case WT_Q5_K: {
      const int s = e >> 5;
      const uint8_t *S = b + 4;
      const int sc = s < 4 ? S[s] & 63 : (S[s + 4] & 15) + 16 * (S[s - 4] >> 6);
      const int mn = s < 4 ? S[s + 4] & 63 : (S[s + 4] >> 4) + 16 * (S[s] >> 6);
      const int byte = b[(type == WT_Q5_K ? 48 : 16) + 32 * (e >> 6) + l];
      int q = s % 2 == 0 ? byte & 15 : byte >> 4;
      if (type == WT_Q5_K) q += 16 * ((b[16 + l] >> s) & 1);
      return h16(b) * sc * q - h16(b + 2) * mn;
    }
    default: { /* q6_K */
      const int lowb = b[64 * half + 32 * (g % 2) + l];
      const int low = g < 2 ? lowb & 15 : lowb >> 4;
      const int high = (b[128 + 32 * half + l] >> (2 * g)) & 3;
      return h16(b + 208) * (int8_t)b[192 + (e >> 4)] * (low + 16 * high - 32);
    }
  }
}

static void fill_kq_rows(uint8_t *dst, size_t bytes, int type) {
  for (size_t i = 0; i < bytes; i++) dst[i] = (uint8_t)rnd();
  const int bb = type == WT_Q2_K ? 84 : type == WT_Q3_K ? 110 : type == WT_Q4_K ? 144 : type == WT_Q5_K ? 176 : 210;
  for (size_t o = 0; o + bb <= bytes; o += bb) {
    const int at[2] = {type == WT_Q2_K ? 80 : type == WT_Q3_K ? 108 : type == WT_Q6_K ? 208 : 0,
                       type == WT_Q2_K ? 82 : (type == WT_Q4_K || type == WT_Q5_K) ? 2 : -1};
    for (int k = 0; k < 2; k++)
      if (at[k] >= 0) {
        const uint16_t h = cg_f32_to_f16(0.0005f + 0.01f * uni());
        memcpy(dst + o + at[k], &h, 2);
      }
  }
}

/* kq_dot_r4 and lq_dot_r4 (four rows per call, one activation row), where the table has them: every row's result
 * bit-equal to the same table's kq_dot on that row alone, and against the scalar table within the
 * usual tolerance. Rows lie rb bytes apart with a gap after each, so a wrong stride shows; nb 1, 3
 * and 8 (8: the 2048-wide rows of the 1.7B shape). */
static void check_kq_r4(const kernels_t *K, const kernels_t *S) {
  if (!K->kq_dot_r4 && !K->lq_dot_r4) return;
  stat_t se = {0}, ss = {0};
  static const int NBS[] = {1, 3, 8};
  for (int ni = 0; ni < 3 && K->kq_dot_r4; ni++) {
    const int nb = NBS[ni], k = nb * QK_K;
    float *x = (float *)malloc(sizeof(float) * (size_t)k);
    block_q8_K *a = (block_q8_K *)malloc(sizeof(block_q8_K) * (size_t)nb);
    for (int rep = 0; rep < 3; rep++) {
      fill_act(x, k);
      S->quantize_q8_K(x, a, k);
      for (int ti = 0; ti < 5; ti++) {
        const int type = KQ_TYPES[ti];
        const size_t rb = (size_t)KQ_BYTES[ti] * nb + 13;
        uint8_t *w = (uint8_t *)malloc(rb * 4);
        for (int r = 0; r < 4; r++) fill_kq_rows(w + r * rb, rb, type);
        float o4[4];
        K->kq_dot_r4(type, nb, w, rb, a, o4);
        for (int r = 0; r < 4; r++) {
          float one, ref;
          K->kq_dot(type, nb, w + r * rb, a, (size_t)nb, 1, &one);
          S->kq_dot(type, nb, w + r * rb, a, (size_t)nb, 1, &ref);
          double mag = 0;
          for (int i = 0; i < nb; i++)
            for (int e = 0; e < QK_K; e++) mag += fabs(kq_element(type, w + r * rb + (size_t)i * KQ_BYTES[ti], e) * a[i].qs[e] * a[i].d);
          note(&se, memcmp(&o4[r], &one, sizeof(float)) == 0 ? 0 : 1, 0, 1, 0);
          note(&ss, o4[r], ref, mag, 1e-5);
        }
        free(w);
      }
    }
    free(x);
    free(a);
  }
  /* lq_dot_r4 likewise against lq_dot (q4_1 / q5_0 / q5_1; odd and even block counts: 1, 5, 214 = a 6848-wide row) */
  stat_t le = {0}, ls = {0};
  static const int LNBS[] = {1, 5, 214};
  for (int ni = 0; ni < 3 && K->lq_dot_r4; ni++) {
    const int nb = LNBS[ni], k = nb * QK;
    float *x = (float *)malloc(sizeof(float) * (size_t)k);
    block_qa *a = (block_qa *)malloc(sizeof(block_qa) * (size_t)nb);
    fill_act(x, k);
    S->quantize_qa(x, a, k);
    for (int type = WT_Q4_1; type <= WT_Q5_1; type++) {
      const int bb = type == WT_Q4_1 ? 20 : type == WT_Q5_0 ? 22 : 24;
      const size_t rb = (size_t)bb * nb + 5;
      uint8_t *w = (uint8_t *)malloc(rb * 4);
      for (size_t i = 0; i < rb * 4; i++) w[i] = (uint8_t)rnd();
      for (int r = 0; r < 4; r++)
        for (int i = 0; i < nb; i++) {
          const uint16_t d = cg_f32_to_f16(0.001f + 0.05f * uni()), m = cg_f32_to_f16(sym(0.5f));
          memcpy(w + r * rb + (size_t)i * bb, &d, 2);
          if (type != WT_Q5_0) memcpy(w + r * rb + (size_t)i * bb + 2, &m, 2);
        }
      float o4[4];
      K->lq_dot_r4(type, nb, w, rb, a, o4);
      for (int r = 0; r < 4; r++) {
        float one, ref;
        K->lq_dot(type, nb, w + r * rb, a, (size_t)nb, 1, &one);
        S->lq_dot(type, nb, w + r * rb, a, (size_t)nb, 1, &ref);
        note(&le, memcmp(&o4[r], &one, sizeof(float)) == 0 ? 0 : 1, 0, 1, 0);
        /* a bound on sum |terms|: |value| <= 31 |d| + |m| per element */
        double mag = 0;
        for (int i = 0; i < nb; i++) {
          const uint8_t *b = w + r * rb + (size_t)i * bb;
          double sa = 0;
          for (int e = 0; e < QK; e++) sa += fabs((double)a[i].qs[e]);
          mag += (31 * fabs(h16(b)) + (type == WT_Q5_0 ? 16 * fabs(h16(b)) : fabs(h16(b + 2)))) * fabs(a[i].d) * sa;
        }
        note(&ls, o4[r], ref, mag, 1e-5);
      }
      free(w);
    }
    free(x);
    free(a);
  }
  if (K->lq_dot_r4) {
    report(K->name, "lq_dot_r4", K->name, &le, "(q4_1, q5_0, q5_1, 4 rows; bit-equal to lq_dot row by row)");
    report(K->name, "lq_dot_r4", S->name, &ls, "(q4_1, q5_0, q5_1, 4 rows, 1-214 blocks; relative to a bound on sum |terms|)");
  }
  if (!K->kq_dot_r4) return;
  report(K->name, "kq_dot_r4", K->name, &se, "(q2_K..q6_K, 4 rows; bit-equal to kq_dot row by row)");
  report(K->name, "kq_dot_r4", S->name, &ss, "(q2_K..q6_K, 4 rows, 1-8 super-blocks; relative to sum |terms|)");
}

/* quantize_q8_K bit-equal to the scalar table's; kq_dot against the scalar table and (for the
 * scalar table itself) against exact double sums of the layout read element by element. */
static void check_kquants(const kernels_t *K, const kernels_t *S) {
  stat_t sq = {0}, sd = {0}, so = {0};
  const int nb = 3, nt = 8, k = nb * QK_K;
  float *x = (float *)malloc(sizeof(float) * (size_t)k * nt);
  block_q8_K *a1 = (block_q8_K *)malloc(sizeof(block_q8_K) * (size_t)nb * nt);
  block_q8_K *a2 = (block_q8_K *)malloc(sizeof(block_q8_K) * (size_t)nb * nt);
  uint8_t *w = (uint8_t *)malloc(210 * (size_t)nb);
  for (int rep = 0; rep < 4; rep++) {
    for (int t = 0; t < nt; t++) fill_act(x + (size_t)t * k, k);
    if (rep == 0) memset(x, 0, sizeof(float) * QK_K); /* an all-zero activation block */
    S->quantize_q8_K(x, a1, k * nt);
    K->quantize_q8_K(x, a2, k * nt);
    for (int i = 0; i < nb * nt; i++) note(&sq, memcmp(&a1[i], &a2[i], sizeof(block_q8_K)) == 0 ? 0 : 1, 0, 1, 0);
    for (int ti = 0; ti < 5; ti++) {
      const int type = KQ_TYPES[ti];
      fill_kq_rows(w, (size_t)KQ_BYTES[ti] * nb, type);
      for (int n = 1; n <= nt; n = n == 7 ? 8 : n + 3) { /* 1, 4, 7 and 8 rows: kernels may specialise 1 and 8 */
        float o1[8], o2[8];
        S->kq_dot(type, nb, w, a1, (size_t)nb, n, o1);
        K->kq_dot(type, nb, w, a1, (size_t)nb, n, o2);
        for (int t = 0; t < n; t++) {
          double want = 0, mag = 0;
          for (int i = 0; i < nb; i++)
            for (int e = 0; e < QK_K; e++) {
              const double term = kq_element(type, w + (size_t)i * KQ_BYTES[ti], e) * a1[t * nb + i].qs[e] * a1[t * nb + i].d;
              want += term;
              mag += fabs(term);
            }
          note(&so, o1[t], want, mag, 1e-5);
          note(&sd, o2[t], o1[t], mag, 1e-5);
        }
      }
    }
  }
  /* q4_1 / q5_0 / q5_1 against block_qa activations: value = d * q (- 16 for q5_0) + m */
  stat_t ld = {0}, lo = {0};
  {
    const int lnb = 5, lk = lnb * QK;
    float *lx = (float *)malloc(sizeof(float) * (size_t)lk * nt);
    block_qa *la = (block_qa *)malloc(sizeof(block_qa) * (size_t)lnb * nt);
    uint8_t lw[24 * 5];
    for (int rep = 0; rep < 4; rep++) {
      for (int t = 0; t < nt; t++) fill_act(lx + (size_t)t * lk, lk);
      S->quantize_qa(lx, la, lk * nt);
      for (int type = WT_Q4_1; type <= WT_Q5_1; type++) {
        const int bb = type == WT_Q4_1 ? 20 : type == WT_Q5_0 ? 22 : 24;
        for (int i = 0; i < bb * lnb; i++) lw[i] = (uint8_t)rnd();
        for (int i = 0; i < lnb; i++) {
          const uint16_t d = cg_f32_to_f16(0.001f + 0.05f * uni()), m = cg_f32_to_f16(sym(0.5f));
          memcpy(lw + i * bb, &d, 2);
          if (type != WT_Q5_0) memcpy(lw + i * bb + 2, &m, 2);
        }
        for (int n = 1; n <= nt; n = n == 7 ? 8 : n + 3) {
          float o1[8], o2[8];
          S->lq_dot(type, lnb, lw, la, (size_t)lnb, n, o1);
          K->lq_dot(type, lnb, lw, la, (size_t)lnb, n, o2);
          for (int t = 0; t < n; t++) {
            double want = 0, mag = 0;
            for (int i = 0; i < lnb; i++) {
              const uint8_t *b = lw + i * bb;
              const double d = h16(b), m = type == WT_Q5_0 ? 0 : h16(b + 2);
              uint32_t qh = 0;
              if (type != WT_Q4_1) memcpy(&qh, b + (type == WT_Q5_0 ? 2 : 4), 4);
              const uint8_t *qs = b + (type == WT_Q4_1 ? 4 : type == WT_Q5_0 ? 6 : 8);
              for (int e = 0; e < QK; e++) {
                const int nib = e < 16 ? qs[e] & 15 : qs[e - 16] >> 4;
                const int q = nib + (type == WT_Q4_1 ? 0 : 16 * (int)((qh >> e) & 1)) - (type == WT_Q5_0 ? 16 : 0);
                const double term = (d * q + m) * la[t * lnb + i].d * la[t * lnb + i].qs[e];
                want += term;
                mag += fabs(term);
              }
            }
            note(&lo, o1[t], want, mag, 1e-5);
            note(&ld, o2[t], o1[t], mag, 1e-5);
          }
        }
      }
    }
    free(lx);
    free(la);
  }
  if (K == S) {
    report(K->name, "kq_dot", "oracle", &so, "(q2_K..q6_K; exact double sums of the layout read element by element)");
    report(K->name, "lq_dot", "oracle", &lo, "(q4_1, q5_0, q5_1; exact double sums)");
  }
  else {
    report(K->name, "quantize_q8_K", S->name, &sq, "(bit-equal blocks)");
    report(K->name, "kq_dot", S->name, &sd, "(q2_K..q6_K, 1-8 activation rows; relative to sum |terms|)");
    report(K->name, "lq_dot", S->name, &ld, "(q4_1, q5_0, q5_1, 1-8 activation rows; relative to sum |terms|)");
  }
  free(x);
  free(a1);
  free(a2);
  free(w);
}

/* ------------------------------------------------------------ checks */

#define TOL_DOT 1e-5

static const int NBS[] = {1, 2, 3, 7, 64};
#define N_NBS ((int)(sizeof(NBS) / sizeof(NBS[0])))

static void check_quantize(const kernels_t *K, const kernels_t *S) {
  const int k = 64 * QK;
  float *x = malloc(sizeof(float) * k);
  block_qa *y = malloc(sizeof(block_qa) * (k / QK)), *z = malloc(sizeof(block_qa) * (k / QK));
  stat_t st = {0};
  long ulps = 0, bound_bad = 0;
  for (int rep = 0; rep < 8; rep++) {
    fill_act(x, k);
    K->quantize_qa(x, y, k);
    S->quantize_qa(x, z, k);
    for (int b = 0; b < k / QK; b++) {
      if (memcmp(y[b].qs, z[b].qs, QK) != 0) st.worst = INFINITY;
      const long dd = labs((long)fbits(y[b].d) - (long)fbits(z[b].d));
      const long ds = labs((long)fbits(y[b].s) - (long)fbits(z[b].s));
      if (dd > 1 || ds > 1) st.worst = INFINITY;
      ulps += dd + ds;
      /* Independent of the table: each quant reconstructs its input within half a step. */
      for (int j = 0; j < QK; j++) {
        const double e = fabs((double)x[b * QK + j] - (double)y[b].qs[j] * y[b].d);
        if (e > 0.5 * y[b].d * (1 + 1e-5) + 1e-37) bound_bad++;
      }
      st.n += QK;
    }
  }
  if (bound_bad) st.worst = INFINITY;
  char how[160];
  snprintf(how, sizeof how, "(quants equal, d/s off by %ld ulp in total, %ld outside half a step)", ulps, bound_bad);
  report(K->name, "quantize_qa", S->name, &st, how);
  free(x);
  free(y);
  free(z);
}

/* dot, x8_1, x8_4 for one weight type. */
static void check_int8(const kernels_t *K, const kernels_t *S, int q4) {
  const char *tn = q4 ? "q4_0" : "q8_0";
  stat_t sd = {0}, sx1 = {0}, sx4 = {0}, so = {0};
  for (int ni = 0; ni < N_NBS; ni++) {
    const int nb = NBS[ni];
    const int rows = 8 * 3 + 5; /* three x8 groups and leftover rows */
    const size_t rb = cg_row_bytes(q4 ? WT_Q4_0 : WT_Q8_0, nb * QK);
    uint8_t *w = malloc(rb * rows), *wx = malloc(rb * rows);
    if (q4) fill_q4_rows(w, rows, nb);
    else fill_q8_rows(w, rows, nb);
    cg_repack(q4 ? WT_Q4_0 : WT_Q8_0, rows, nb * QK, w, wx);
    /* 4 activation rows, strided further apart than nb so a wrong stride shows. */
    const size_t astride = (size_t)nb + 3;
    float *x = malloc(sizeof(float) * QK * astride * 4);
    block_qa *a = malloc(sizeof(block_qa) * astride * 4);
    for (int t = 0; t < 4; t++) {
      fill_act(x + (size_t)t * astride * QK, nb * QK);
      S->quantize_qa(x + (size_t)t * astride * QK, a + (size_t)t * astride, nb * QK);
    }
    double want[4][8 * 3 + 5], mag[4][8 * 3 + 5];
    for (int t = 0; t < 4; t++)
      for (int r = 0; r < rows; r++) want[t][r] = oracle_row(q4, nb, w + (size_t)r * rb, a + (size_t)t * astride, &mag[t][r]);
    for (int r = 0; r < rows; r++) {
      const uint8_t *wr = w + (size_t)r * rb;
      for (int t = 0; t < 4; t++) {
        const block_qa *at = a + (size_t)t * astride;
        const float g = q4 ? K->dot_q4_0(nb, (const block_q4_0 *)wr, at) : K->dot_q8_0(nb, (const block_q8_0 *)wr, at);
        const float s = q4 ? S->dot_q4_0(nb, (const block_q4_0 *)wr, at) : S->dot_q8_0(nb, (const block_q8_0 *)wr, at);
        note(&sd, g, s, mag[t][r], TOL_DOT);
        note(&so, s, want[t][r], mag[t][r], TOL_DOT);
      }
    }
    const size_t rec = (size_t)nb * (q4 ? X8_Q4_BYTES : X8_Q8_BYTES);
    for (int g = 0; g < rows / 8; g++) {
      const uint8_t *wg = wx + (size_t)g * rec;
      float got[32], ref[32];
      for (int t = 0; t < 4; t++) {
        const block_qa *at = a + (size_t)t * astride;
        if (q4) {
          K->x8_q4_0_1(nb, wg, at, got);
          S->x8_q4_0_1(nb, wg, at, ref);
        } else {
          K->x8_q8_0_1(nb, wg, at, got);
          S->x8_q8_0_1(nb, wg, at, ref);
        }
        for (int r = 0; r < 8; r++) {
          note(&sx1, got[r], ref[r], mag[t][g * 8 + r], TOL_DOT);
          /* The scalar x8 kernel on repacked rows against the oracle on the original rows. */
          note(&so, ref[r], want[t][g * 8 + r], mag[t][g * 8 + r], TOL_DOT);
        }
      }
      if (q4) {
        K->x8_q4_0_4(nb, wg, a, astride, got);
        S->x8_q4_0_4(nb, wg, a, astride, ref);
      } else {
        K->x8_q8_0_4(nb, wg, a, astride, got);
        S->x8_q8_0_4(nb, wg, a, astride, ref);
      }
      for (int t = 0; t < 4; t++)
        for (int r = 0; r < 8; r++) note(&sx4, got[t * 8 + r], ref[t * 8 + r], mag[t][g * 8 + r], TOL_DOT);
    }
    free(w);
    free(wx);
    free(x);
    free(a);
  }
  char name[32];
  const char *how = "(relative to sum |terms|)";
  if (K == S) {
    snprintf(name, sizeof name, "dot_%s", tn);
    report(K->name, name, "oracle", &so, "(exact int sums in double; dot and x8 after repack)");
    return;
  }
  snprintf(name, sizeof name, "dot_%s", tn);
  report(K->name, name, S->name, &sd, how);
  snprintf(name, sizeof name, "x8_%s_1", tn);
  report(K->name, name, S->name, &sx1, how);
  snprintf(name, sizeof name, "x8_%s_4", tn);
  report(K->name, name, S->name, &sx4, how);
}

static const int KS[] = {1, 7, 8, 33, 128, 4101};
#define N_KS ((int)(sizeof(KS) / sizeof(KS[0])))

static void check_float_dots(const kernels_t *K, const kernels_t *S) {
  stat_t s32 = {0}, s16 = {0}, sbf = {0}, ssum = {0};
  for (int ki = 0; ki < N_KS; ki++) {
    const int k = KS[ki];
    float *w = malloc(sizeof(float) * k), *x = malloc(sizeof(float) * k);
    uint16_t *h = malloc(2 * k), *b = malloc(2 * k);
    for (int rep = 0; rep < 4; rep++) {
      double mag = 0, mag16 = 0, magb = 0, sabs = 0;
      for (int i = 0; i < k; i++) {
        w[i] = sym(2.0f);
        x[i] = sym(3.0f);
        h[i] = cg_f32_to_f16(w[i]);
        b[i] = (uint16_t)(fbits(w[i]) >> 16);
        mag += fabs((double)w[i] * x[i]);
        mag16 += fabs((double)cg_f16_to_f32(h[i]) * x[i]);
        magb += fabs((double)cg_bf16_to_f32(b[i]) * x[i]);
        sabs += fabs((double)x[i]);
      }
      note(&s32, K->dot_f32(k, w, x), S->dot_f32(k, w, x), mag, TOL_DOT);
      note(&s16, K->dot_f16(k, h, x), S->dot_f16(k, h, x), mag16, TOL_DOT);
      note(&sbf, K->dot_bf16(k, b, x), S->dot_bf16(k, b, x), magb, TOL_DOT);
      note(&ssum, K->sum_f32(x, (size_t)k), S->sum_f32(x, (size_t)k), sabs, TOL_DOT);
    }
    free(w);
    free(x);
    free(h);
    free(b);
  }
  const char *how = "(relative to sum |terms|)";
  report(K->name, "dot_f32", S->name, &s32, how);
  report(K->name, "dot_f16", S->name, &s16, how);
  report(K->name, "dot_bf16", S->name, &sbf, how);
  report(K->name, "sum_f32", S->name, &ssum, how);
}

static void check_f16(const kernels_t *K, const kernels_t *S) {
  /* Every half-precision value, then tails shorter than a vector. */
  const int n = 65536;
  uint16_t *h = malloc(2 * n), *h2 = malloc(2 * n);
  float *y = malloc(4 * n), *z = malloc(4 * n);
  for (int i = 0; i < n; i++) h[i] = (uint16_t)i;
  stat_t st = {0};
  long bad = 0, snan = 0;
  for (int len = n; len > 0; len = len == n ? 13 : len - 4) {
    memset(y, 0, 4 * n);
    memset(z, 0, 4 * n);
    K->f16_to_f32(h + (n - len), y, len);
    S->f16_to_f32(h + (n - len), z, len);
    for (int i = 0; i < len; i++) {
      if (fbits(y[i]) == fbits(z[i])) continue;
      /* Hardware quiets signalling NaNs, the scalar bit copy keeps them: both stay NaN. */
      if (isnan(y[i]) && isnan(z[i])) snan++;
      else bad++;
    }
    st.n += len;
  }
  if (bad) st.worst = INFINITY;
  char how0[160];
  snprintf(how0, sizeof how0, "(%ld values differ; all 65536 inputs; %ld NaNs differ in payload only)", bad, snan);
  report(K->name, "f16_to_f32", S->name, &st, how0);

  /* Random bit patterns (NaN, inf, subnormals, overflow) and values near half-precision ties. */
  float *f = malloc(4 * n);
  for (int i = 0; i < n; i++) {
    uint32_t u;
    switch (i % 4) {
      case 0: u = (uint32_t)rnd(); break;
      case 1: u = ((uint32_t)irange(103 - 10, 142 + 2) << 23) | ((uint32_t)rnd() & 0x7fffff) | ((uint32_t)rnd() & 0x80000000u); break;
      case 2: u = ((uint32_t)irange(100, 143) << 23) | ((((uint32_t)rnd() & 0x3ff) << 13) | 0x1000) | ((uint32_t)rnd() & 0x80000000u); break;
      default: u = fbits(sym(70000.0f)); break;
    }
    memcpy(&f[i], &u, 4);
  }
  stat_t st2 = {0};
  bad = 0;
  for (int len = n; len > 0; len = len == n ? 13 : len - 4) {
    memset(h, 0, 2 * n);
    memset(h2, 0, 2 * n);
    K->f32_to_f16(f + (n - len), h, len);
    S->f32_to_f16(f + (n - len), h2, len);
    for (int i = 0; i < len; i++) bad += h[i] != h2[i];
    st2.n += len;
  }
  if (bad) st2.worst = INFINITY;
  char how[160];
  snprintf(how, sizeof how, bad ? "(%ld values differ)" : "(bit-exact incl. NaN/inf/subnormal/ties)", bad);
  report(K->name, "f32_to_f16", S->name, &st2, how);
  free(h);
  free(h2);
  free(y);
  free(z);
  free(f);
}

static void check_elementwise(const kernels_t *K, const kernels_t *S) {
  stat_t sadd = {0}, sr = {0}, sw = {0};
  for (int ki = 0; ki < N_KS; ki++) {
    const int n = KS[ki];
    float *x = malloc(4 * n), *y1 = malloc(4 * n), *y2 = malloc(4 * n), *w = malloc(4 * n);
    float *g = malloc(8 * n), *o1 = malloc(4 * n), *o2 = malloc(4 * n);
    for (int i = 0; i < n; i++) {
      x[i] = sym(4.0f);
      y1[i] = y2[i] = sym(4.0f);
      w[i] = sym(1.5f);
    }
    K->add(y1, x, (size_t)n);
    S->add(y2, x, (size_t)n);
    for (int i = 0; i < n; i++) note(&sadd, y1[i], y2[i], fabs((double)y2[i]), 1.2e-7);
    K->rmsnorm_row(x, w, n, 1e-5f, o1);
    S->rmsnorm_row(x, w, n, 1e-5f, o2);
    for (int i = 0; i < n; i++) note(&sr, o1[i], o2[i], fabs((double)o2[i]), TOL_DOT);
    /* swiglu over a [gate | up] row: gates across the range where silu bends and saturates. */
    for (int i = 0; i < n; i++) {
      g[i] = sym(20.0f);
      g[n + i] = sym(3.0f);
    }
    K->swiglu_row(g, n, o1, n);
    S->swiglu_row(g, n, o2, n);
    for (int i = 0; i < n; i++) note(&sw, o1[i], o2[i], fabs((double)g[i] * g[n + i]), TOL_DOT);
    free(x);
    free(y1);
    free(y2);
    free(w);
    free(g);
    free(o1);
    free(o2);
  }
  report(K->name, "add", S->name, &sadd, "(relative)");
  report(K->name, "rmsnorm_row", S->name, &sr, "(relative)");
  report(K->name, "swiglu_row", S->name, &sw, "(relative to |gate * up|)");
}

/*
 * The prefill GEMM (gemm.h), where the table has one: two x8 groups x 8 tokens (strided further
 * apart than nb, so a wrong stride shows) with a bias, against the scalar table's x8 kernel per
 * token plus the bias, against the oracle on the original rows, and bit for bit against the same
 * table's x8_*_1 and x8_*_4 kernels plus the bias (a row's result must not depend on how many
 * tokens share the matmul: batched and chunked sequences rely on it).
 */
static void check_gemm(const kernels_t *K, const kernels_t *S, int q4) {
  cg_gemm_fn gemm = q4 ? K->gemm_q4_0_16x8 : K->gemm_q8_0_16x8;
  if (!gemm) return;
  const int type = q4 ? WT_Q4_0 : WT_Q8_0;
  stat_t ss = {0}, so = {0}, sb = {0};
  for (int ni = 0; ni < N_NBS; ni++) {
    const int nb = NBS[ni], rows = 16;
    const size_t rb = cg_row_bytes(type, nb * QK);
    uint8_t *w = malloc(rb * rows), *wx = malloc(rb * rows);
    if (q4) fill_q4_rows(w, rows, nb);
    else fill_q8_rows(w, rows, nb);
    cg_repack(type, rows, nb * QK, w, wx);
    const size_t astride = (size_t)nb + 3, ostride = 16 + 7;
    float *x = malloc(sizeof(float) * QK * astride * 8), bias[16], out[8 * (16 + 7)];
    block_qa *a = malloc(sizeof(block_qa) * astride * 8);
    for (int t = 0; t < 8; t++) {
      fill_act(x + (size_t)t * astride * QK, nb * QK);
      S->quantize_qa(x + (size_t)t * astride * QK, a + (size_t)t * astride, nb * QK);
    }
    for (int r = 0; r < 16; r++) bias[r] = sym(1.0f);
    const size_t rec = (size_t)nb * (q4 ? X8_Q4_BYTES : X8_Q8_BYTES);
    gemm(nb, wx, wx + rec, a, astride, bias, out, ostride);
    /* the same table's 4-token kernel on the two halves of the tile, per group */
    float own4[2][2][32];
    for (int g = 0; g < 2; g++)
      for (int h = 0; h < 2; h++) {
        if (q4) K->x8_q4_0_4(nb, wx + g * rec, a + (size_t)h * 4 * astride, astride, own4[g][h]);
        else K->x8_q8_0_4(nb, wx + g * rec, a + (size_t)h * 4 * astride, astride, own4[g][h]);
      }
    for (int t = 0; t < 8; t++) {
      const block_qa *at = a + (size_t)t * astride;
      for (int g = 0; g < 2; g++) {
        float ref[8], own1[8];
        if (q4) {
          S->x8_q4_0_1(nb, wx + g * rec, at, ref);
          K->x8_q4_0_1(nb, wx + g * rec, at, own1);
        } else {
          S->x8_q8_0_1(nb, wx + g * rec, at, ref);
          K->x8_q8_0_1(nb, wx + g * rec, at, own1);
        }
        for (int r = 0; r < 8; r++) {
          double mag;
          const double want = oracle_row(q4, nb, w + (size_t)(g * 8 + r) * rb, at, &mag);
          const float got = out[t * ostride + g * 8 + r];
          note(&ss, got, (double)ref[r] + bias[g * 8 + r], mag + fabs(bias[g * 8 + r]), TOL_DOT);
          note(&so, got, want + bias[g * 8 + r], mag + fabs(bias[g * 8 + r]), TOL_DOT);
          const float b1 = own1[r] + bias[g * 8 + r], b4 = own4[g][t / 4][(t % 4) * 8 + r] + bias[g * 8 + r];
          if (fbits(got) != fbits(b1) || fbits(got) != fbits(b4)) sb.worst = INFINITY;
          note(&sb, got, b1, mag + fabs(bias[g * 8 + r]), TOL_DOT);
        }
      }
    }
    free(w);
    free(wx);
    free(x);
    free(a);
  }
  report(K->name, q4 ? "gemm_q4_0" : "gemm_q8_0", S->name, &ss, "(16 rows x 8 tokens, bias; relative to sum |terms|)");
  report(K->name, q4 ? "gemm_q4_0" : "gemm_q8_0", "oracle", &so, "(exact int sums in double on the original rows)");
  report(K->name, q4 ? "gemm_q4_0" : "gemm_q8_0", "x8_1/_4", &sb, "(the same table's x8 kernels + bias: bit-equal)");
}

/* ------------------------------------------------------------ decode attention rows (optional) */

/* attn_rows16 (16 query rows in lanes) against the scalar table's, over two tiles in a row so the
 * running max moves: 1, 5, 8 (paired channels) and 16 rows, 1/17/64 keys, head dims 64 and 128 (and 48: the 16-channel
 * tail), rows with limits inside the tile, at its end, and at zero. Outputs are convex combinations
 * of V rows (|v| < 1), so the scale of every value is 1. */
static void check_attn_rows16(const kernels_t *K, const kernels_t *S) {
  if (!K->attn_rows16) return;
  static const int NR[] = {1, 5, 8, 16}, NK[] = {1, 17, 64}, HD[] = {48, 64, 128};
  stat_t st = {0};
  const int T = ATD_TILE;
  float *QT = malloc(sizeof(float) * ATD_ROWS * 128), *Kt = malloc(sizeof(float) * T * 128), *Vt = malloc(sizeof(float) * T * 128);
  float *P1 = malloc(sizeof(float) * ATD_ROWS * T), *P2 = malloc(sizeof(float) * ATD_ROWS * T);
  float *a1 = malloc(sizeof(float) * ATD_ROWS * 128), *a2 = malloc(sizeof(float) * ATD_ROWS * 128);
  for (int hi = 0; hi < 3; hi++)
    for (int ri = 0; ri < 4; ri++)
      for (int ki = 0; ki < 3; ki++) {
        const int hd = HD[hi], nr = NR[ri], n = NK[ki];
        float m1[ATD_ROWS], l1[ATD_ROWS], m2[ATD_ROWS], l2[ATD_ROWS];
        int lim[ATD_ROWS];
        for (int r = 0; r < ATD_ROWS; r++) m1[r] = m2[r] = -INFINITY, l1[r] = l2[r] = 0.0f;
        memset(a1, 0, sizeof(float) * ATD_ROWS * 128);
        memset(a2, 0, sizeof(float) * ATD_ROWS * 128);
        memset(QT, 0, sizeof(float) * ATD_ROWS * 128);
        /* q scaled up in the second tile's rows so the softmax is peaked and the max moves */
        for (int d = 0; d < hd; d++)
          for (int r = 0; r < nr; r++) QT[d * ATD_ROWS + r] = sym(r % 3 ? 1.0f : 3.0f);
        for (int tile = 0; tile < 2; tile++) {
          for (int i = 0; i < T * hd; i++) Kt[i] = sym(tile ? 2.0f : 1.0f), Vt[i] = sym(1.0f);
          for (int r = 0; r < ATD_ROWS; r++) lim[r] = r >= nr ? 0 : r % 4 == 3 ? 0 : r % 4 == 2 ? (n + 1) / 2 : n;
          K->attn_rows16(hd, QT, nr, Kt, Vt, n, lim, 0.125f, P1, m1, l1, a1);
          S->attn_rows16(hd, QT, nr, Kt, Vt, n, lim, 0.125f, P2, m2, l2, a2);
        }
        for (int r = 0; r < nr; r++) {
          /* m is a scaled score: its scale is sum |q k| <= 0.125 * 2 * sum |q| */
          double qa = 0;
          for (int d = 0; d < hd; d++) qa += fabs((double)QT[d * ATD_ROWS + r]);
          note(&st, m1[r], m2[r], 0.25 * qa, TOL_DOT);
          note(&st, l1[r], l2[r], fabs((double)l2[r]), TOL_DOT);
          for (int i = 0; i < hd; i++) note(&st, l1[r] > 0 ? a1[r * hd + i] / l1[r] : 0, l2[r] > 0 ? a2[r * hd + i] / l2[r] : 0, 1.0, TOL_DOT);
        }
      }
  report(K->name, "attn_rows16", S->name, &st, "(2 tiles, 1-16 rows, causal limits; output / sum vs scalar, |v| < 1)");
  free(QT);
  free(Kt);
  free(Vt);
  free(P1);
  free(P2);
  free(a1);
  free(a2);
}

/* ------------------------------------------------------------ bf16 prefill attention (optional) */

/* Where the table has the bf16 kernels and this CPU runs them: the tile preparation bit-equal to the
 * scalar reference, attn_rows16_bf16 against the scalar reference (same bf16 operands, f32 sums in
 * another order) over two tiles, and cg_attention over a 2,100-key prompt block (the bf16 path)
 * against the scalar table's f32 path, with the tolerance bf16 operands need (outputs |v| < 1). */
#define TOL_BF16_ATT 2e-3
static void check_attn_bf16(const kernels_t *K, const kernels_t *S) {
  if (!K->attn_rows16_bf16 || !K->attn_bf16_tiles || !cg_cpu_has_bf16()) return;
  const int T = ATD_TILE, hd = 128;
  stat_t sp = {0}, sk = {0}, sa = {0};
  float *Kt = malloc(sizeof(float) * T * hd), *Vt = malloc(sizeof(float) * T * hd);
  uint16_t *K2a = malloc(2 * T * hd), *V2a = malloc(2 * T * hd), *K2b = malloc(2 * T * hd), *V2b = malloc(2 * T * hd);
  uint16_t *QT2 = malloc(2 * ATD_ROWS * hd);
  float *P1 = malloc(sizeof(float) * ATD_ROWS * T), *P2 = malloc(sizeof(float) * ATD_ROWS * T);
  float *a1 = malloc(sizeof(float) * ATD_ROWS * hd), *a2 = malloc(sizeof(float) * ATD_ROWS * hd);
  static const int NR[] = {1, 7, 16}, NK[] = {1, 33, 64};
  for (int ri = 0; ri < 3; ri++)
    for (int ki = 0; ki < 3; ki++) {
      const int nr = NR[ri], n = NK[ki];
      float m1[ATD_ROWS], l1[ATD_ROWS], m2[ATD_ROWS], l2[ATD_ROWS];
      int lim[ATD_ROWS];
      for (int r = 0; r < ATD_ROWS; r++) m1[r] = m2[r] = -INFINITY, l1[r] = l2[r] = 0.0f;
      memset(a1, 0, sizeof(float) * ATD_ROWS * hd);
      memset(a2, 0, sizeof(float) * ATD_ROWS * hd);
      memset(QT2, 0, 2 * ATD_ROWS * hd);
      for (int d = 0; d < hd; d++)
        for (int r = 0; r < nr; r++) QT2[(d / 2) * 32 + 2 * r + (d & 1)] = cg_f32_to_bf16(sym(r % 3 ? 1.0f : 3.0f));
      for (int tile = 0; tile < 2; tile++) {
        for (int i = 0; i < T * hd; i++) Kt[i] = sym(tile ? 2.0f : 1.0f), Vt[i] = sym(1.0f);
        memset(K2a, 0, 2 * T * hd), memset(V2a, 0, 2 * T * hd), memset(K2b, 0, 2 * T * hd), memset(V2b, 0, 2 * T * hd);
        K->attn_bf16_tiles(hd, Kt, Vt, n, K2a, V2a);
        cg_attn_bf16_tiles_scalar(hd, Kt, Vt, n, K2b, V2b);
        if (memcmp(K2a, K2b, 2 * (size_t)n * hd) || memcmp(V2a, V2b, 2 * (size_t)((n + 1) / 2) * 2 * hd)) sk.worst = INFINITY;
        sk.n += n;
        for (int r = 0; r < ATD_ROWS; r++) lim[r] = r >= nr ? 0 : r % 4 == 3 ? 0 : r % 4 == 2 ? (n + 1) / 2 : n;
        K->attn_rows16_bf16(hd, QT2, nr, K2a, V2a, n, lim, 0.125f, P1, m1, l1, a1);
        cg_attn_rows16_bf16_scalar(hd, QT2, nr, K2b, V2b, n, lim, 0.125f, P2, m2, l2, a2);
      }
      for (int r = 0; r < nr; r++) {
        double qa = 0;
        for (int d = 0; d < hd; d++) qa += fabs((double)cg_bf16_to_f32(QT2[(d / 2) * 32 + 2 * r + (d & 1)]));
        note(&sp, m1[r], m2[r], 0.25 * qa, TOL_DOT);
        note(&sp, l1[r], l2[r], fabs((double)l2[r]), TOL_DOT);
        for (int i = 0; i < hd; i++) note(&sp, l1[r] > 0 ? a1[r * hd + i] / l1[r] : 0, l2[r] > 0 ? a2[r * hd + i] / l2[r] : 0, 1.0, TOL_DOT);
      }
    }
  /* whole operation: 16 heads in 2 groups, 2,048 cached positions, 52 new tokens */
  cg_ctx *c1 = cg_ctx_create(2, K->name), *c2 = cg_ctx_create(2, S->name);
  const int nh = 16, ng = 2, start = ATT_BF16_MIN_KEYS, nt = 52, ctx = start + nt;
  float *q = malloc(sizeof(float) * nt * nh * hd), *k = malloc(sizeof(float) * nt * ng * hd), *v = malloc(sizeof(float) * nt * ng * hd);
  float *o1 = malloc(sizeof(float) * nt * nh * hd), *o2 = malloc(sizeof(float) * nt * nh * hd);
  uint16_t *kc = malloc(2 * (size_t)ctx * ng * hd), *vc = malloc(2 * (size_t)ctx * ng * hd);
  for (int i = 0; i < start * ng * hd; i++) kc[i] = cg_f32_to_f16(sym(1.0f)), vc[i] = cg_f32_to_f16(sym(1.0f));
  for (int i = 0; i < nt * nh * hd; i++) q[i] = sym(2.0f);
  for (int i = 0; i < nt * ng * hd; i++) k[i] = sym(1.0f), v[i] = sym(1.0f);
  if (c1 && c2) {
    cg_attention(c1, q, k, v, o1, kc, vc, 0, nt, start, nh, ng, hd, 0.125f);
    cg_attention(c2, q, k, v, o2, kc, vc, 0, nt, start, nh, ng, hd, 0.125f);
    for (int i = 0; i < nt * nh * hd; i++) note(&sa, o1[i], o2[i], 1.0, TOL_BF16_ATT);
  } else {
    sa.worst = INFINITY;
  }
  cg_ctx_destroy(c1);
  cg_ctx_destroy(c2);
  report(K->name, "attn_bf16_tiles", "scalar", &sk, "(K rows and V key pairs in bf16: bit-equal)");
  report(K->name, "attn_rows16_bf16", "scalar", &sp, "(2 tiles, 1-16 rows, causal limits; output / sum vs scalar on the same bf16 operands)");
  report(K->name, "attention_bf16", S->name, &sa, "(cg_attention, 2100-key prompt block: bf16 vs the scalar table's f32; tolerance 2e-3)");
  free(q), free(k), free(v), free(o1), free(o2), free(kc), free(vc);
  free(Kt), free(Vt), free(K2a), free(V2a), free(K2b), free(V2b), free(QT2), free(P1), free(P2), free(a1), free(a2);
}

/*
 * The k-quant prefill GEMM (gemm_kq.h), where the table has one: q4_K, q5_K, q6_K; 21 rows (a full
 * panel and a partial one) x 1, 7, 8, 9 and 33 tokens (activation rows strided further apart than
 * nbk, output rows wider than the matrix), with and without a bias. Bit for bit against the scalar
 * table's kq_dot (the portable kernel: same integer sums, same float steps) plus the bias, against
 * the oracle on the layout read element by element, against this table's own kq_dot (the decode
 * kernels, which sum in another order: a tolerance), and bit for bit through cg_matmul (ops.c's
 * panel claims and token tiles) against cg_matmul with the scalar table.
 */
/* w as context c's matmul reads it: repacked to the x16 layout into *buf (malloc'ed, freed by the
 * caller) where c expects that, as the addon's loader does, else w itself. */
static const uint8_t *ctx_layout(cg_ctx *c, int type, int rows, int cols, const uint8_t *w, uint8_t **buf) {
  *buf = NULL;
  if (!cg_kq16(c, type)) return w;
  *buf = malloc(cg_row_bytes(type, cols) * rows);
  cg_repack(type, rows, cols, w, *buf);
  return *buf;
}

/* cg_matmul of 37 rows (two full 16-row panels and a partial one) x 33 tokens with a bias, table K
 * against table S through ops.c, noted in *sm (bit-equal expected; any difference marks it failed). */
static void check_matmul_vs_table(const kernels_t *K, const kernels_t *S, int type, int cols, size_t rb,
                                  void (*fill)(uint8_t *, size_t, int), stat_t *sm) {
  cg_ctx *c1 = cg_ctx_create(2, K->name), *c2 = cg_ctx_create(2, S->name);
  const int mrows = 37, n = 33;
  uint8_t *mw = malloc(rb * mrows);
  float *x = malloc(sizeof(float) * (size_t)cols * n), *o1 = malloc(sizeof(float) * mrows * n),
        *o2 = malloc(sizeof(float) * mrows * n), mbias[37];
  fill(mw, rb * mrows, type);
  fill_act(x, cols * n);
  for (int r = 0; r < mrows; r++) mbias[r] = sym(1.0f);
  if (!c1 || !c2) {
    sm->worst = INFINITY;
  } else {
    uint8_t *buf;
    const uint8_t *w1 = ctx_layout(c1, type, mrows, cols, mw, &buf);
    /* prefill (the GEMM); single tokens (decode) too where the x16 kernels read the weights, which
     * sum as the portable kernel does (ggml's layout's decode kernels do not: check_gemm_kq) */
    for (int nn = n; nn >= 1; nn = nn == n && buf ? 1 : 0) {
      cg_matmul(c1, type, mrows, cols, w1, x, nn, o1, mbias);
      cg_matmul(c2, type, mrows, cols, mw, x, nn, o2, mbias);
      for (int i = 0; i < mrows * nn; i++) {
        if (fbits(o1[i]) != fbits(o2[i])) sm->worst = INFINITY;
        note(sm, o1[i], o2[i], fabs(o2[i]) + 1.0, TOL_DOT);
      }
    }
    free(buf);
  }
  cg_ctx_destroy(c1);
  cg_ctx_destroy(c2);
  free(mw);
  free(x);
  free(o1);
  free(o2);
}

static void check_gemm_kq(const kernels_t *K, const kernels_t *S) {
  const cg_gemm_kq *g = K->gemm_kq;
  if (!g) return;
  static const int types[] = {WT_Q4_K, WT_Q5_K, WT_Q6_K}, ntoks[] = {1, 7, 8, 9, 33};
  stat_t ss = {0}, so = {0}, sk = {0}, sm = {0};
  const int nbk = 3, rows = 21, cols = nbk * QK_K;
  const size_t astride = (size_t)nbk + 2, ostride = (size_t)rows + 5;
  for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
    const int type = types[ti];
    const size_t rb = cg_row_bytes(type, cols), pbytes = g->panel_bytes(type, nbk);
    const int bb = (int)(rb / nbk);
    uint8_t *w = malloc(rb * rows), *panel = aligned_alloc(64, 2 * pbytes);
    fill_kq_rows(w, rb * rows, type);
    g->pack(type, nbk, w, rb, 16, panel);
    g->pack(type, nbk, w + 16 * rb, rb, rows - 16, panel + pbytes);
    for (size_t ni = 0; ni < sizeof ntoks / sizeof ntoks[0]; ni++) {
      const int n = ntoks[ni];
      float *x = malloc(sizeof(float) * (size_t)cols * n), bias[32];
      block_q8_K *a = malloc(sizeof(block_q8_K) * astride * n);
      float *out = malloc(sizeof(float) * ostride * n);
      for (int t = 0; t < n; t++) fill_act(x + (size_t)t * cols, cols);
      if (n == 9) memset(x, 0, sizeof(float) * QK_K); /* an all-zero activation block */
      for (int t = 0; t < n; t++) S->quantize_q8_K(x + (size_t)t * cols, a + (size_t)t * astride, cols);
      for (int r = 0; r < rows; r++) bias[r] = sym(1.0f);
      const float *bp = ni % 2 ? bias : NULL;
      for (int t0 = 0; t0 < n; t0 += 8) {
        const int nt = n - t0 < 8 ? n - t0 : 8;
        g->tile(type, nbk, panel, a + (size_t)t0 * astride, astride, nt, bp, 16, out + (size_t)t0 * ostride, ostride);
        g->tile(type, nbk, panel + pbytes, a + (size_t)t0 * astride, astride, nt, bp ? bp + 16 : NULL, rows - 16,
                out + (size_t)t0 * ostride + 16, ostride);
      }
      for (int t = 0; t < n; t++) {
        const block_q8_K *at = a + (size_t)t * astride;
        for (int r = 0; r < rows; r++) {
          float ref, own;
          S->kq_dot(type, nbk, w + (size_t)r * rb, at, astride, 1, &ref);
          K->kq_dot(type, nbk, w + (size_t)r * rb, at, astride, 1, &own);
          const float b = bp ? bp[r] : 0.0f;
          double want = 0, mag = 0;
          for (int i = 0; i < nbk; i++)
            for (int e = 0; e < QK_K; e++) {
              const double term = kq_element(type, w + (size_t)r * rb + (size_t)i * bb, e) * at[i].qs[e] * at[i].d;
              want += term;
              mag += fabs(term);
            }
          const float got = out[(size_t)t * ostride + r];
          if (fbits(got) != fbits(ref + b)) ss.worst = INFINITY;
          note(&ss, got, ref + b, mag + fabs(b), TOL_DOT);
          note(&so, got, want + b, mag + fabs(b), TOL_DOT);
          note(&sk, got, (double)own + b, mag + fabs(b), TOL_DOT);
        }
      }
      free(x);
      free(a);
      free(out);
    }
    /* through ops.c: 37 rows (two full panels and a partial one) x 33 tokens, with a bias */
    check_matmul_vs_table(K, S, type, cols, rb, fill_kq_rows, &sm);
    free(w);
    free(panel);
  }
  report(K->name, "gemm_kq", S->name, &ss, "(q4_K, q5_K, q6_K; 21 rows x 1, 7, 8, 9, 33 tokens, bias: bit-equal to kq_dot + bias)");
  report(K->name, "gemm_kq", "oracle", &so, "(exact double sums of the layout read element by element)");
  report(K->name, "gemm_kq", "kq_dot", &sk, "(this table's decode kernels, another summation order; relative to sum |terms|)");
  report(K->name, "gemm_kq", "matmul", &sm, "(cg_matmul 37 rows x 33 tokens + bias vs the scalar table's: bit-equal)");
}

/*
 * The x16 layout (kq16.h) where the table reads it: 37 rows (two groups and 5 rows left in ggml's
 * layout) repacked by cg_repack; every row back through cg_kq16_row equals the original bytes,
 * embedding lookups through a context that reads x16 equal the scalar table's on the original,
 * x16_pack equals pack on the original rows byte for byte, and x16_dot against 1..8 tokens is bit
 * for bit the scalar table's kq_dot.
 */
static void check_kq16(const kernels_t *K, const kernels_t *S) {
  const cg_gemm_kq *g = K->gemm_kq;
  if (!g || !g->x16_types) return;
  stat_t sr = {0}, se = {0}, sp = {0}, sd = {0};
  const int nbk = 3, rows = 37, cols = nbk * QK_K;
  cg_ctx *c1 = cg_ctx_create(1, K->name), *c2 = cg_ctx_create(1, S->name);
  for (int type = WT_Q2_K; type <= WT_Q6_K && c1 && c2; type++) {
    if (!g->x16_types(type)) continue;
    const size_t rb = cg_row_bytes(type, cols), pbytes = g->panel_bytes(type, nbk);
    uint8_t *w = malloc(rb * rows), *wx = malloc(rb * rows), *row = malloc(rb);
    uint8_t *p1 = aligned_alloc(64, pbytes), *p2 = aligned_alloc(64, pbytes);
    float *e1 = malloc(sizeof(float) * cols * rows), *e2 = malloc(sizeof(float) * cols * rows);
    int32_t ids[37];
    fill_kq_rows(w, rb * rows, type);
    cg_repack(type, rows, cols, w, wx);
    for (int r = 0; r < rows; r++) {
      ids[r] = rows - 1 - r;
      cg_kq16_row(type, cols, wx, rows, r, row);
      note(&sr, memcmp(row, w + (size_t)r * rb, rb) == 0 ? 0.0 : 1.0, 0.0, 1.0, 0.5);
    }
    cg_embedding(c1, type, rows, cols, wx, ids, rows, e1);
    cg_embedding(c2, type, rows, cols, w, ids, rows, e2);
    for (int i = 0; i < cols * rows; i++) {
      if (fbits(e1[i]) != fbits(e2[i])) se.worst = INFINITY;
      note(&se, e1[i], e2[i], fabs(e2[i]) + 1.0, TOL_DOT);
    }
    for (int grp = 0; grp < rows / KQ16_ROWS; grp++) {
      g->x16_pack(type, nbk, wx + (size_t)grp * KQ16_ROWS * rb, p1);
      g->pack(type, nbk, w + (size_t)grp * KQ16_ROWS * rb, rb, KQ16_ROWS, p2);
      note(&sp, memcmp(p1, p2, pbytes) == 0 ? 0.0 : 1.0, 0.0, 1.0, 0.5);
      for (int n = 1; n <= 8; n++) {
        const size_t astride = (size_t)nbk + 1;
        float *x = malloc(sizeof(float) * (size_t)cols * n), out[8 * KQ16_ROWS];
        block_q8_K *a = malloc(sizeof(block_q8_K) * astride * n);
        for (int t = 0; t < n; t++) {
          fill_act(x + (size_t)t * cols, cols);
          S->quantize_q8_K(x + (size_t)t * cols, a + (size_t)t * astride, cols);
        }
        g->x16_dot(type, nbk, wx + (size_t)grp * KQ16_ROWS * rb, a, astride, n, out);
        for (int r = 0; r < KQ16_ROWS; r++) {
          float ref[8];
          S->kq_dot(type, nbk, w + (size_t)(grp * KQ16_ROWS + r) * rb, a, astride, n, ref);
          for (int t = 0; t < n; t++) {
            if (fbits(out[t * KQ16_ROWS + r]) != fbits(ref[t])) sd.worst = INFINITY;
            note(&sd, out[t * KQ16_ROWS + r], ref[t], fabs(ref[t]) + 1.0, TOL_DOT);
          }
        }
        free(x);
        free(a);
      }
    }
    free(w);
    free(wx);
    free(row);
    free(p1);
    free(p2);
    free(e1);
    free(e2);
  }
  cg_ctx_destroy(c1);
  cg_ctx_destroy(c2);
  report(K->name, "kq16 rows", "ggml", &sr, "(37 rows repacked and read back by cg_kq16_row: byte-equal)");
  report(K->name, "kq16 embed", S->name, &se, "(cg_embedding on x16 vs ggml rows: bit-equal)");
  report(K->name, "kq16 pack", "pack", &sp, "(x16_pack vs pack of the same rows: byte-equal panels)");
  report(K->name, "kq16 dot", S->name, &sd, "(x16_dot 16 rows x 1..8 tokens vs kq_dot: bit-equal)");
}

/* Random q4_1 / q5_0 / q5_1 rows with sane f16 d (and m). */
static void fill_lq_rows(uint8_t *w, size_t bytes, int type) {
  const int bb = type == WT_Q4_1 ? 20 : type == WT_Q5_0 ? 22 : 24;
  for (size_t i = 0; i < bytes; i++) w[i] = (uint8_t)rnd();
  for (size_t o = 0; o + bb <= bytes; o += bb) {
    const uint16_t d = cg_f32_to_f16(0.001f + 0.05f * uni()), m = cg_f32_to_f16(sym(0.5f));
    memcpy(w + o, &d, 2);
    if (type != WT_Q5_0) memcpy(w + o + 2, &m, 2);
  }
}

/*
 * The q4_1 / q5_0 / q5_1 prefill GEMM (gemm_kq.h), as check_gemm_kq: 21 rows of 5 blocks (an odd
 * count: the packing's pairs of blocks end with a single one) x 1, 7, 8, 9, 33 tokens, bias or not;
 * bit for bit against the scalar table's lq_dot + bias, against exact double sums, against this
 * table's lq_dot (a tolerance), and bit for bit through cg_matmul against the scalar table's.
 */
static void check_gemm_lq(const kernels_t *K, const kernels_t *S) {
  const cg_gemm_lq *g = K->gemm_lq;
  if (!g) return;
  static const int ntoks[] = {1, 7, 8, 9, 33};
  stat_t ss = {0}, so = {0}, sk = {0}, sm = {0};
  const int nb = 5, rows = 21, cols = nb * QK;
  const size_t astride = (size_t)nb + 2, ostride = (size_t)rows + 5;
  for (int type = WT_Q4_1; type <= WT_Q5_1; type++) {
    const size_t rb = cg_row_bytes(type, cols), pbytes = g->panel_bytes(type, nb);
    const int bb = (int)(rb / nb);
    uint8_t *w = malloc(rb * rows), *panel = aligned_alloc(64, 2 * pbytes);
    fill_lq_rows(w, rb * rows, type);
    g->pack(type, nb, w, rb, 16, panel);
    g->pack(type, nb, w + 16 * rb, rb, rows - 16, panel + pbytes);
    for (size_t ni = 0; ni < sizeof ntoks / sizeof ntoks[0]; ni++) {
      const int n = ntoks[ni];
      float *x = malloc(sizeof(float) * (size_t)cols * n), bias[32];
      block_qa *a = malloc(sizeof(block_qa) * astride * n);
      int32_t *asum = malloc(sizeof(int32_t) * astride * n);
      float *out = malloc(sizeof(float) * ostride * n);
      for (int t = 0; t < n; t++) fill_act(x + (size_t)t * cols, cols);
      for (int t = 0; t < n; t++) S->quantize_qa(x + (size_t)t * cols, a + (size_t)t * astride, cols);
      for (int t = 0; t < n; t++)
        for (int i = 0; i < nb; i++) {
          int32_t sum = 0;
          for (int e = 0; e < QK; e++) sum += a[(size_t)t * astride + i].qs[e];
          asum[(size_t)t * astride + i] = sum;
        }
      for (int r = 0; r < rows; r++) bias[r] = sym(1.0f);
      const float *bp = ni % 2 ? bias : NULL;
      for (int t0 = 0; t0 < n; t0 += 8) {
        const int nt = n - t0 < 8 ? n - t0 : 8;
        g->tile(type, nb, panel, a + (size_t)t0 * astride, asum + (size_t)t0 * astride, astride, nt, bp, 16,
                out + (size_t)t0 * ostride, ostride);
        g->tile(type, nb, panel + pbytes, a + (size_t)t0 * astride, asum + (size_t)t0 * astride, astride, nt,
                bp ? bp + 16 : NULL, rows - 16, out + (size_t)t0 * ostride + 16, ostride);
      }
      for (int t = 0; t < n; t++) {
        const block_qa *at = a + (size_t)t * astride;
        for (int r = 0; r < rows; r++) {
          float ref, own;
          S->lq_dot(type, nb, w + (size_t)r * rb, at, astride, 1, &ref);
          K->lq_dot(type, nb, w + (size_t)r * rb, at, astride, 1, &own);
          const float b = bp ? bp[r] : 0.0f;
          double want = 0, mag = 0;
          for (int i = 0; i < nb; i++) {
            const uint8_t *blk = w + (size_t)r * rb + (size_t)i * bb;
            const double d = h16(blk), m = type == WT_Q5_0 ? 0 : h16(blk + 2);
            uint32_t qh = 0;
            if (type != WT_Q4_1) memcpy(&qh, blk + (type == WT_Q5_0 ? 2 : 4), 4);
            const uint8_t *qs = blk + (type == WT_Q4_1 ? 4 : type == WT_Q5_0 ? 6 : 8);
            for (int e = 0; e < QK; e++) {
              const int nib = e < 16 ? qs[e] & 15 : qs[e - 16] >> 4;
              const int q = nib + (type == WT_Q4_1 ? 0 : 16 * (int)((qh >> e) & 1)) - (type == WT_Q5_0 ? 16 : 0);
              const double term = (d * q + m) * at[i].d * at[i].qs[e];
              want += term;
              mag += fabs(term);
            }
          }
          const float got = out[(size_t)t * ostride + r];
          if (fbits(got) != fbits(ref + b)) ss.worst = INFINITY;
          note(&ss, got, ref + b, mag + fabs(b), TOL_DOT);
          note(&so, got, want + b, mag + fabs(b), TOL_DOT);
          note(&sk, got, (double)own + b, mag + fabs(b), TOL_DOT);
        }
      }
      free(x);
      free(a);
      free(asum);
      free(out);
    }
    check_matmul_vs_table(K, S, type, cols, rb, fill_lq_rows, &sm);
    free(w);
    free(panel);
  }
  report(K->name, "gemm_lq", S->name, &ss, "(q4_1, q5_0, q5_1; 21 rows x 1, 7, 8, 9, 33 tokens, bias: bit-equal to lq_dot + bias)");
  report(K->name, "gemm_lq", "oracle", &so, "(exact double sums)");
  report(K->name, "gemm_lq", "lq_dot", &sk, "(this table's decode kernels, another summation order; relative to sum |terms|)");
  report(K->name, "gemm_lq", "matmul", &sm, "(cg_matmul 37 rows x 33 tokens + bias vs the scalar table's: bit-equal)");
}

/* Element e's unsigned quant (0..31, before q5_0's -16) of row r's block in an x16 record, read
 * where kq16.h says it is: nibble section (e % 16) / 4, byte e % 4 of lane r, low nibble for
 * e < 16; + 16 where bit 4r + e % 4 of 5th-bit mask e / 4 is set. */
static int lq16_spec_quant(int type, const uint8_t *rec, int r, int e) {
  const int nib_at = type == WT_Q5_0 ? 32 : 64, masks_at = type == WT_Q5_0 ? 288 : 320;
  const uint8_t v = rec[nib_at + 64 * ((e % 16) / 4) + 4 * r + e % 4];
  int q = e < 16 ? v & 15 : v >> 4;
  if (type != WT_Q4_1) {
    const int bit = 4 * r + e % 4;
    q += 16 * ((rec[masks_at + 8 * (e / 4) + bit / 8] >> bit % 8) & 1);
  }
  return q;
}

/* The same element from ggml's block b. */
static int lq_ggml_quant(int type, const uint8_t *b, int e) {
  const uint8_t *qs = b + (type == WT_Q4_1 ? 4 : type == WT_Q5_0 ? 6 : 8);
  int q = e < 16 ? qs[e] & 15 : qs[e - 16] >> 4;
  if (type != WT_Q4_1) {
    uint32_t qh;
    memcpy(&qh, b + (type == WT_Q5_0 ? 2 : 4), 4);
    q += 16 * (int)((qh >> e) & 1);
  }
  return q;
}

/*
 * check_kq16 for q4_1 / q5_0 / q5_1: 37 rows of 5 blocks repacked by cg_repack; every quant and d
 * where kq16.h puts it, every row back through cg_kq16_row byte-equal, cg_embedding through the
 * table's context bit-equal to the scalar table's on ggml's rows, x16_pack byte-equal to pack, and
 * x16_dot against 1..8 tokens bit for bit the scalar table's lq_dot.
 */
static void check_lq16_rows(int type, int nb, int rows, const uint8_t *w, const uint8_t *wx, stat_t *sr) {
  const size_t rb = cg_row_bytes(type, nb * QK), bb = rb / (size_t)nb, rec = KQ16_ROWS * bb;
  uint8_t *row = malloc(rb);
  for (int r = 0; r < rows; r++) {
    cg_kq16_row(type, nb * QK, wx, rows, r, row);
    note(sr, memcmp(row, w + (size_t)r * rb, rb) == 0 ? 0.0 : 1.0, 0.0, 1.0, 0.5);
    if (r >= rows / KQ16_ROWS * KQ16_ROWS) continue;
    const uint8_t *group = wx + (size_t)(r / KQ16_ROWS) * KQ16_ROWS * rb;
    for (int i = 0; i < nb; i++) {
      const uint8_t *b = w + (size_t)r * rb + (size_t)i * bb, *x = group + (size_t)i * rec;
      int bad = type == WT_Q5_0 ? memcmp(x + 2 * (r % 16), b, 2) != 0 : memcmp(x + 4 * (r % 16), b, 4) != 0;
      for (int e = 0; e < QK; e++) bad |= lq16_spec_quant(type, x, r % 16, e) != lq_ggml_quant(type, b, e);
      note(sr, bad, 0.0, 1.0, 0.5);
    }
  }
  free(row);
}

static void check_lq16_dot(const kernels_t *S, const cg_gemm_lq *g, int type, int nb, const uint8_t *w, const uint8_t *group,
                           stat_t *sd) {
  const size_t rb = cg_row_bytes(type, nb * QK), astride = (size_t)nb + 1;
  for (int n = 1; n <= 8; n++) {
    float *x = malloc(sizeof(float) * (size_t)nb * QK * n), out[8 * KQ16_ROWS];
    block_qa *a = malloc(sizeof(block_qa) * astride * n);
    int32_t *asum = malloc(sizeof(int32_t) * astride * n);
    for (int t = 0; t < n; t++) {
      fill_act(x + (size_t)t * nb * QK, nb * QK);
      S->quantize_qa(x + (size_t)t * nb * QK, a + (size_t)t * astride, nb * QK);
      for (int i = 0; i < nb; i++) {
        int32_t sum = 0;
        for (int e = 0; e < QK; e++) sum += a[(size_t)t * astride + i].qs[e];
        asum[(size_t)t * astride + i] = sum;
      }
    }
    g->x16_dot(type, nb, group, a, asum, astride, n, out);
    for (int r = 0; r < KQ16_ROWS; r++) {
      float ref[8];
      S->lq_dot(type, nb, w + (size_t)r * rb, a, astride, n, ref);
      for (int t = 0; t < n; t++) {
        if (fbits(out[t * KQ16_ROWS + r]) != fbits(ref[t])) sd->worst = INFINITY;
        note(sd, out[t * KQ16_ROWS + r], ref[t], fabs(ref[t]) + 1.0, TOL_DOT);
      }
    }
    free(x);
    free(a);
    free(asum);
  }
}

static void check_lq16(const kernels_t *K, const kernels_t *S) {
  const cg_gemm_lq *g = K->gemm_lq;
  if (!g || !g->x16_types) return;
  stat_t sr = {0}, se = {0}, sp = {0}, sd = {0};
  const int nb = 5, rows = 37, cols = nb * QK;
  cg_ctx *c1 = cg_ctx_create(1, K->name), *c2 = cg_ctx_create(1, S->name);
  for (int type = WT_Q4_1; type <= WT_Q5_1 && c1 && c2; type++) {
    if (!g->x16_types(type)) continue;
    const size_t rb = cg_row_bytes(type, cols), pbytes = g->panel_bytes(type, nb);
    uint8_t *w = malloc(rb * rows), *wx = malloc(rb * rows);
    uint8_t *p1 = aligned_alloc(64, pbytes), *p2 = aligned_alloc(64, pbytes);
    float *e1 = malloc(sizeof(float) * cols * rows), *e2 = malloc(sizeof(float) * cols * rows);
    int32_t ids[37];
    fill_lq_rows(w, rb * rows, type);
    cg_repack(type, rows, cols, w, wx);
    check_lq16_rows(type, nb, rows, w, wx, &sr);
    for (int r = 0; r < rows; r++) ids[r] = rows - 1 - r;
    cg_embedding(c1, type, rows, cols, wx, ids, rows, e1);
    cg_embedding(c2, type, rows, cols, w, ids, rows, e2);
    for (int i = 0; i < cols * rows; i++) {
      if (fbits(e1[i]) != fbits(e2[i])) se.worst = INFINITY;
      note(&se, e1[i], e2[i], fabs(e2[i]) + 1.0, TOL_DOT);
    }
    for (int grp = 0; grp < rows / KQ16_ROWS; grp++) {
      g->x16_pack(type, nb, wx + (size_t)grp * KQ16_ROWS * rb, p1);
      g->pack(type, nb, w + (size_t)grp * KQ16_ROWS * rb, rb, KQ16_ROWS, p2);
      note(&sp, memcmp(p1, p2, pbytes) == 0 ? 0.0 : 1.0, 0.0, 1.0, 0.5);
      check_lq16_dot(S, g, type, nb, w + (size_t)grp * KQ16_ROWS * rb, wx + (size_t)grp * KQ16_ROWS * rb, &sd);
    }
    free(w);
    free(wx);
    free(p1);
    free(p2);
    free(e1);
    free(e2);
  }
  cg_ctx_destroy(c1);
  cg_ctx_destroy(c2);
  report(K->name, "lq16 rows", "ggml", &sr, "(q4_1, q5_0, q5_1: 37 rows repacked: quants where kq16.h says, rows read back byte-equal)");
  report(K->name, "lq16 embed", S->name, &se, "(cg_embedding on x16 vs ggml rows: bit-equal)");
  report(K->name, "lq16 pack", "pack", &sp, "(x16_pack vs pack of the same rows: byte-equal panels)");
  report(K->name, "lq16 dot", S->name, &sd, "(x16_dot 16 rows x 1..8 tokens vs lq_dot: bit-equal)");
}

/*
 * Whole operations through ops.c with table K selected, against the same with the scalar table:
 * the quantized matmul (x8 groups + leftover rows, 1 and 5 tokens so both the 4-token and the
 * 1-token kernels run, 2 pool threads) and attention over an f16 cache. Two contexts side by side,
 * as two backends in one process would have.
 */
static void check_ops(const char *isa) {
  cg_ctx *c1 = cg_ctx_create(2, isa), *c2 = cg_ctx_create(2, kernels_scalar.name);
  if (!c1 || !c2) {
    printf("FAIL: cg_ctx_create(2, %s) or (2, scalar) failed\n", isa);
    failures++;
    cg_ctx_destroy(c1);
    cg_ctx_destroy(c2);
    return;
  }
  const int rows = 8 * 5 + 3, cols = 8 * QK, nb = cols / QK, ntok = 13;
  stat_t sm[2], sa;
  memset(sm, 0, sizeof sm);
  memset(&sa, 0, sizeof sa);
  float *x = malloc(sizeof(float) * cols * ntok), *bias = malloc(sizeof(float) * rows);
  float *o1 = malloc(sizeof(float) * rows * ntok), *o2 = malloc(sizeof(float) * rows * ntok);
  block_qa *a = malloc(sizeof(block_qa) * nb * ntok);
  for (int q4 = 0; q4 < 2; q4++) {
    const int type = q4 ? WT_Q4_0 : WT_Q8_0;
    const size_t rb = cg_row_bytes(type, cols);
    uint8_t *w = malloc(rb * rows), *wx = malloc(rb * rows);
    if (q4) fill_q4_rows(w, rows, nb);
    else fill_q8_rows(w, rows, nb);
    cg_repack(type, rows, cols, w, wx);
    fill_act(x, cols * ntok);
    for (int r = 0; r < rows; r++) bias[r] = sym(1.0f);
    kernels_scalar.quantize_qa(x, a, cols * ntok);
    /* 1: decode kernels; 5: the 4-token kernel and a padded tail; 13: a GEMM tile of 8 (odd group count) + 5 */
    static const int NS[] = {1, 5, 13};
    for (int ni = 0; ni < 3; ni++) {
      const int n = NS[ni];
      cg_matmul(c1, type, rows, cols, wx, x, n, o1, bias);
      cg_matmul(c2, type, rows, cols, wx, x, n, o2, bias);
      for (int t = 0; t < n; t++)
        for (int r = 0; r < rows; r++) {
          double mag;
          oracle_row(q4, nb, w + (size_t)r * rb, a + (size_t)t * nb, &mag);
          note(&sm[q4], o1[t * rows + r], o2[t * rows + r], mag + fabs(bias[r]), TOL_DOT);
        }
    }
    free(w);
    free(wx);
  }
  /* 4 heads in 2 KV groups, head_dim 64: 3 cached positions, then 5 new tokens (the few-token split
   * path, 10 rows per group); 8 heads in 2 groups, head_dim 128: 3 cached, then 70 new, so query rows
   * go four at a time where the table has attn_rows4, over two key tiles with causal limits inside
   * both; then decode over long caches, keys split in chunks: 16 and 8 heads per group, 1 and 3 tokens. */
  static const int CFG[5][5] = {{4, 2, 64, 3, 5}, {8, 2, 128, 3, 70}, {32, 2, 128, 2100, 1}, {32, 2, 128, 2050, 3}, {16, 2, 128, 2200, 1}};
  for (int ci = 0; ci < 5; ci++) {
    const int nh = CFG[ci][0], ng = CFG[ci][1], hd = CFG[ci][2], start = CFG[ci][3], nt = CFG[ci][4], ctx = start + nt;
    float *q = malloc(sizeof(float) * nt * nh * hd), *k = malloc(sizeof(float) * nt * ng * hd);
    float *v = malloc(sizeof(float) * nt * ng * hd);
    float *ao1 = malloc(sizeof(float) * nt * nh * hd), *ao2 = malloc(sizeof(float) * nt * nh * hd);
    uint16_t *kc1 = malloc(2 * ctx * ng * hd), *vc1 = malloc(2 * ctx * ng * hd);
    uint16_t *kc2 = malloc(2 * ctx * ng * hd), *vc2 = malloc(2 * ctx * ng * hd);
    for (int i = 0; i < start * ng * hd; i++) {
      kc1[i] = kc2[i] = cg_f32_to_f16(sym(1.0f));
      vc1[i] = vc2[i] = cg_f32_to_f16(sym(1.0f));
    }
    /* q scaled up so the softmax is peaked in places (the running max moves between tiles) */
    for (int i = 0; i < nt * nh * hd; i++) q[i] = sym(ci ? 3.0f : 1.0f);
    for (int i = 0; i < nt * ng * hd; i++) {
      k[i] = sym(1.0f);
      v[i] = sym(1.0f);
    }
    cg_attention(c1, q, k, v, ao1, kc1, vc1, 0, nt, start, nh, ng, hd, 0.125f);
    cg_attention(c2, q, k, v, ao2, kc2, vc2, 0, nt, start, nh, ng, hd, 0.125f);
    /* Outputs are convex combinations of V rows, |v| < 1. */
    for (int i = 0; i < nt * nh * hd; i++) note(&sa, ao1[i], ao2[i], 1.0, TOL_DOT);
    if (memcmp(kc1, kc2, 2 * ctx * ng * hd) || memcmp(vc1, vc2, 2 * ctx * ng * hd)) sa.worst = INFINITY;
    free(q);
    free(k);
    free(v);
    free(ao1);
    free(ao2);
    free(kc1);
    free(vc1);
    free(kc2);
    free(vc2);
  }
  cg_ctx_destroy(c1);
  cg_ctx_destroy(c2);
  report(isa, "matmul q8_0", kernels_scalar.name, &sm[0], "(cg_matmul, repacked, bias; relative to sum |terms|)");
  report(isa, "matmul q4_0", kernels_scalar.name, &sm[1], "(cg_matmul, repacked, bias; relative to sum |terms|)");
  report(isa, "attention", kernels_scalar.name, &sa, "(cg_attention; f16 cache bit-equal)");
  free(x);
  free(bias);
  free(o1);
  free(o2);
  free(a);
}

/* cg_matmul on k-quant and q4_1 / q5_0 / q5_1 weights with this table against the scalar table: the
 * row chunking and the 8-token groups of ops.c around kq_dot / lq_dot (1, 9 and 17 tokens, 19 rows).
 * The scale of each value is sum |w x| with w dequantized through cg_embedding. */
static void check_ops_kquants(const char *isa) {
  static const int types[] = {WT_Q2_K, WT_Q3_K, WT_Q4_K, WT_Q5_K, WT_Q6_K, WT_Q4_1, WT_Q5_0, WT_Q5_1};
  cg_ctx *c1 = cg_ctx_create(2, isa), *c2 = cg_ctx_create(2, kernels_scalar.name);
  if (!c1 || !c2) {
    printf("FAIL: cg_ctx_create(2, %s) or (2, scalar) failed\n", isa);
    failures++;
    cg_ctx_destroy(c1);
    cg_ctx_destroy(c2);
    return;
  }
  const int rows = 19, cols = 2 * QK_K, ntok = 17;
  stat_t st = {0};
  float *x = malloc(sizeof(float) * cols * ntok), *wf = malloc(sizeof(float) * cols * rows);
  float *o1 = malloc(sizeof(float) * rows * ntok), *o2 = malloc(sizeof(float) * rows * ntok);
  int32_t ids[19];
  for (int r = 0; r < rows; r++) ids[r] = r;
  for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
    const int type = types[ti];
    const size_t rb = cg_row_bytes(type, cols);
    uint8_t *w = malloc(rb * rows);
    if (WT_IS_KQUANT(type)) {
      fill_kq_rows(w, rb * rows, type);
    } else {
      const int bb = type == WT_Q4_1 ? 20 : type == WT_Q5_0 ? 22 : 24;
      for (size_t i = 0; i < rb * rows; i++) w[i] = (uint8_t)rnd();
      for (size_t o = 0; o < rb * rows; o += bb) {
        const uint16_t d = cg_f32_to_f16(0.001f + 0.05f * uni()), m = cg_f32_to_f16(sym(0.5f));
        memcpy(w + o, &d, 2);
        if (type != WT_Q5_0) memcpy(w + o + 2, &m, 2);
      }
    }
    cg_embedding(c2, type, rows, cols, w, ids, rows, wf);
    uint8_t *buf;
    const uint8_t *w1 = ctx_layout(c1, type, rows, cols, w, &buf);
    fill_act(x, cols * ntok);
    for (int n = 1; n <= ntok; n += 8) {
      cg_matmul(c1, type, rows, cols, w1, x, n, o1, NULL);
      cg_matmul(c2, type, rows, cols, w, x, n, o2, NULL);
      for (int t = 0; t < n; t++)
        for (int r = 0; r < rows; r++) {
          double mag = 0;
          for (int e = 0; e < cols; e++) mag += fabs((double)wf[(size_t)r * cols + e] * x[(size_t)t * cols + e]);
          note(&st, o1[t * rows + r], o2[t * rows + r], mag, TOL_DOT);
        }
    }
    free(buf);
    free(w);
  }
  cg_ctx_destroy(c1);
  cg_ctx_destroy(c2);
  report(isa, "matmul k/legacy", kernels_scalar.name, &st, "(cg_matmul q2_K..q6_K, q4_1, q5_0, q5_1; 1, 9, 17 tokens)");
  free(x);
  free(wf);
  free(o1);
  free(o2);
}

int main(int argc, char **argv) {
  const char *expect_best = NULL, *expect_isas = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--expect-best") && i + 1 < argc) expect_best = argv[++i];
    else if (!strcmp(argv[i], "--expect-isas") && i + 1 < argc) expect_isas = argv[++i];
    else {
      fprintf(stderr, "usage: %s [--expect-best NAME] [--expect-isas a,b,c]\n", argv[0]);
      return 2;
    }
  }
  const char *names[8];
  const int n = cg_available_isas(names, 8);
  /* The addon's choice: a context made without a variant name takes the best one. */
  cg_ctx *dflt = cg_ctx_create(2, NULL);
  const char *best = dflt ? cg_kernels(dflt)->name : "(none)";
  cg_ctx_destroy(dflt);
  char list[128] = "";
  for (int i = 0; i < n; i++) {
    if (i) strcat(list, ",");
    strcat(list, names[i]);
  }
  printf("tables this CPU runs: %s; dispatch picks: %s\n", list, best);
  if (expect_best && strcmp(expect_best, best) != 0) {
    printf("FAIL: expected dispatch to pick %s\n", expect_best);
    failures++;
  }
  if (expect_isas && strcmp(expect_isas, list) != 0) {
    printf("FAIL: expected tables %s\n", expect_isas);
    failures++;
  }
  const kernels_t *S = &kernels_scalar;
  check_int8(S, S, 0);
  check_int8(S, S, 1);
  check_kquants(S, S);
  for (int i = 0; i < n; i++) {
    cg_ctx *c = cg_ctx_create(1, names[i]);
    if (!c) {
      printf("FAIL: cg_ctx_create(1, %s) refused a listed table\n", names[i]);
      failures++;
      continue;
    }
    const kernels_t *K = cg_kernels(c);
    cg_ctx_destroy(c);
    if (strcmp(K->name, names[i]) != 0) {
      printf("FAIL: cg_ctx_create(1, %s) selected %s\n", names[i], K->name);
      failures++;
      continue;
    }
    if (K == S) continue;
    check_quantize(K, S);
    check_int8(K, S, 0);
    check_int8(K, S, 1);
    check_float_dots(K, S);
    check_f16(K, S);
    check_elementwise(K, S);
    check_kquants(K, S);
    check_kq_r4(K, S);
    check_gemm(K, S, 0);
    check_gemm(K, S, 1);
    check_gemm_kq(K, S);
    check_kq16(K, S);
    check_gemm_lq(K, S);
    check_lq16(K, S);
    check_attn_rows16(K, S);
    check_attn_bf16(K, S);
    check_ops(K->name);
    check_ops_kquants(K->name);
  }
  printf("%s: %d failure(s)\n", failures ? "FAIL" : "ok", failures);
  return failures ? 1 : 0;
}

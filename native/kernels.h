/*
 * Shared declarations for the native backend: ggml-compatible weight blocks, our activation block,
 * and the per-ISA kernel table chosen at run time (see dispatch in ops.c).
 */
#ifndef CHATGLM_KERNELS_H
#define CHATGLM_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#define QK 32

/* ggml block_q8_0: f16 scale + 32 int8 (34 bytes, unaligned in files). */
typedef struct {
  uint16_t d;
  int8_t qs[QK];
} __attribute__((packed)) block_q8_0;

/* ggml block_q4_0: f16 scale + 16 bytes; low nibbles are elements 0-15, high nibbles 16-31. */
typedef struct {
  uint16_t d;
  uint8_t qs[QK / 2];
} __attribute__((packed)) block_q4_0;

/*
 * Activations quantized to 8 bits for the integer dot products. Private layout (never in a file):
 * d is the f32 scale and s = d * sum(qs), which the unsigned-times-signed dot products (VNNI,
 * maddubs) need to undo the +8 / +128 offset they put on the weights.
 */
typedef struct {
  float d;
  float s;
  int8_t qs[QK];
} block_qa;

/*
 * Row-interleaved ("x8") layout the native backend repacks q4_0/q8_0 matrices into at load time, so
 * the int8 dot products put one weight row in each 32-bit lane and never reduce horizontally.
 * Rows are taken 8 at a time; for each group and each block index i there is a record of
 *   8 f16 scales (row 0..7), then QK-element quants in 32-byte chunks; chunk c holds, for row r,
 *   the 4 bytes qs[4c .. 4c+3] of that row's block i at bytes [4r, 4r+4).
 * q4_0: 4 chunks (bytes hold element j in the low and j+16 in the high nibble, as in ggml): 144 B.
 * q8_0: 8 chunks: 272 B. Either way exactly the bytes of the 8 original rows, so sizes match.
 * Rows past the last full group stay in ggml's row layout after the groups.
 */
#define X8 8

/* One record of the x8 layout: the same block index of 8 rows (ggml's block_q4_0x8 / block_q8_0x8). */
typedef struct {
  uint16_t d[X8];
  uint8_t qs[4][X8 * 4]; /* chunk c, row r: qs[c][4r .. 4r+3] */
} block_q4_0x8;

typedef struct {
  uint16_t d[X8];
  int8_t qs[8][X8 * 4];
} block_q8_0x8;

_Static_assert(sizeof(block_q4_0x8) == X8 * sizeof(block_q4_0), "x8 q4_0 record holds exactly 8 blocks");
_Static_assert(sizeof(block_q8_0x8) == X8 * sizeof(block_q8_0), "x8 q8_0 record holds exactly 8 blocks");

/* Kernels walk records as bytes (the SIMD loads take addresses); these are their strides. */
#define X8_Q4_BYTES ((int)sizeof(block_q4_0x8))
#define X8_Q8_BYTES ((int)sizeof(block_q8_0x8))

enum { WT_F32 = 0, WT_F16 = 1, WT_BF16 = 2, WT_Q8_0 = 3, WT_Q4_0 = 4, WT_Q2_K = 5, WT_Q3_K = 6, WT_Q4_K = 7, WT_Q5_K = 8, WT_Q6_K = 9,
       WT_Q4_1 = 10, WT_Q5_0 = 11, WT_Q5_1 = 12 };
#define WT_LAST WT_Q5_1
/* ggml's other 32-element formats (q4_1, q5_0, q5_1): read in ggml's row layout, against block_qa. */
#define WT_IS_LEGACY(t) ((t) >= WT_Q4_1 && (t) <= WT_Q5_1)
/* ggml k-quant weights: super-blocks of QK_K elements (layouts in kernels_kquants.inc). */
#define QK_K 256
#define WT_IS_KQUANT(t) ((t) >= WT_Q2_K && (t) <= WT_Q6_K)

/* ggml block_q8_K: the activations k-quant dot products read (f32 scale, 256 int8, 16 sums of 16). */
typedef struct {
  float d;
  int8_t qs[QK_K];
  int16_t bsums[QK_K / 16];
} block_q8_K;
_Static_assert(sizeof(block_q8_K) == 292, "block_q8_K is ggml's 292 bytes");

typedef struct {
  const char *name;
  /* x[k] -> k/32 activation blocks. */
  void (*quantize_qa)(const float *x, block_qa *y, int k);
  /* Dot of one weight row (nb blocks) with one activation row. */
  float (*dot_q8_0)(int nb, const block_q8_0 *w, const block_qa *a);
  float (*dot_q4_0)(int nb, const block_q4_0 *w, const block_qa *a);
  /* One x8 group (nb block records) against 1 or 4 activation rows: out[t * 8 + r]. */
  void (*x8_q4_0_1)(int nb, const uint8_t *w, const block_qa *a, float *out);
  void (*x8_q4_0_4)(int nb, const uint8_t *w, const block_qa *a, size_t astride, float *out);
  void (*x8_q8_0_1)(int nb, const uint8_t *w, const block_qa *a, float *out);
  void (*x8_q8_0_4)(int nb, const uint8_t *w, const block_qa *a, size_t astride, float *out);
  /*
   * Decode: 4 consecutive x8 groups (w, w + gstride, ...) against 1 activation row, out[g * 8 + r].
   * One pass over the activation blocks serves 32 rows, so the per-block work (broadcasting the
   * activations) is shared; optional (NULL: the matmul calls x8_*_1 per group).
   */
  void (*x8_q4_0_1g4)(int nb, const uint8_t *w, size_t gstride, const block_qa *a, float *out);
  void (*x8_q8_0_1g4)(int nb, const uint8_t *w, size_t gstride, const block_qa *a, float *out);
  float (*dot_f32)(int k, const float *w, const float *x);
  float (*dot_f16)(int k, const uint16_t *w, const float *x);
  float (*dot_bf16)(int k, const uint16_t *w, const float *x);
  void (*f16_to_f32)(const uint16_t *x, float *y, int n);
  void (*f32_to_f16)(const float *x, uint16_t *y, int n);
  void (*rmsnorm_row)(const float *x, const float *w, int dim, float eps, float *out);
  /* out[i] = silu(g[i]) * g[half + i] for i < len (g points into a row [gate | up] of 2*half). */
  void (*swiglu_row)(const float *g, int half, float *out, int len);
  void (*add)(float *a, const float *b, size_t n);
  /*
   * One attention query row against a tile of n keys/values (f32 rows of hd, n <= 64): scores
   * s[j] = scale * q.K[j] (s: n floats of scratch), then the online-softmax update of the row's
   * running max *m, sum *l and unnormalised output acc[hd] (FlashAttention).
   */
  void (*attn_tile)(int hd, const float *q, const float *K, const float *V, int n, float scale, float *s, float *m,
                    float *l, float *acc);
  /* Streams through n floats and returns their sum (memory bandwidth probe). */
  double (*sum_f32)(const float *x, size_t n);
  /* k-quants (optional: NULL uses the scalar table's). x[k] -> k/256 q8_K blocks, bit for bit
   * ggml's quantize_row_q8_K_ref; one weight row of nb super-blocks against nt <= 8 activation rows
   * a + t * astride: out[t]. */
  void (*quantize_q8_K)(const float *x, block_q8_K *y, int k);
  void (*kq_dot)(int type, int nb, const uint8_t *w, const block_q8_K *a, size_t astride, int nt, float *out);
  /* q4_1 / q5_0 / q5_1 (optional, NULL: the scalar table's): one weight row of nb blocks against nt
   * <= 8 activation rows of block_qa: out[t]. */
  void (*lq_dot)(int type, int nb, const uint8_t *w, const block_qa *a, size_t astride, int nt, float *out);
  /* Prefill: two x8 groups x 8 tokens (optional, NULL: the 4-token kernels; contract in gemm.h). */
  void (*gemm_q4_0_16x8)(int nb, const uint8_t *w0, const uint8_t *w1, const block_qa *a, size_t astride,
                         const float *bias, float *out, size_t ostride);
  void (*gemm_q8_0_16x8)(int nb, const uint8_t *w0, const uint8_t *w1, const block_qa *a, size_t astride,
                         const float *bias, float *out, size_t ostride);
  /* Prefill attention, four query rows of one KV group at a time (optional, NULL: attn_tile per row; contract in attn4.h). */
  void (*attn_rows4)(int hd, const float *q, size_t qstride, const float *KT, const float *V, int n, float scale, float *s,
                     float *m, float *l, float *acc);
  /* Prefill: k-quant weights x many tokens (optional, NULL: kq_dot 8 tokens at a time; contract in gemm_kq.h). */
  const struct cg_gemm_kq *gemm_kq;
  /* Prefill: q4_1 / q5_0 / q5_1 weights x many tokens (optional, NULL: lq_dot 8 tokens at a time; gemm_kq.h). */
  const struct cg_gemm_lq *gemm_lq;
  /* Decode attention, up to 16 query rows of one KV group in SIMD lanes (optional, NULL: attn_tile per row; contract in attn_decode.h). */
  void (*attn_rows16)(int hd, const float *QT, int nr, const float *K, const float *V, int n, const int *lim, float scale,
                      float *P, float *m, float *l, float *acc);
  /* Long-prompt attention on bf16 operands (optional; used only where the CPU has avx512_bf16; contract in attn_bf16.h). */
  void (*attn_bf16_tiles)(int hd, const float *K, const float *V, int n, uint16_t *K2, uint16_t *VT2);
  void (*attn_rows16_bf16)(int hd, const uint16_t *QT2, int nr, const uint16_t *K2, const uint16_t *VT2, int n, const int *lim,
                           float scale, float *P, float *m, float *l, float *acc);
  /* Decode, k-quants (optional, NULL: kq_dot per row): four consecutive weight rows w + r * rb
   * (r < 4) of nb super-blocks against one activation row: out[r], each equal to kq_dot's for that row. */
  void (*kq_dot_r4)(int type, int nb, const uint8_t *w, size_t rb, const block_q8_K *a, float *out);
  /* The same for q4_1 / q5_0 / q5_1 rows of nb blocks against one block_qa row (NULL: lq_dot per row). */
  void (*lq_dot_r4)(int type, int nb, const uint8_t *w, size_t rb, const block_qa *a, float *out);
} kernels_t;

extern const kernels_t kernels_scalar;
#if defined(__x86_64__) || defined(_M_X64)
extern const kernels_t kernels_avx2;
extern const kernels_t kernels_avx512;
#endif
#if defined(__aarch64__)
/* kernels_neon.c: plain Advanced SIMD, and the same with SDOT for the int8 dot products. */
extern const kernels_t kernels_neon;
extern const kernels_t kernels_neon_dot;
/* 1 when this CPU has the dotprod extension (kernels_neon_dot may run). */
int cg_neon_dotprod(void);
#endif

/* Scalar helpers shared by every variant. */
static inline float cg_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {
      /* subnormal: renormalise */
      exp = 127 - 15 + 1;
      while ((mant & 0x400) == 0) {
        mant <<= 1;
        exp--;
      }
      mant &= 0x3ff;
      bits = sign | (exp << 23) | (mant << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  union { uint32_t u; float f; } v = {bits};
  return v.f;
}

static inline uint16_t cg_f32_to_f16(float f) {
  union { float f; uint32_t u; } v = {f};
  uint32_t bits = v.u;
  uint32_t sign = (bits >> 16) & 0x8000;
  uint32_t exp = (bits >> 23) & 0xff;
  uint32_t mant = bits & 0x7fffff;
  if (exp == 0xff) return (uint16_t)(mant ? (sign | 0x7e00 | (mant >> 13)) : (sign | 0x7c00));
  int e = (int)exp - 127 + 15;
  if (e >= 31) return (uint16_t)(sign | 0x7c00);
  if (e <= 0) {
    if (e < -10) return (uint16_t)sign;
    uint32_t m = mant | 0x800000;
    int shift = 14 - e;
    uint32_t r = m >> shift;
    uint32_t rem = m & ((1u << shift) - 1);
    uint32_t half = 1u << (shift - 1);
    if (rem > half || (rem == half && (r & 1))) r++;
    return (uint16_t)(sign | r);
  }
  uint32_t r = ((uint32_t)e << 10) | (mant >> 13);
  uint32_t rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (r & 1))) r++;
  return (uint16_t)(sign | r);
}

static inline float cg_bf16_to_f32(uint16_t b) {
  union { uint32_t u; float f; } v = {(uint32_t)b << 16};
  return v.f;
}

#endif

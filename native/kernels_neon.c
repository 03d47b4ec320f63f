/*
 * AArch64 Advanced SIMD kernels: two tables, "neon" (any ARMv8-A core) and "neondot" (the int8 dot
 * products with SDOT, ARMv8.2 dotprod: Cortex-A55/A76 and later, Apple M1, Graviton 2). Everything
 * but the int8 dot products is shared. The dotprod functions are compiled for that extension only,
 * so one binary serves both; cg_neon_dotprod() tells ops.c which table this CPU can run.
 * On other architectures this file is an empty translation unit (binding.gyp lists it everywhere).
 */
#if defined(__aarch64__)
#include <arm_neon.h>
#include "kernels_generic.inc"

/*
 * Whether this compiler can build SDOT code without -march flags for the whole file: GCC always;
 * clang once arm_neon.h gates intrinsics by target attribute instead of by the file's -march
 * (LLVM 16), or when the file's target has dotprod anyway (Apple arm64 targets do). Without it the
 * "neondot" table is the plain one and is never offered.
 */
#if defined(__clang__)
#if defined(__ARM_FEATURE_DOTPROD) || __clang_major__ >= 16
#define CG_HAVE_SDOT 1
#else
#define CG_HAVE_SDOT 0
#endif
#else
#define CG_HAVE_SDOT 1
#endif

#if defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
#elif defined(__APPLE__)
#include <sys/sysctl.h>
#endif

int cg_neon_dotprod(void) {
#if !CG_HAVE_SDOT
  return 0;
#elif defined(__linux__)
  return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#elif defined(__APPLE__)
  int v = 0;
  size_t len = sizeof(v);
  if (sysctlbyname("hw.optional.arm.FEAT_DotProd", &v, &len, NULL, 0) != 0) return 0;
  return v != 0;
#else
  return 0;
#endif
}

/* Scalar f16 -> f32 in one instruction (every AArch64 core has half-precision conversions). */
static inline float f16s(uint16_t h) {
  __fp16 v;
  memcpy(&v, &h, sizeof(v));
  return (float)v;
}

/* ------------------------------------------------------------ shared by both tables */

/* Same arithmetic as gen_quantize_qa (scale from amax, x * (127 / amax), round half to even), so
 * the quants, d and s come out bit-identical. */
static void neon_quantize_qa(const float *x, block_qa *y, int k) {
  const int nb = k / QK;
  for (int i = 0; i < nb; i++) {
    const float *xb = x + (size_t)i * QK;
    float32x4_t v[8];
    for (int j = 0; j < 8; j++) v[j] = vld1q_f32(xb + 4 * j);
    float32x4_t m = vabsq_f32(v[0]);
    for (int j = 1; j < 8; j++) m = vmaxq_f32(m, vabsq_f32(v[j]));
    const float amax = vmaxvq_f32(m);
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 127.0f / amax : 0.0f;
    int32x4_t q[8];
    int32x4_t sum = vdupq_n_s32(0);
    for (int j = 0; j < 8; j++) {
      /* vcvtnq: round to nearest, ties to even, as nearbyintf in the default rounding mode. */
      q[j] = vcvtnq_s32_f32(vmulq_n_f32(v[j], id));
      sum = vaddq_s32(sum, q[j]);
    }
    const int16x8_t h0 = vcombine_s16(vmovn_s32(q[0]), vmovn_s32(q[1]));
    const int16x8_t h1 = vcombine_s16(vmovn_s32(q[2]), vmovn_s32(q[3]));
    const int16x8_t h2 = vcombine_s16(vmovn_s32(q[4]), vmovn_s32(q[5]));
    const int16x8_t h3 = vcombine_s16(vmovn_s32(q[6]), vmovn_s32(q[7]));
    vst1q_s8(y[i].qs, vcombine_s8(vmovn_s16(h0), vmovn_s16(h1)));
    vst1q_s8(y[i].qs + 16, vcombine_s8(vmovn_s16(h2), vmovn_s16(h3)));
    y[i].d = d;
    y[i].s = d * (float)vaddvq_s32(sum);
  }
}

static float neon_dot_f32(int k, const float *w, const float *x) {
  float32x4_t a0 = vdupq_n_f32(0.0f), a1 = vdupq_n_f32(0.0f), a2 = vdupq_n_f32(0.0f), a3 = vdupq_n_f32(0.0f);
  int i = 0;
  for (; i + 16 <= k; i += 16) {
    a0 = vfmaq_f32(a0, vld1q_f32(w + i), vld1q_f32(x + i));
    a1 = vfmaq_f32(a1, vld1q_f32(w + i + 4), vld1q_f32(x + i + 4));
    a2 = vfmaq_f32(a2, vld1q_f32(w + i + 8), vld1q_f32(x + i + 8));
    a3 = vfmaq_f32(a3, vld1q_f32(w + i + 12), vld1q_f32(x + i + 12));
  }
  for (; i + 4 <= k; i += 4) a0 = vfmaq_f32(a0, vld1q_f32(w + i), vld1q_f32(x + i));
  float acc = vaddvq_f32(vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3)));
  for (; i < k; i++) acc += w[i] * x[i];
  return acc;
}

static inline float32x4_t load_f16x4(const uint16_t *p) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p))); }
static inline float32x4_t load_bf16x4(const uint16_t *p) {
  return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16));
}

static float neon_dot_f16(int k, const uint16_t *w, const float *x) {
  float32x4_t a0 = vdupq_n_f32(0.0f), a1 = vdupq_n_f32(0.0f), a2 = vdupq_n_f32(0.0f), a3 = vdupq_n_f32(0.0f);
  int i = 0;
  for (; i + 16 <= k; i += 16) {
    const float16x8_t h0 = vreinterpretq_f16_u16(vld1q_u16(w + i));
    const float16x8_t h1 = vreinterpretq_f16_u16(vld1q_u16(w + i + 8));
    a0 = vfmaq_f32(a0, vcvt_f32_f16(vget_low_f16(h0)), vld1q_f32(x + i));
    a1 = vfmaq_f32(a1, vcvt_high_f32_f16(h0), vld1q_f32(x + i + 4));
    a2 = vfmaq_f32(a2, vcvt_f32_f16(vget_low_f16(h1)), vld1q_f32(x + i + 8));
    a3 = vfmaq_f32(a3, vcvt_high_f32_f16(h1), vld1q_f32(x + i + 12));
  }
  for (; i + 4 <= k; i += 4) a0 = vfmaq_f32(a0, load_f16x4(w + i), vld1q_f32(x + i));
  float acc = vaddvq_f32(vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3)));
  for (; i < k; i++) acc += f16s(w[i]) * x[i];
  return acc;
}

static float neon_dot_bf16(int k, const uint16_t *w, const float *x) {
  float32x4_t a0 = vdupq_n_f32(0.0f), a1 = vdupq_n_f32(0.0f), a2 = vdupq_n_f32(0.0f), a3 = vdupq_n_f32(0.0f);
  int i = 0;
  for (; i + 16 <= k; i += 16) {
    a0 = vfmaq_f32(a0, load_bf16x4(w + i), vld1q_f32(x + i));
    a1 = vfmaq_f32(a1, load_bf16x4(w + i + 4), vld1q_f32(x + i + 4));
    a2 = vfmaq_f32(a2, load_bf16x4(w + i + 8), vld1q_f32(x + i + 8));
    a3 = vfmaq_f32(a3, load_bf16x4(w + i + 12), vld1q_f32(x + i + 12));
  }
  for (; i + 4 <= k; i += 4) a0 = vfmaq_f32(a0, load_bf16x4(w + i), vld1q_f32(x + i));
  float acc = vaddvq_f32(vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3)));
  for (; i < k; i++) acc += cg_bf16_to_f32(w[i]) * x[i];
  return acc;
}

static void neon_f16_to_f32(const uint16_t *x, float *y, int n) {
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    const float16x8_t h = vreinterpretq_f16_u16(vld1q_u16(x + i));
    vst1q_f32(y + i, vcvt_f32_f16(vget_low_f16(h)));
    vst1q_f32(y + i + 4, vcvt_high_f32_f16(h));
  }
  for (; i < n; i++) y[i] = f16s(x[i]);
}

/* fcvtn rounds to nearest even under the default FPCR, as cg_f32_to_f16 does (NaNs stay quiet NaNs). */
static void neon_f32_to_f16(const float *x, uint16_t *y, int n) {
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    const float16x8_t h = vcvt_high_f16_f32(vcvt_f16_f32(vld1q_f32(x + i)), vld1q_f32(x + i + 4));
    vst1q_u16(y + i, vreinterpretq_u16_f16(h));
  }
  for (; i < n; i++) y[i] = cg_f32_to_f16(x[i]);
}

/* Cephes-style expf on 4 lanes (relative error ~1e-7), the same polynomial as the x86 exp256. */
static inline float32x4_t exp_f32x4(float32x4_t x) {
  x = vminq_f32(vmaxq_f32(x, vdupq_n_f32(-87.3f)), vdupq_n_f32(88.3f));
  const float32x4_t fx = vrndnq_f32(vmulq_n_f32(x, 1.44269504088896341f));
  x = vfmsq_f32(x, fx, vdupq_n_f32(0.693359375f));
  x = vfmsq_f32(x, fx, vdupq_n_f32(-2.12194440e-4f));
  float32x4_t y = vdupq_n_f32(1.9875691500E-4f);
  y = vfmaq_f32(vdupq_n_f32(1.3981999507E-3f), y, x);
  y = vfmaq_f32(vdupq_n_f32(8.3334519073E-3f), y, x);
  y = vfmaq_f32(vdupq_n_f32(4.1665795894E-2f), y, x);
  y = vfmaq_f32(vdupq_n_f32(1.6666665459E-1f), y, x);
  y = vfmaq_f32(vdupq_n_f32(5.0000001201E-1f), y, x);
  y = vfmaq_f32(vaddq_f32(x, vdupq_n_f32(1.0f)), y, vmulq_f32(x, x));
  const int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(fx), vdupq_n_s32(127)), 23);
  return vmulq_f32(y, vreinterpretq_f32_s32(e));
}

static void neon_swiglu_row(const float *x, int half, float *out, int len) {
  int i = 0;
  const float32x4_t one = vdupq_n_f32(1.0f);
  for (; i + 4 <= len; i += 4) {
    const float32x4_t g = vld1q_f32(x + i);
    const float32x4_t u = vld1q_f32(x + half + i);
    const float32x4_t e = exp_f32x4(vnegq_f32(g));
    vst1q_f32(out + i, vmulq_f32(vdivq_f32(g, vaddq_f32(one, e)), u));
  }
  for (; i < len; i++) {
    const float g = x[i];
    out[i] = g / (1.0f + expf(-g)) * x[half + i];
  }
}

static double neon_sum_f32(const float *x, size_t n) {
  float32x4_t a0 = vdupq_n_f32(0.0f), a1 = vdupq_n_f32(0.0f), a2 = vdupq_n_f32(0.0f), a3 = vdupq_n_f32(0.0f);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    a0 = vaddq_f32(a0, vld1q_f32(x + i));
    a1 = vaddq_f32(a1, vld1q_f32(x + i + 4));
    a2 = vaddq_f32(a2, vld1q_f32(x + i + 8));
    a3 = vaddq_f32(a3, vld1q_f32(x + i + 12));
  }
  double acc = vaddvq_f32(vaddq_f32(vaddq_f32(a0, a1), vaddq_f32(a2, a3)));
  for (; i < n; i++) acc += x[i];
  return acc;
}

/* ------------------------------------------------------------ int8 dot products, plain NEON */

/* No SDOT: widen to 16-bit products and pairwise-add into 32-bit lanes (exact for int8 inputs). */
static inline int32x4_t dot_plain(int32x4_t acc, int8x16_t w, int8x16_t a) {
  acc = vpadalq_s16(acc, vmull_s8(vget_low_s8(w), vget_low_s8(a)));
  return vpadalq_s16(acc, vmull_high_s8(w, a));
}

/* Lane l gets bytes 4l..4l+3, like SDOT: the x8 kernels keep one weight row per lane. */
static inline int32x4_t dotl_plain(int32x4_t acc, int8x16_t w, int8x16_t a) {
  const int32x4_t lo = vpaddlq_s16(vmull_s8(vget_low_s8(w), vget_low_s8(a)));
  const int32x4_t hi = vpaddlq_s16(vmull_high_s8(w, a));
  return vaddq_s32(acc, vpaddq_s32(lo, hi));
}

#define NQ(name) neon_##name
#define NQ_DOT(acc, w, a) dot_plain(acc, w, a)
#define NQ_DOTLANE(acc, w, a, c) \
  dotl_plain(acc, w, vreinterpretq_s8_s32(vdupq_laneq_s32(vreinterpretq_s32_s8(a), c)))
#include "kernels_neon_q.inc"
#include "kernels_kquants_neon.inc"
#undef NQ
#undef NQ_DOT
#undef NQ_DOTLANE

/* ------------------------------------------------------------ int8 dot products, SDOT */

#if CG_HAVE_SDOT
/* The target string GCC's arm_neon.h wraps the SDOT intrinsics in (GCC 12 refuses a plain
 * "+dotprod" on an armv8-a base as a mismatch); every dotprod core is ARMv8.2 or later anyway. */
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("arch=armv8.2-a+dotprod"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("arch=armv8.2-a+dotprod")
#endif
#define NQ(name) neondot_##name
#define NQ_DOT(acc, w, a) vdotq_s32(acc, w, a)
#define NQ_DOTLANE(acc, w, a, c) vdotq_laneq_s32(acc, w, a, c)
#include "kernels_neon_q.inc"
#include "kernels_kquants_neon.inc"
#undef NQ
#undef NQ_DOT
#undef NQ_DOTLANE
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#else
#define neondot_dot_q8_0 neon_dot_q8_0
#define neondot_dot_q4_0 neon_dot_q4_0
#define neondot_x8_q4_0_1 neon_x8_q4_0_1
#define neondot_x8_q4_0_4 neon_x8_q4_0_4
#define neondot_x8_q8_0_1 neon_x8_q8_0_1
#define neondot_x8_q8_0_4 neon_x8_q8_0_4
#define neondot_kq_dot neon_kq_dot
#define neondot_lq_dot neon_lq_dot
#endif

/* ------------------------------------------------------------ tables */

#define NEON_SHARED_ENTRIES                \
  .quantize_qa = neon_quantize_qa,         \
  .dot_f32 = neon_dot_f32,                 \
  .dot_f16 = neon_dot_f16,                 \
  .dot_bf16 = neon_dot_bf16,               \
  .f16_to_f32 = neon_f16_to_f32,           \
  .f32_to_f16 = neon_f32_to_f16,           \
  .rmsnorm_row = gen_rmsnorm_row,          \
  .swiglu_row = neon_swiglu_row,           \
  .add = gen_add,                          \
  .sum_f32 = neon_sum_f32,                 \
  .quantize_q8_K = gen_quantize_q8_K

const kernels_t kernels_neon = {
    .name = "neon",
    .dot_q8_0 = neon_dot_q8_0,
    .dot_q4_0 = neon_dot_q4_0,
    .x8_q4_0_1 = neon_x8_q4_0_1,
    .x8_q4_0_4 = neon_x8_q4_0_4,
    .x8_q8_0_1 = neon_x8_q8_0_1,
    .x8_q8_0_4 = neon_x8_q8_0_4,
    .kq_dot = neon_kq_dot,
    .lq_dot = neon_lq_dot,
    NEON_SHARED_ENTRIES,
};

const kernels_t kernels_neon_dot = {
    .name = "neondot",
    .dot_q8_0 = neondot_dot_q8_0,
    .dot_q4_0 = neondot_dot_q4_0,
    .x8_q4_0_1 = neondot_x8_q4_0_1,
    .x8_q4_0_4 = neondot_x8_q4_0_4,
    .x8_q8_0_1 = neondot_x8_q8_0_1,
    .x8_q8_0_4 = neondot_x8_q8_0_4,
    .kq_dot = neondot_kq_dot,
    .lq_dot = neondot_lq_dot,
    NEON_SHARED_ENTRIES,
};

#else
/* ISO C wants at least one declaration in a translation unit. */
typedef int cg_kernels_neon_unused;
#endif

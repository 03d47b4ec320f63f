/* Portable references of the bf16 prefill attention kernels (contract in attn_bf16.h): what the
 * kernel check compares the AVX-512 BF16 versions with. Products of two bf16 values are exact in
 * f32; sums are f32, in a different order than the SIMD kernels. */
#include <math.h>

#include "attn_bf16.h"

static float bf(uint16_t b) { return cg_bf16_to_f32(b); }

void cg_attn_bf16_tiles_scalar(int hd, const float *K, const float *V, int n, uint16_t *K2, uint16_t *VT2) {
  for (int j = 0; j < n; j++)
    for (int i = 0; i < hd; i++) K2[(size_t)j * hd + i] = cg_f32_to_bf16(K[(size_t)j * hd + i]);
  for (int j = 0; j < ((n + 1) & ~1); j++)
    for (int i = 0; i < hd; i++)
      VT2[(size_t)(j / 2) * 2 * hd + 2 * i + (j & 1)] = j < n ? cg_f32_to_bf16(V[(size_t)j * hd + i]) : 0;
}

void cg_attn_rows16_bf16_scalar(int hd, const uint16_t *QT2, int nr, const uint16_t *K2, const uint16_t *VT2, int n,
                                const int *lim, float scale, float *P, float *m, float *l, float *acc) {
  for (int r = 0; r < nr; r++) {
    float mx = m[r];
    for (int j = 0; j < n; j++) {
      float x = -INFINITY;
      if (j < lim[r]) {
        float s = 0.0f;
        for (int d = 0; d < hd; d++) s += bf(QT2[(size_t)(d / 2) * 32 + 2 * r + (d & 1)]) * bf(K2[(size_t)j * hd + d]);
        x = s * scale;
      }
      P[(size_t)j * ATD_ROWS + r] = x;
      if (x > mx) mx = x;
    }
    const float c = mx != -INFINITY && m[r] != -INFINITY ? expf(m[r] - mx) : 1.0f;
    float sum = 0.0f;
    for (int j = 0; j < n; j++) {
      const float x = P[(size_t)j * ATD_ROWS + r];
      const float p = x != -INFINITY ? bf(cg_f32_to_bf16(expf(x - mx))) : 0.0f;
      P[(size_t)j * ATD_ROWS + r] = p;
      sum += p;
    }
    l[r] = l[r] * c + sum;
    m[r] = mx;
    float *ar = acc + (size_t)r * hd;
    if (c != 1.0f)
      for (int i = 0; i < hd; i++) ar[i] *= c;
    for (int j = 0; j < n; j++) {
      const float p = P[(size_t)j * ATD_ROWS + r];
      for (int i = 0; i < hd; i++) ar[i] += p * bf(VT2[(size_t)(j / 2) * 2 * hd + 2 * i + (j & 1)]);
    }
  }
}

int cg_cpu_has_bf16(void) {
#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
  return __builtin_cpu_supports("avx512bf16") ? 1 : 0;
#else
  return 0;
#endif
}

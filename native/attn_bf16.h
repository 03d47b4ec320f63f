/*
 * Prefill attention with bf16 dot products (attn_bf16_avx512.c, scalar references in attn_bf16.c):
 * the same 16-rows-in-lanes scheme as attn_rows16 (attn_decode.h), with Q, K, V and the softmax
 * weights rounded to bf16 and every product summed in f32 (vdpbf16ps: two products per 32-bit
 * lane), for twice the multiply rate of f32 FMAs. The online softmax stays f32. Used for long
 * prompts only, where attention rivals the weights' GEMMs; its error against the f32 kernel is
 * measured in BENCHMARKS.md.
 */
#ifndef CHATGLM_ATTN_BF16_H
#define CHATGLM_ATTN_BF16_H

#include <stddef.h>
#include <stdint.h>
#include "attn_decode.h"

/* Context length (keys) from which prefill attention takes the bf16 kernels where available. */
#define ATT_BF16_MIN_KEYS 2048

/* f32 -> bf16 bits, round to nearest even (NaN kept NaN). */
static inline uint16_t cg_f32_to_bf16(float f) {
  union { float f; uint32_t u; } v = {f};
  if ((v.u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((v.u >> 16) | 0x40);
  return (uint16_t)((v.u + 0x7fffu + ((v.u >> 16) & 1u)) >> 16);
}

/*
 * Tile preparation: K f32 [n][hd] -> K2 bf16 [n][hd] (rows as they were); V f32 [n][hd] -> VT2 bf16
 * pairs of keys per channel, VT2[(j / 2) * 2 * hd + 2 * i + (j & 1)] = V[j][i], with the partner of
 * a last odd key zero. Q rows -> QT2: QT2[(d / 2) * 32 + 2 * r + (d & 1)] = q_r[d] for 16 rows.
 */
void cg_attn_bf16_tiles_scalar(int hd, const float *K, const float *V, int n, uint16_t *K2, uint16_t *VT2);
/*
 * The attn_rows16 contract (attn_decode.h) on bf16 operands: QT2 (16 rows, rows >= nr zero), K2,
 * VT2 as above; P is 16 * ATD_TILE floats of scratch. hd a multiple of 64.
 */
void cg_attn_rows16_bf16_scalar(int hd, const uint16_t *QT2, int nr, const uint16_t *K2, const uint16_t *VT2, int n,
                                const int *lim, float scale, float *P, float *m, float *l, float *acc);
/* 1 when this CPU runs vdpbf16ps (avx512_bf16): the bf16 kernels of a table may run. */
int cg_cpu_has_bf16(void);
#if defined(__x86_64__) || defined(_M_X64)
void cg_attn_bf16_tiles_avx512(int hd, const float *K, const float *V, int n, uint16_t *K2, uint16_t *VT2);
void cg_attn_rows16_bf16_avx512(int hd, const uint16_t *QT2, int nr, const uint16_t *K2, const uint16_t *VT2, int n,
                                const int *lim, float scale, float *P, float *m, float *l, float *acc);
#endif

#endif

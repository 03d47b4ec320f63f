/*
 * Attention for one or a few query tokens over a long cache (attn_decode.c): the keys of each KV
 * group are split into chunks that threads take independently (flash-decoding), every chunk keeps
 * a partial running max / sum / unnormalised output per query row, and a merge combines them. So
 * both cores work even when a model has only two KV groups, and a K/V tile is converted once for
 * all the query heads of its group.
 */
#ifndef CHATGLM_ATTN_DECODE_H
#define CHATGLM_ATTN_DECODE_H

#include <stddef.h>
#include "ops.h"

/* Keys per tile (the K/V tiles the row kernels read hold up to this many rows). */
#define ATD_TILE 64
/* Query rows (token x head pairs of one group) per kernel call: one per 512-bit lane. */
#define ATD_ROWS 16

/*
 * The attn_rows16 contract (kernels_t): up to 16 query rows in lanes, QT[d * 16 + r] (rows r >= nr
 * hold zeros), against keys 0..n-1 of a tile (1 <= n <= ATD_TILE): K and V are f32 [j][hd] with
 * room for ATD_TILE rows (rows at or past n are never used in arithmetic). Row r sees keys j <
 * lim[r] (lim[r] <= 0: none). The online-softmax update of each row's running max m[r], sum l[r]
 * (16 each) and unnormalised output acc[r * hd ..] (16 rows of hd) exactly as attn_tile does for one
 * row; P is 16 * ATD_TILE floats of scratch. hd a multiple of 16.
 */
void cg_attn_rows16_scalar(int hd, const float *QT, int nr, const float *K, const float *V, int n, const int *lim,
                           float scale, float *P, float *m, float *l, float *acc);
#if defined(__x86_64__) || defined(_M_X64)
void cg_attn_rows16_avx512(int hd, const float *QT, int nr, const float *K, const float *V, int n, const int *lim,
                           float scale, float *P, float *m, float *l, float *acc);
#endif

/* Largest nTokens * (nHeads / nGroups) the split path takes (beyond it the prefill path is faster). */
#define ATD_MAX_ROWS 64
/* Shortest context (keys) the split path takes. Below it every step runs the prefill path, whose
 * per-row arithmetic does not depend on how the prompt was cut into steps, so a prompt fed in
 * chunks gives the same bits as fed whole (the bf16 prefill starts at the same length). */
#define ATD_MIN_KEYS 2048

/*
 * cg_attention_kv's attention step (the cache already holds this step's rows) for nTokens query
 * tokens with nTokens * (nHeads / nGroups) <= ATD_MAX_ROWS. Returns the scratch bytes used, which
 * cg_attention_split_bytes gives beforehand, or (size_t)-1 when they cannot be allocated.
 */
size_t cg_attention_split(cg_ctx *c, const float *q, float *out, const void *kc, const void *vc, int kvType, int rowStart,
                          int nTokens, int startPos, int nHeads, int nGroups, int headDim, float scale);
size_t cg_attention_split_bytes(int nth, int nTokens, int nHeads, int nGroups, int headDim);

#endif

/*
 * Prefill attention, four query rows at a time (attn_avx512.c). The kernel table's attn_rows4
 * points here where the ISA has it (NULL elsewhere: attention runs attn_tile row by row).
 */
#ifndef CHATGLM_ATTN4_H
#define CHATGLM_ATTN4_H

#include <stddef.h>

/* Keys per tile: the K^T tile's row length. */
#define ATT4_TILE 64

/*
 * Query rows q + r * qstride (r < 4, hd floats each; hd a multiple of 64) against keys 0..n-1 of a
 * tile (1 <= n <= ATT4_TILE): KT is the tile transposed, KT[d * ATT4_TILE + j] = K[j][d]; V is
 * [j][hd]. The online-softmax update of each row's running max m[r], sum l[r] and unnormalised
 * output acc[r * hd ..] exactly as attn_tile does for one row; s is 4 * ATT4_TILE floats of scratch.
 */
#if defined(__x86_64__) || defined(_M_X64)
void cg_attn_rows4_avx512(int hd, const float *q, size_t qstride, const float *KT, const float *V, int n, float scale,
                          float *s, float *m, float *l, float *acc);
#endif

#endif

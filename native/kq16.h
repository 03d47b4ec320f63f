/*
 * The x16 layout of k-quant weights (q4_K): what the loader makes of a matrix once, when the
 * context's kernel table reads it (cg_kq16, ops.h), so that a decode step needs no horizontal sums
 * and no per-row scale unpacking. Same bytes per row as ggml's layout; rows past the last whole
 * group of 16 stay in ggml's layout after the groups.
 *
 * Group g (rows 16g .. 16g+15) starts where ggml's row 16g does; its super-block i is one record of
 * 16 * (ggml block bytes) at group + i * record bytes, lane r (4 bytes at 4r of a 64-byte section)
 * belonging to row 16g + r:
 *   q4_K (2304 B):  section 0: block bytes 0-3 (d, dmin); sections 1-3: bytes 4-7, 8-11, 12-15 (the
 *                   packed 6-bit scales and mins); sections 4 + k, k < 32: byte b of lane r holds
 *                   element 4k + b's quant in its low nibble and element 128 + 4k + b's in its high one.
 * So the low nibbles of section 4 + k are the GEMM panel's register k (gemm_kq.h), the high ones its
 * register 32 + k.
 */
#ifndef CHATGLM_KQ16_H
#define CHATGLM_KQ16_H

#include <stddef.h>
#include <stdint.h>

#define KQ16_ROWS 16

/* 1 when the type has an x16 layout. */
int cg_kq16_type(int type);
/* Bytes of one record (16 rows x one super-block). */
size_t cg_kq16_record(int type);
/* ggml rows -> x16 (src and dst rows * row_bytes each; not in place). */
void cg_kq16_repack(int type, int rows, int cols, const uint8_t *src, uint8_t *dst);
/* Row r of an x16 matrix back in ggml's row layout (embedding lookups). */
void cg_kq16_row(int type, int cols, const uint8_t *w, int rows, int r, uint8_t *out);

#endif

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
 *
 * The same for q4_1 / q5_0 / q5_1 (cg_kq16_type too), whose blocks have 32 elements: a record is 16
 * rows x one block (16 * 20 / 22 / 24 B):
 *   q4_1 (320 B):  section 0: block bytes 0-3 (d, m); then the 4 nibble sections.
 *   q5_0 (352 B):  bytes 0-31: row r's d (f16) at 2r; bytes 32-95: the 5th-bit masks; then the 4
 *                  nibble sections.
 *   q5_1 (384 B):  section 0: block bytes 0-3 (d, m); bytes 64-127: the 5th-bit masks; then the 4
 *                  nibble sections.
 *   Nibble section k < 4: lane r = the row's qs bytes 4k .. 4k+3, so byte b holds element 4k + b's
 *   low 4 bits in its low nibble and element 16 + 4k + b's in its high one: the low nibbles are the
 *   lq GEMM panel's register k, the high ones its register 4 + k.
 *   5th-bit mask j < 8: the little-endian 64-bit word at 8j of the masks whose bit 4r + b is bit 4j + b of row r's
 *   qh (the 5th bit of element 4j + b), i.e. a byte mask over panel register j: the kernel loads it
 *   into a mask register and adds 16 where it is set, with no bit shuffling.
 * The sizes are ggml's: 64 + 256 = 320, 32 + 64 + 256 = 352, 64 + 64 + 256 = 384.
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

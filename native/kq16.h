/*
 * The x16 layout of k-quant weights (q4_K, q5_K, q6_K): what the loader makes of a matrix once, when
 * the context's kernel table reads it (cg_kq16, ops.h), so that a decode step needs no horizontal
 * sums and no per-row scale unpacking. Same bytes per row as ggml's layout; rows past the last whole
 * group of 16 stay in ggml's layout after the groups.
 *
 * Group g (rows 16g .. 16g+15) starts where ggml's row 16g does; its super-block i is one record of
 * 16 * (ggml block bytes) at group + i * record bytes. In a 64-byte section, lane r (the 4 bytes at
 * 4r) belongs to row 16g + r. Sections, in order:
 *   header   q4_K, q5_K: 4 sections, block bytes 0-3 (d, dmin), 4-7, 8-11, 12-15 (the 6-bit scales
 *            and mins). q6_K: 32 bytes of the rows' f16 d (2 per row), then 4 sections of the int8
 *            scales 4s .. 4s+3.
 *   nibbles  32 sections k: byte b of lane r holds the low 4 bits of element 4k + b's quant (unsigned:
 *            q5_K 0..31, q6_K 0..63 before its -32) in its low nibble, those of element 128 + 4k + b
 *            in its high one.
 *   high     the bits above the nibbles, one section after each run of nibble sections it serves
 *            (so a record reads front to back): q5_K, after sections 4m .. 4m+3: their 5th bits,
 *            byte b of the lane: bit 2 (k % 4) for the low nibble's element, the next bit for the
 *            high one's. q6_K, after sections 2m, 2m+1: their top two bits, bits 4 (k % 2) and the
 *            one above for the low nibble's element, the next two for the high one's.
 * So nibble section k with its high bits is the GEMM panel's register k, and its high nibbles with
 * theirs its register 32 + k (gemm_kq.h). Sizes: q4_K 256 + 2048 = 2304 = 16 x 144; q5_K 256 +
 * 2048 + 512 = 2816 = 16 x 176; q6_K 32 + 256 + 2048 + 1024 = 3360 = 16 x 210.
 *
 * The same for q4_1 / q5_0 / q5_1 (cg_kq16_type too), whose blocks have 32 elements: a record is 16
 * rows x one block, 16 x 20 / 22 / 24 bytes. Sections, in order:
 *   header   q4_1, q5_1: one section, block bytes 0-3 (d, m). q5_0: 32 bytes of the rows' f16 d.
 *   nibbles  4 sections k: lane r holds the row's qs bytes 4k .. 4k+3, so byte b holds the low 4 bits
 *            of element 4k + b's quant in its low nibble, those of element 16 + 4k + b in its high one.
 *   masks    q5_0, q5_1: 8 little-endian 64-bit words j: bit 4r + b is bit 4j + b of row r's qh (the
 *            5th bit of element 4j + b), so a kernel loads word j into a mask register and adds 16
 *            to register j's bytes where it is set, with no bit shuffling.
 * So nibble section k's low nibbles are the lq GEMM panel's register k, its high nibbles register 4 + k,
 * word j the 5th bits of register j (gemm_kq.h). Sizes: q4_1 64 + 256 = 320 = 16 x 20; q5_0 32 + 256 +
 * 64 = 352 = 16 x 22; q5_1 64 + 256 + 64 = 384 = 16 x 24.
 */
#ifndef CHATGLM_KQ16_H
#define CHATGLM_KQ16_H

#include <stddef.h>
#include <stdint.h>

#include "kernels.h"

#define KQ16_ROWS 16

/* Offsets in a record of nibble section k (k < 32) and of the high-bit section that serves it. */
static inline size_t kq16_nibble_at(int type, int k) {
  return type == WT_Q6_K ? 288 + 64 * (size_t)(k + k / 2) : type == WT_Q5_K ? 256 + 64 * (size_t)(k + k / 4) : 256 + 64 * (size_t)k;
}
static inline size_t kq16_high_at(int type, int k) {
  return type == WT_Q6_K ? 288 + 64 * (size_t)(3 * (k / 2) + 2) : 256 + 64 * (size_t)(5 * (k / 4) + 4);
}

/* Offsets in a q4_1 / q5_0 / q5_1 record of its nibble sections and of its 5th-bit masks. */
static inline size_t lq16_nibbles_at(int type) { return type == WT_Q5_0 ? 32 : 64; }
static inline size_t lq16_masks_at(int type) { return type == WT_Q5_0 ? 288 : 320; }

/* 1 when the type has an x16 layout. */
int cg_kq16_type(int type);
/* Bytes of one record (16 rows x one super-block). */
size_t cg_kq16_record(int type);
/* ggml rows -> x16 (src and dst rows * row_bytes each; not in place). */
void cg_kq16_repack(int type, int rows, int cols, const uint8_t *src, uint8_t *dst);
/* Row r of an x16 matrix back in ggml's row layout (embedding lookups). */
void cg_kq16_row(int type, int cols, const uint8_t *w, int rows, int r, uint8_t *out);

#endif

/* The x16 layout of k-quant weights (kq16.h): repacking at load and single rows back out. */
#include "kq16.h"

#include <string.h>

#include "kernels.h"

#define Q4K_BYTES 144

int cg_kq16_type(int type) { return type == WT_Q4_K || WT_IS_LEGACY(type); }

static size_t lq16_block(int type);

size_t cg_kq16_record(int type) {
  if (WT_IS_LEGACY(type)) return (size_t)KQ16_ROWS * lq16_block(type);
  return type == WT_Q4_K ? (size_t)KQ16_ROWS * Q4K_BYTES : 0;
}

/* A q4_K block's 256 quants in element order: element 64c + l is the low nibble of qs[32c + l]
 * for l < 32, the high nibble of qs[32c + l - 32] otherwise (ggml's dequantize_row_q4_K). */
static void q4k_quants(const uint8_t *b, uint8_t q[256]) {
  for (int c = 0; c < 4; c++)
    for (int l = 0; l < 32; l++) {
      const uint8_t v = b[16 + 32 * c + l];
      q[64 * c + l] = v & 15;
      q[64 * c + 32 + l] = v >> 4;
    }
}

static void q4k_to_x16(const uint8_t *b, int r, uint8_t *rec) {
  uint8_t q[256];
  q4k_quants(b, q);
  for (int s = 0; s < 4; s++) memcpy(rec + 64 * s + 4 * r, b + 4 * s, 4);
  for (int k = 0; k < 32; k++)
    for (int i = 0; i < 4; i++) rec[256 + 64 * k + 4 * r + i] = (uint8_t)(q[4 * k + i] | q[128 + 4 * k + i] << 4);
}

static void q4k_from_x16(const uint8_t *rec, int r, uint8_t *b) {
  uint8_t q[256];
  for (int s = 0; s < 4; s++) memcpy(b + 4 * s, rec + 64 * s + 4 * r, 4);
  for (int k = 0; k < 32; k++)
    for (int i = 0; i < 4; i++) {
      const uint8_t v = rec[256 + 64 * k + 4 * r + i];
      q[4 * k + i] = v & 15;
      q[128 + 4 * k + i] = v >> 4;
    }
  for (int c = 0; c < 4; c++)
    for (int l = 0; l < 32; l++) b[16 + 32 * c + l] = (uint8_t)(q[64 * c + l] | q[64 * c + 32 + l] << 4);
}

static void lq16_repack(int type, int rows, int cols, const uint8_t *src, uint8_t *dst);
static void lq16_row(int type, int cols, const uint8_t *w, int rows, int r, uint8_t *out);

void cg_kq16_repack(int type, int rows, int cols, const uint8_t *src, uint8_t *dst) {
  if (WT_IS_LEGACY(type)) {
    lq16_repack(type, rows, cols, src, dst);
    return;
  }
  const int nbk = cols / 256;
  const size_t rb = (size_t)nbk * Q4K_BYTES, rec = cg_kq16_record(type);
  const int groups = rows / KQ16_ROWS;
  (void)type;
  for (int g = 0; g < groups; g++) {
    const uint8_t *rows0 = src + (size_t)g * KQ16_ROWS * rb;
    uint8_t *out = dst + (size_t)g * KQ16_ROWS * rb;
    for (int i = 0; i < nbk; i++)
      for (int r = 0; r < KQ16_ROWS; r++) q4k_to_x16(rows0 + (size_t)r * rb + (size_t)i * Q4K_BYTES, r, out + (size_t)i * rec);
  }
  memcpy(dst + (size_t)groups * KQ16_ROWS * rb, src + (size_t)groups * KQ16_ROWS * rb, (size_t)(rows - groups * KQ16_ROWS) * rb);
}

void cg_kq16_row(int type, int cols, const uint8_t *w, int rows, int r, uint8_t *out) {
  if (WT_IS_LEGACY(type)) {
    lq16_row(type, cols, w, rows, r, out);
    return;
  }
  const int nbk = cols / 256;
  const size_t rb = (size_t)nbk * Q4K_BYTES, rec = cg_kq16_record(type);
  if (r >= rows / KQ16_ROWS * KQ16_ROWS) {
    memcpy(out, w + (size_t)r * rb, rb);
    return;
  }
  const uint8_t *group = w + (size_t)(r / KQ16_ROWS) * KQ16_ROWS * rb;
  for (int i = 0; i < nbk; i++) q4k_from_x16(group + (size_t)i * rec, r % KQ16_ROWS, out + (size_t)i * Q4K_BYTES);
}

/* ---------------------------------------------------------------- q4_1, q5_0, q5_1 */

/* ggml's block bytes: (d[, m], [qh,] qs[16]). */
static size_t lq16_block(int type) { return type == WT_Q4_1 ? 20 : type == WT_Q5_0 ? 22 : 24; }

/* Where a record's 5th-bit masks and nibble sections start (kq16.h). */
static size_t lq16_masks_at(int type) { return type == WT_Q5_0 ? 32 : 64; }
static size_t lq16_nibbles_at(int type) { return type == WT_Q4_1 ? 64 : type == WT_Q5_0 ? 96 : 128; }

/* Where a ggml block keeps qh and qs. */
static size_t lq16_qh_at(int type) { return type == WT_Q5_0 ? 2 : 4; }
static size_t lq16_qs_at(int type) { return type == WT_Q4_1 ? 4 : type == WT_Q5_0 ? 6 : 8; }

/* Row r's block b into lane r of record rec. Mask j's bits 4r .. 4r+3 are nibble r % 2 of its byte r / 2. */
static void lq_to_x16(int type, const uint8_t *b, int r, uint8_t *rec) {
  if (type == WT_Q5_0) memcpy(rec + 2 * r, b, 2);
  else memcpy(rec + 4 * r, b, 4);
  if (type != WT_Q4_1) {
    uint32_t qh;
    memcpy(&qh, b + lq16_qh_at(type), 4);
    uint8_t *masks = rec + lq16_masks_at(type);
    const int sh = 4 * (r & 1);
    for (int j = 0; j < 8; j++) {
      uint8_t *m = masks + 8 * j + r / 2;
      *m = (uint8_t)((*m & ~(15 << sh)) | ((qh >> 4 * j) & 15) << sh);
    }
  }
  for (int k = 0; k < 4; k++) memcpy(rec + lq16_nibbles_at(type) + 64 * k + 4 * r, b + lq16_qs_at(type) + 4 * k, 4);
}

static void lq_from_x16(int type, const uint8_t *rec, int r, uint8_t *b) {
  if (type == WT_Q5_0) memcpy(b, rec + 2 * r, 2);
  else memcpy(b, rec + 4 * r, 4);
  if (type != WT_Q4_1) {
    const uint8_t *masks = rec + lq16_masks_at(type);
    uint32_t qh = 0;
    for (int j = 0; j < 8; j++) qh |= (uint32_t)(masks[8 * j + r / 2] >> 4 * (r & 1) & 15) << 4 * j;
    memcpy(b + lq16_qh_at(type), &qh, 4);
  }
  for (int k = 0; k < 4; k++) memcpy(b + lq16_qs_at(type) + 4 * k, rec + lq16_nibbles_at(type) + 64 * k + 4 * r, 4);
}

static void lq16_repack(int type, int rows, int cols, const uint8_t *src, uint8_t *dst) {
  const int nb = cols / 32;
  const size_t bb = lq16_block(type), rb = (size_t)nb * bb, rec = cg_kq16_record(type);
  const int groups = rows / KQ16_ROWS;
  for (int g = 0; g < groups; g++) {
    const uint8_t *rows0 = src + (size_t)g * KQ16_ROWS * rb;
    uint8_t *out = dst + (size_t)g * KQ16_ROWS * rb;
    for (int i = 0; i < nb; i++)
      for (int r = 0; r < KQ16_ROWS; r++) lq_to_x16(type, rows0 + (size_t)r * rb + (size_t)i * bb, r, out + (size_t)i * rec);
  }
  memcpy(dst + (size_t)groups * KQ16_ROWS * rb, src + (size_t)groups * KQ16_ROWS * rb, (size_t)(rows - groups * KQ16_ROWS) * rb);
}

static void lq16_row(int type, int cols, const uint8_t *w, int rows, int r, uint8_t *out) {
  const int nb = cols / 32;
  const size_t bb = lq16_block(type), rb = (size_t)nb * bb, rec = cg_kq16_record(type);
  if (r >= rows / KQ16_ROWS * KQ16_ROWS) {
    memcpy(out, w + (size_t)r * rb, rb);
    return;
  }
  const uint8_t *group = w + (size_t)(r / KQ16_ROWS) * KQ16_ROWS * rb;
  for (int i = 0; i < nb; i++) lq_from_x16(type, group + (size_t)i * rec, r % KQ16_ROWS, out + (size_t)i * bb);
}

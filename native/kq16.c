/* The x16 layout of k-quant weights (kq16.h): repacking at load and single rows back out. */
#include "kq16.h"

#include <string.h>

#include "kernels.h"

int cg_kq16_type(int type) { return type == WT_Q4_K || type == WT_Q5_K || type == WT_Q6_K || WT_IS_LEGACY(type); }

static size_t block_bytes(int type) { return type == WT_Q4_K ? 144 : type == WT_Q5_K ? 176 : 210; }

static size_t lq16_block(int type);

size_t cg_kq16_record(int type) {
  if (WT_IS_LEGACY(type)) return (size_t)KQ16_ROWS * lq16_block(type);
  return cg_kq16_type(type) ? KQ16_ROWS * block_bytes(type) : 0;
}


/*
 * A ggml block's 256 quants in element order, unsigned (q4_K 0..15, q5_K 0..31, q6_K 0..63 before its
 * -32), as ggml's dequantize_row_q*_K reads them; and the inverse, which writes the quant fields.
 */
static void block_quants(int type, const uint8_t *b, uint8_t q[256]) {
  if (type == WT_Q6_K) {
    for (int n = 0; n < 2; n++)
      for (int l = 0; l < 32; l++) {
        const uint8_t *ql = b + 64 * n, h = b[128 + 32 * n + l];
        q[128 * n + l] = (uint8_t)((ql[l] & 15) | (h & 3) << 4);
        q[128 * n + l + 32] = (uint8_t)((ql[l + 32] & 15) | (h >> 2 & 3) << 4);
        q[128 * n + l + 64] = (uint8_t)((ql[l] >> 4) | (h >> 4 & 3) << 4);
        q[128 * n + l + 96] = (uint8_t)((ql[l + 32] >> 4) | (h >> 6 & 3) << 4);
      }
    return;
  }
  const int five = type == WT_Q5_K;
  const uint8_t *qh = b + 16, *qs = b + (five ? 48 : 16);
  for (int c = 0; c < 4; c++)
    for (int l = 0; l < 32; l++) {
      q[64 * c + l] = (uint8_t)((qs[32 * c + l] & 15) | (five ? (qh[l] >> (2 * c) & 1) << 4 : 0));
      q[64 * c + 32 + l] = (uint8_t)((qs[32 * c + l] >> 4) | (five ? (qh[l] >> (2 * c + 1) & 1) << 4 : 0));
    }
}

static void block_set_quants(int type, const uint8_t q[256], uint8_t *b) {
  if (type == WT_Q6_K) {
    for (int n = 0; n < 2; n++)
      for (int l = 0; l < 32; l++) {
        const uint8_t *e = q + 128 * n + l;
        b[64 * n + l] = (uint8_t)((e[0] & 15) | (e[64] & 15) << 4);
        b[64 * n + l + 32] = (uint8_t)((e[32] & 15) | (e[96] & 15) << 4);
        b[128 + 32 * n + l] = (uint8_t)((e[0] >> 4) | (e[32] >> 4) << 2 | (e[64] >> 4) << 4 | (e[96] >> 4) << 6);
      }
    return;
  }
  const int five = type == WT_Q5_K;
  uint8_t *qh = b + 16, *qs = b + (five ? 48 : 16);
  if (five) memset(qh, 0, 32);
  for (int c = 0; c < 4; c++)
    for (int l = 0; l < 32; l++) {
      qs[32 * c + l] = (uint8_t)((q[64 * c + l] & 15) | (q[64 * c + 32 + l] & 15) << 4);
      if (five) qh[l] |= (uint8_t)((q[64 * c + l] >> 4) << (2 * c) | (q[64 * c + 32 + l] >> 4) << (2 * c + 1));
    }
}

/* The block's fields other than the quants, as the header sections hold them (kq16.h). */
static void header_to_x16(int type, const uint8_t *b, int r, uint8_t *rec) {
  if (type == WT_Q6_K) {
    memcpy(rec + 2 * r, b + 208, 2);
    for (int s = 0; s < 4; s++) memcpy(rec + 32 + 64 * s + 4 * r, b + 192 + 4 * s, 4);
  } else {
    for (int s = 0; s < 4; s++) memcpy(rec + 64 * s + 4 * r, b + 4 * s, 4);
  }
}

static void header_from_x16(int type, const uint8_t *rec, int r, uint8_t *b) {
  if (type == WT_Q6_K) {
    memcpy(b + 208, rec + 2 * r, 2);
    for (int s = 0; s < 4; s++) memcpy(b + 192 + 4 * s, rec + 32 + 64 * s + 4 * r, 4);
  } else {
    for (int s = 0; s < 4; s++) memcpy(b + 4 * s, rec + 64 * s + 4 * r, 4);
  }
}

/* Element e's low 4 bits in nibble section k = (e % 128) / 4, byte e % 4 of the lane, the high
 * nibble when e >= 128; its high bits as kq16.h says. */
static void quants_to_x16(int type, const uint8_t q[256], int r, uint8_t *rec) {
  const int six = type == WT_Q6_K, hbits = six ? 2 : 1;
  for (int k = 0; k < 32; k++) {
    const uint8_t *lo = q + 4 * k, *up = q + 128 + 4 * k;
    uint8_t *nib = rec + kq16_nibble_at(type, k) + 4 * r;
    for (int i = 0; i < 4; i++) nib[i] = (uint8_t)((lo[i] & 15) | (up[i] & 15) << 4);
    if (type == WT_Q4_K) continue;
    const int sh = six ? 4 * (k % 2) : 2 * (k % 4);
    uint8_t *h = rec + kq16_high_at(type, k) + 4 * r;
    /* the first nibble section a high section serves sets its bytes; the others add their bits */
    const int first = six ? k % 2 == 0 : k % 4 == 0;
    for (int i = 0; i < 4; i++) h[i] = (uint8_t)((first ? 0 : h[i]) | (lo[i] >> 4) << sh | (up[i] >> 4) << (sh + hbits));
  }
}

static void quants_from_x16(int type, const uint8_t *rec, int r, uint8_t q[256]) {
  const int six = type == WT_Q6_K;
  for (int k = 0; k < 32; k++)
    for (int i = 0; i < 4; i++) {
      const uint8_t v = rec[kq16_nibble_at(type, k) + 4 * r + i];
      int lo = v & 15, up = v >> 4;
      if (type != WT_Q4_K) {
        const int sh = six ? 4 * (k % 2) : 2 * (k % 4), mask = six ? 3 : 1;
        const uint8_t h = rec[kq16_high_at(type, k) + 4 * r + i];
        lo |= (h >> sh & mask) << 4;
        up |= (h >> (sh + (six ? 2 : 1)) & mask) << 4;
      }
      q[4 * k + i] = (uint8_t)lo;
      q[128 + 4 * k + i] = (uint8_t)up;
    }
}

static void lq16_repack(int type, int rows, int cols, const uint8_t *src, uint8_t *dst);
static void lq16_row(int type, int cols, const uint8_t *w, int rows, int r, uint8_t *out);

void cg_kq16_repack(int type, int rows, int cols, const uint8_t *src, uint8_t *dst) {
  if (WT_IS_LEGACY(type)) {
    lq16_repack(type, rows, cols, src, dst);
    return;
  }
  const int nbk = cols / 256;
  const size_t bb = block_bytes(type), rb = (size_t)nbk * bb, rec = cg_kq16_record(type);
  const int groups = rows / KQ16_ROWS;
  uint8_t q[256];
  for (int g = 0; g < groups; g++) {
    const uint8_t *rows0 = src + (size_t)g * KQ16_ROWS * rb;
    uint8_t *out = dst + (size_t)g * KQ16_ROWS * rb;
    for (int i = 0; i < nbk; i++)
      for (int r = 0; r < KQ16_ROWS; r++) {
        const uint8_t *b = rows0 + (size_t)r * rb + (size_t)i * bb;
        block_quants(type, b, q);
        header_to_x16(type, b, r, out + (size_t)i * rec);
        quants_to_x16(type, q, r, out + (size_t)i * rec);
      }
  }
  memcpy(dst + (size_t)groups * KQ16_ROWS * rb, src + (size_t)groups * KQ16_ROWS * rb, (size_t)(rows - groups * KQ16_ROWS) * rb);
}

void cg_kq16_row(int type, int cols, const uint8_t *w, int rows, int r, uint8_t *out) {
  if (WT_IS_LEGACY(type)) {
    lq16_row(type, cols, w, rows, r, out);
    return;
  }
  const int nbk = cols / 256;
  const size_t bb = block_bytes(type), rb = (size_t)nbk * bb, rec = cg_kq16_record(type);
  if (r >= rows / KQ16_ROWS * KQ16_ROWS) {
    memcpy(out, w + (size_t)r * rb, rb);
    return;
  }
  const uint8_t *group = w + (size_t)(r / KQ16_ROWS) * KQ16_ROWS * rb;
  uint8_t q[256];
  for (int i = 0; i < nbk; i++) {
    header_from_x16(type, group + (size_t)i * rec, r % KQ16_ROWS, out + (size_t)i * bb);
    quants_from_x16(type, group + (size_t)i * rec, r % KQ16_ROWS, q);
    block_set_quants(type, q, out + (size_t)i * bb);
  }
}

/* ---------------------------------------------------------------- q4_1, q5_0, q5_1 */

/* ggml's block bytes: (d[, m], [qh,] qs[16]). */
static size_t lq16_block(int type) { return type == WT_Q4_1 ? 20 : type == WT_Q5_0 ? 22 : 24; }

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

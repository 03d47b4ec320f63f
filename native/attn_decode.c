/*
 * Attention of one or a few query tokens over a long KV cache (declarations in attn_decode.h).
 * A decode step has little work per key and few query rows, so the prefill scheme (threads split by
 * group and query block) leaves a core idle with two KV groups and converts each K/V tile once per
 * query row block. Here the keys of a group are cut into chunks: each pool unit (group, chunk)
 * converts its K/V tiles once, runs every query row of the group against them (attn_rows16: 16 rows
 * per call, one per SIMD lane), and leaves a partial max / sum / unnormalised output per row; the
 * caller's thread merges the partials in a fixed order, so the result does not depend on which
 * thread ran which chunk. The number of chunks depends only on the thread count and the context
 * length, never on timing, and the scratch is sized for the largest count, so it does not grow with
 * the context.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "attn_decode.h"
#include "batch_ops.h"

/* Fewest tiles a chunk holds (below this, splitting costs more in merging than it saves). */
#define ATD_MIN_TILES 4

void cg_attn_rows16_scalar(int hd, const float *QT, int nr, const float *K, const float *V, int n, const int *lim,
                           float scale, float *P, float *m, float *l, float *acc) {
  for (int r = 0; r < nr; r++) {
    float mx = m[r];
    for (int j = 0; j < n; j++) {
      float x = -INFINITY;
      if (j < lim[r]) {
        float s = 0.0f;
        for (int d = 0; d < hd; d++) s += QT[(size_t)d * ATD_ROWS + r] * K[(size_t)j * hd + d];
        x = s * scale;
      }
      P[(size_t)j * ATD_ROWS + r] = x;
      if (x > mx) mx = x;
    }
    const float c = mx != -INFINITY && m[r] != -INFINITY ? expf(m[r] - mx) : 1.0f;
    float sum = 0.0f;
    for (int j = 0; j < n; j++) {
      const float x = P[(size_t)j * ATD_ROWS + r];
      const float p = x != -INFINITY ? expf(x - mx) : 0.0f;
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
      for (int i = 0; i < hd; i++) ar[i] += p * V[(size_t)j * hd + i];
    }
  }
}

/* q8_0 cache rows (ggml block_q8_0 along headDim) to f32. */
static void q8_row_to_f32(const uint8_t *src, float *x, int n) {
  const block_q8_0 *y = (const block_q8_0 *)src;
  for (int b = 0; b < n / QK; b++) {
    const float d = cg_f16_to_f32(y[b].d);
    for (int i = 0; i < QK; i++) x[b * QK + i] = d * (float)y[b].qs[i];
  }
}

typedef struct {
  const kernels_t *K;
  void (*rows16)(int, const float *, int, const float *, const float *, int, const int *, float, float *, float *, float *,
                 float *);
  const float *q;
  const uint8_t *kc, *vc;
  int kvType;
  size_t pstride, goff;
  int rowStart, nTokens, startPos, nHeads, nGroups, hd, hpg, nr, nch, chunkKeys, nkeys;
  float scale;
  float *work;          /* per thread: K tile, V tile, P, QT of every row block, lim */
  size_t work_floats;
  float *part;          /* per unit: m[nr], l[nr], acc[nr][hd] */
  size_t part_floats;
} atd_ctx;

static void atd_task(void *ctx, int u, int tid) {
  atd_ctx *A = (atd_ctx *)ctx;
  const int g = u / A->nch, ch = u % A->nch, hd = A->hd, hpg = A->hpg, nr = A->nr;
  const int nblk = (nr + ATD_ROWS - 1) / ATD_ROWS;
  float *Kt = A->work + (size_t)tid * A->work_floats;
  float *Vt = Kt + (size_t)ATD_TILE * hd;
  float *P = Vt + (size_t)ATD_TILE * hd;
  float *QT = P + (size_t)ATD_ROWS * ATD_TILE;
  int *lim = (int *)(QT + (size_t)nblk * ATD_ROWS * hd);
  float *pm = A->part + (size_t)u * A->part_floats;
  float *pl = pm + nblk * ATD_ROWS;
  float *pacc = pl + nblk * ATD_ROWS;
  /* Row r = t * hpg + head-in-group, so rows of one token sit together. */
  for (int r = 0; r < nblk * ATD_ROWS; r++) {
    pm[r] = -INFINITY;
    pl[r] = 0.0f;
  }
  memset(pacc, 0, sizeof(float) * (size_t)nblk * ATD_ROWS * hd);
  if (A->rows16) {
    memset(QT, 0, sizeof(float) * (size_t)nblk * ATD_ROWS * hd);
    for (int r = 0; r < nr; r++) {
      const float *qv = A->q + ((size_t)(A->rowStart + r / hpg) * A->nHeads + g * hpg + r % hpg) * hd;
      float *qt = QT + (size_t)(r / ATD_ROWS) * ATD_ROWS * hd + r % ATD_ROWS;
      for (int d = 0; d < hd; d++) qt[(size_t)d * ATD_ROWS] = qv[d];
    }
  }
  const int k0 = ch * A->chunkKeys;
  const int k1 = k0 + A->chunkKeys < A->nkeys ? k0 + A->chunkKeys : A->nkeys;
  const uint8_t *kg = A->kc + (size_t)g * A->goff, *vg = A->vc + (size_t)g * A->goff;
  for (int j0 = k0; j0 < k1; j0 += ATD_TILE) {
    const int jn = k1 - j0 < ATD_TILE ? k1 - j0 : ATD_TILE;
    for (int j = 0; j < jn; j++) {
      const uint8_t *kp = kg + (size_t)(j0 + j) * A->pstride, *vp = vg + (size_t)(j0 + j) * A->pstride;
      /* The cache is read once per step, from memory: ask for the next tile's rows while this
       * one is computed (the hardware prefetcher does not follow the group-strided rows well). */
      if (j0 + ATD_TILE + j < k1)
        for (size_t o = 0; o < A->goff; o += 64) {
          __builtin_prefetch(kp + (size_t)ATD_TILE * A->pstride + o);
          __builtin_prefetch(vp + (size_t)ATD_TILE * A->pstride + o);
        }
      if (A->kvType == CG_KV_Q8_0) {
        q8_row_to_f32(kp, Kt + (size_t)j * hd, hd);
        q8_row_to_f32(vp, Vt + (size_t)j * hd, hd);
      } else {
        A->K->f16_to_f32((const uint16_t *)kp, Kt + (size_t)j * hd, hd);
        A->K->f16_to_f32((const uint16_t *)vp, Vt + (size_t)j * hd, hd);
      }
    }
    for (int r = 0; r < nblk * ATD_ROWS; r++) {
      /* token t sees positions <= startPos + t */
      const int t = r / hpg;
      const int vis = r < nr ? A->startPos + t - j0 + 1 : 0;
      lim[r] = vis < 0 ? 0 : vis > jn ? jn : vis;
    }
    for (int b = 0; b < nblk; b++) {
      const int rb = b * ATD_ROWS;
      const int nrb = nr - rb < ATD_ROWS ? nr - rb : ATD_ROWS;
      if (lim[rb] == 0 && lim[rb + nrb - 1] == 0) continue; /* rows ascend in position: none sees this tile */
      if (A->rows16) {
        A->rows16(hd, QT + (size_t)rb * hd, nrb, Kt, Vt, jn, lim + rb, A->scale, P, pm + rb, pl + rb, pacc + (size_t)rb * hd);
      } else {
        for (int r = rb; r < rb + nrb; r++) {
          if (lim[r] == 0) continue;
          const float *qv = A->q + ((size_t)(A->rowStart + r / hpg) * A->nHeads + g * hpg + r % hpg) * hd;
          A->K->attn_tile(hd, qv, Kt, Vt, lim[r], A->scale, P, &pm[r], &pl[r], pacc + (size_t)r * hd);
        }
      }
    }
  }
}

/* Chunks per group the split uses at most with nth threads (the scratch is sized for this many). */
static int atd_max_chunks(int nth, int nGroups) {
  const int want = (4 * nth + nGroups - 1) / nGroups;
  return want < 1 ? 1 : want;
}

/* Per-thread floats: K tile, V tile, P, QT of every row block, lim (rounded to 64 bytes). */
static size_t atd_work_floats(int nblk, int headDim) {
  const size_t w = (size_t)2 * ATD_TILE * headDim + (size_t)ATD_ROWS * ATD_TILE + (size_t)nblk * ATD_ROWS * headDim +
                   (size_t)nblk * ATD_ROWS;
  return (w + 15) & ~(size_t)15;
}

size_t cg_attention_split_bytes(int nth, int nTokens, int nHeads, int nGroups, int headDim) {
  const int nblk = (nTokens * (nHeads / nGroups) + ATD_ROWS - 1) / ATD_ROWS;
  const size_t part = (size_t)nblk * ATD_ROWS * (2 + (size_t)headDim);
  return sizeof(float) * (atd_work_floats(nblk, headDim) * (size_t)nth + part * (size_t)atd_max_chunks(nth, nGroups) * (size_t)nGroups);
}

size_t cg_attention_split(cg_ctx *c, const float *q, float *out, const void *kc, const void *vc, int kvType, int rowStart,
                          int nTokens, int startPos, int nHeads, int nGroups, int headDim, float scale) {
  const kernels_t *K = cg_kernels(c);
  const int nth = cg_threads(c) > 0 ? cg_threads(c) : 1;
  atd_ctx A;
  memset(&A, 0, sizeof(A));
  A.K = K;
  A.rows16 = headDim % 16 == 0 ? K->attn_rows16 : NULL;
  if (!A.rows16 && !K->attn_tile) A.rows16 = cg_attn_rows16_scalar;
  A.q = q;
  A.kc = (const uint8_t *)kc;
  A.vc = (const uint8_t *)vc;
  A.kvType = kvType;
  A.goff = cg_kv_group_bytes(kvType, headDim);
  A.pstride = A.goff * (size_t)nGroups;
  A.rowStart = rowStart;
  A.nTokens = nTokens;
  A.startPos = startPos;
  A.nHeads = nHeads;
  A.nGroups = nGroups;
  A.hd = headDim;
  A.hpg = nHeads / nGroups;
  A.nr = nTokens * A.hpg;
  A.scale = scale;
  A.nkeys = startPos + nTokens;
  const int tiles = (A.nkeys + ATD_TILE - 1) / ATD_TILE;
  int nch = (tiles + ATD_MIN_TILES - 1) / ATD_MIN_TILES;
  const int maxch = atd_max_chunks(nth, nGroups);
  if (nch > maxch) nch = maxch;
  if (nch < 1) nch = 1;
  const int tilesPer = (tiles + nch - 1) / nch;
  A.chunkKeys = tilesPer * ATD_TILE;
  A.nch = (A.nkeys + A.chunkKeys - 1) / A.chunkKeys;
  const int nblk = (A.nr + ATD_ROWS - 1) / ATD_ROWS;
  A.work_floats = atd_work_floats(nblk, headDim);
  A.part_floats = (size_t)nblk * ATD_ROWS * (2 + (size_t)headDim);
  const size_t bytes = cg_attention_split_bytes(nth, nTokens, nHeads, nGroups, headDim);
  float *s = (float *)cg_scratch(c, bytes);
  if (!s) return (size_t)-1;
  A.work = s;
  A.part = s + A.work_floats * (size_t)nth;
  const int units = nGroups * A.nch;
  /* Short contexts are less work than a dispatch is worth on a busy machine. */
  const double work = (double)nHeads * nTokens * A.nkeys * headDim;
  if (work < 262144.0 || units == 1)
    for (int u = 0; u < units; u++) atd_task(&A, u, 0);
  else
    cg_run(c, atd_task, &A, units);
  /* Merge the chunks of each group, in chunk order. */
  for (int g = 0; g < nGroups; g++) {
    for (int r = 0; r < A.nr; r++) {
      float M = -INFINITY;
      for (int ch = 0; ch < A.nch; ch++) {
        const float mc = A.part[(size_t)(g * A.nch + ch) * A.part_floats + r];
        if (mc > M) M = mc;
      }
      float *o = out + ((size_t)(rowStart + r / A.hpg) * nHeads + g * A.hpg + r % A.hpg) * headDim;
      for (int i = 0; i < headDim; i++) o[i] = 0.0f;
      if (M == -INFINITY) continue;
      float den = 0.0f;
      for (int ch = 0; ch < A.nch; ch++) {
        const float *pm = A.part + (size_t)(g * A.nch + ch) * A.part_floats;
        if (pm[r] == -INFINITY) continue;
        const float w = expf(pm[r] - M);
        den += w * pm[nblk * ATD_ROWS + r];
        const float *pa = pm + 2 * (size_t)nblk * ATD_ROWS + (size_t)r * headDim;
        for (int i = 0; i < headDim; i++) o[i] += w * pa[i];
      }
      const float inv = den > 0.0f ? 1.0f / den : 0.0f;
      for (int i = 0; i < headDim; i++) o[i] *= inv;
    }
  }
  return bytes;
}

/*
 * Batched decode (see batch_ops.h).
 *
 * The q4_0 matmul for 2-8 rows: the 4-row kernel with a software prefetch of the weight stream
 * (batch_kernels_x86.inc) and, on AVX-512 VNNI, two groups (16 weight rows) per 512-bit kernel;
 * a chunk of 4 groups (32 weight rows) per pool claim, and for 5-8 rows both 4-row halves run on
 * a group one after the other, so the second reads its weights from L1/L2 instead of reading the
 * whole chunk twice. The plain 4-row kernel out of cache ran at the sum of its compute and memory
 * times (2048x6848, 1 thread: 0.73 ms against 0.33 for one row); prefetched, on 512-bit registers,
 * 4 rows cost 1.05-1.15x one row (0.34-0.38 ms), 8 rows about twice 4 in cache.
 *
 * The batched layer is cg_layer_kv over several sequences: one call from JavaScript per layer for
 * the whole step, and the decode rows' attention (one new token of each sequence against its own
 * cache) as one pool job of sequences x KV groups instead of one sequence after another.
 */
#include "batch_ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

typedef void (*bk4_fn)(int nb, const uint8_t *w, const block_qa *a, size_t astride, float *out);
typedef void (*bk4x2_fn)(int nb, const uint8_t *w, size_t gstride, const block_qa *a, size_t astride, float *out);

#if defined(__x86_64__) || defined(_M_X64)
void cg_batch_q4_4_avx2(int nb, const uint8_t *w, const block_qa *a, size_t astride, float *out);
void cg_batch_q4_4_avx512(int nb, const uint8_t *w, const block_qa *a, size_t astride, float *out);
void cg_batch_q4_4x2_avx512(int nb, const uint8_t *w, size_t gstride, const block_qa *a, size_t astride, float *out);
#endif

/* The kernel matching the context's kernel table (the same integer and float steps as its
 * x8_q4_0_4), or NULL when there is none for this ISA. */
static bk4_fn batch_kernel(const kernels_t *K) {
#if defined(__x86_64__) || defined(_M_X64)
  if (K == &kernels_avx512) return cg_batch_q4_4_avx512;
  if (K == &kernels_avx2) return cg_batch_q4_4_avx2;
#endif
  (void)K;
  return NULL;
}

/* The two-group (16 rows, 512-bit) kernel where there is one, else NULL. */
static bk4x2_fn batch_kernel_x2(const kernels_t *K) {
#if defined(__x86_64__) || defined(_M_X64)
  if (K == &kernels_avx512) return cg_batch_q4_4x2_avx512;
#endif
  (void)K;
  return NULL;
}

/* Groups of 8 weight rows per pool claim. */
#define BM_CHUNK 4

typedef struct {
  const kernels_t *K;
  bk4_fn k4;
  bk4x2_fn k4x2;
  int rows, n, nb, groups, gchunks;
  /* 4-row blocks (the last one padded when n % 4 is 2 or 3), and whether row n-1 runs alone (n % 4 == 1) */
  int nt4, one;
  size_t rec, row_bytes;
  const uint8_t *w;
  float *out;
  const float *bias;
  const block_qa *xq;
} bm_ctx;

static inline void bm_put(const bm_ctx *m, int t, int r, float v) {
  /* The same expression as ops.c's put(), so a row matches the unbatched matmul to the bit. */
  m->out[(size_t)t * m->rows + r] = v + (m->bias ? m->bias[r] : 0.0f);
}

static void bm_task(void *p, int chunk, int tid) {
  (void)tid;
  const bm_ctx *m = (const bm_ctx *)p;
  const int nb = m->nb;
  if (chunk >= m->gchunks) {
    /* Rows past the last full group, in ggml's layout. */
    for (int r = m->groups * X8; r < m->rows; r++) {
      const block_q4_0 *wr = (const block_q4_0 *)(m->w + (size_t)r * m->row_bytes);
      for (int t = 0; t < m->n; t++) bm_put(m, t, r, m->K->dot_q4_0(nb, wr, m->xq + (size_t)t * nb));
    }
    return;
  }
  const int g0 = chunk * BM_CHUNK;
  const int g1 = g0 + BM_CHUNK < m->groups ? g0 + BM_CHUNK : m->groups;
  float fin[2 * 4 * X8];
  for (int g = g0; g < g1; g++) {
    const uint8_t *wg = m->w + (size_t)g * m->rec;
    if (m->k4x2 && g + 1 < g1) {
      for (int tb = 0; tb < m->nt4; tb++) {
        m->k4x2(nb, wg, m->rec, m->xq + (size_t)tb * 4 * nb, (size_t)nb, fin);
        for (int k = 0; k < 4; k++) {
          const int t = tb * 4 + k;
          if (t >= m->n || (m->one && t == m->n - 1)) break;
          for (int r = 0; r < X8; r++) {
            bm_put(m, t, g * X8 + r, fin[k * X8 + r]);
            bm_put(m, t, (g + 1) * X8 + r, fin[4 * X8 + k * X8 + r]);
          }
        }
      }
      if (m->one)
        for (int h = 0; h < 2; h++) {
          m->K->x8_q4_0_1(nb, wg + (size_t)h * m->rec, m->xq + (size_t)(m->n - 1) * nb, fin);
          for (int r = 0; r < X8; r++) bm_put(m, m->n - 1, (g + h) * X8 + r, fin[r]);
        }
      g++;
      continue;
    }
    for (int tb = 0; tb < m->nt4; tb++) {
      m->k4(nb, wg, m->xq + (size_t)tb * 4 * nb, (size_t)nb, fin);
      for (int k = 0; k < 4; k++) {
        const int t = tb * 4 + k;
        if (t >= m->n || (m->one && t == m->n - 1)) break;
        for (int r = 0; r < X8; r++) bm_put(m, t, g * X8 + r, fin[k * X8 + r]);
      }
    }
    if (m->one) {
      m->K->x8_q4_0_1(nb, wg, m->xq + (size_t)(m->n - 1) * nb, fin);
      for (int r = 0; r < X8; r++) bm_put(m, m->n - 1, g * X8 + r, fin[r]);
    }
  }
}

int cg_batch_matmul_q4(cg_ctx *c, int rows, int cols, const uint8_t *w, const float *x, int n, float *out, const float *bias) {
  bm_ctx m;
  memset(&m, 0, sizeof(m));
  m.K = cg_kernels(c);
  m.k4 = batch_kernel(m.K);
  m.k4x2 = batch_kernel_x2(m.K);
  if (n < 2 || n > CG_BATCH_MAX_ROWS || cols % QK != 0 || !m.k4) return -1;
  m.rows = rows;
  m.n = n;
  m.nb = cols / QK;
  m.groups = rows / X8;
  m.rec = (size_t)m.nb * sizeof(block_q4_0x8);
  m.row_bytes = cg_row_bytes(WT_Q4_0, cols);
  m.w = w;
  m.out = out;
  m.bias = bias;
  m.one = n % 4 == 1;
  m.nt4 = n / 4 + (n % 4 >= 2 ? 1 : 0);
  const int nq = m.nt4 * 4 > n ? m.nt4 * 4 : n;
  block_qa *xq = (block_qa *)cg_scratch(c, (size_t)nq * m.nb * sizeof(block_qa));
  if (!xq) return 0;
  m.xq = xq;
  for (int t = 0; t < n; t++) m.K->quantize_qa(x + (size_t)t * cols, xq + (size_t)t * m.nb, cols);
  /* Padding rows are copies of the last one: computed and dropped. */
  for (int t = n; t < nq; t++) memcpy(xq + (size_t)t * m.nb, xq + (size_t)(n - 1) * m.nb, (size_t)m.nb * sizeof(block_qa));
  m.gchunks = (m.groups + BM_CHUNK - 1) / BM_CHUNK;
  cg_run(c, bm_task, &m, m.gchunks + (rows % X8 != 0 ? 1 : 0));
  return 1;
}

/* ---------------------------------------------------------------- batched attention */

/* Attention of every sequence of the step, one by one through cg_attention_kv: one-token steps take
 * its split-keys path (both cores on one sequence's long cache), so a sequence's result is the same
 * bits batched or alone. */
static size_t batch_attention(cg_ctx *c, const float *q, const float *k, const float *v, float *out, const cg_batch_seq *seqs,
                              int nseqs, int nHeads, int nGroups, int headDim, float scale) {
  size_t bytes = 0;
  for (int s = 0; s < nseqs; s++) {
    const cg_batch_seq *sq = &seqs[s];
    const size_t b = cg_attention_kv(c, q, k, v, out, sq->kc, sq->vc, sq->kvType, sq->rowStart, sq->nTokens, sq->startPos, nHeads,
                                     nGroups, headDim, scale);
    if (b == (size_t)-1) return b;
    if (b > bytes) bytes = b;
  }
  return bytes;
}

/* ---------------------------------------------------------------- one decoder layer, all sequences */

size_t cg_batch_layer_kv(cg_ctx *c, float *x, int n, const cg_layer_weights *L, const cg_batch_seq *seqs, int nseqs,
                         const float *positions) {
  const int H = L->qkv.cols;
  const int nHeads = L->nHeads, nGroups = L->nGroups, headDim = L->headDim, rotaryDim = L->rotaryDim, ffn = L->ffn;
  const int qDim = nHeads * headDim, kvDim = nGroups * headDim, qkvDim = qDim + 2 * kvDim;
  /* The buffers of cg_layer_kv (xb | qkv | q | k | v | att | hb | hb2). */
  const size_t need = (size_t)n * ((size_t)H + qkvDim + qDim + 2 * (size_t)kvDim + qDim + 3 * (size_t)ffn) + 64;
  float *xb = cg_layer_buffer(c, need);
  if (!xb) return (size_t)-1;
  float *qkv = xb + (size_t)n * H;
  float *qs = qkv + (size_t)n * qkvDim;
  float *ks = qs + (size_t)n * qDim;
  float *vs = ks + (size_t)n * kvDim;
  float *att = vs + (size_t)n * kvDim;
  float *hb = att + (size_t)n * qDim;
  float *hb2 = hb + (size_t)n * 2 * ffn;

  cg_rmsnorm(c, x, L->input_norm, n, H, L->eps, xb);
  if (!cg_matmul(c, L->qkv.type, L->qkv.rows, L->qkv.cols, L->qkv.w, xb, n, qkv, L->qkv_bias)) return (size_t)-1;
  for (int t = 0; t < n; t++) {
    const float *row = qkv + (size_t)t * qkvDim;
    memcpy(qs + (size_t)t * qDim, row, sizeof(float) * (size_t)qDim);
    memcpy(ks + (size_t)t * kvDim, row + qDim, sizeof(float) * (size_t)kvDim);
    memcpy(vs + (size_t)t * kvDim, row + qDim + kvDim, sizeof(float) * (size_t)kvDim);
  }
  if (!cg_rope(c, qs, n, nHeads, headDim, rotaryDim, positions, L->ropeBase) ||
      !cg_rope(c, ks, n, nGroups, headDim, rotaryDim, positions, L->ropeBase))
    return (size_t)-1;
  const size_t att_bytes = batch_attention(c, qs, ks, vs, att, seqs, nseqs, nHeads, nGroups, headDim, L->scale);
  if (att_bytes == (size_t)-1) return att_bytes;
  if (!cg_matmul(c, L->dense.type, L->dense.rows, L->dense.cols, L->dense.w, att, n, xb, NULL)) return (size_t)-1;
  cg_add(c, x, xb, (size_t)n * H);
  cg_rmsnorm(c, x, L->post_norm, n, H, L->eps, xb);
  if (!cg_matmul(c, L->up.type, L->up.rows, L->up.cols, L->up.w, xb, n, hb, NULL)) return (size_t)-1;
  cg_swiglu(c, hb, n, ffn, hb2);
  if (!cg_matmul(c, L->down.type, L->down.rows, L->down.cols, L->down.w, hb2, n, xb, NULL)) return (size_t)-1;
  cg_add(c, x, xb, (size_t)n * H);
  return att_bytes;
}

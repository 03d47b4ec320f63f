/*
 * The backend's operations: a matmul driver around the per-ISA dot products (quantizing the
 * activations to 8 bits first for q8_0/q4_0 weights), elementwise ops, and FlashAttention over an
 * f16 KV cache. Work is split over the pool by atomic chunk counters so a descheduled thread on a
 * busy machine does not hold the others up.
 */
#define _GNU_SOURCE
#include "ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "attn4.h"
#include "attn_bf16.h"
#include "attn_decode.h"
#include "gemm.h"
#include "gemm_kq.h"
#include "kq16.h"
#include "pool.h"
#include "batch_ops.h"
/* k-quant row sizes and the embedding lookup's dequantization (the dot products are in the kernel tables) */
#include "kernels_kquants.inc"

/*
 * Everything an op needs besides its arguments: one per backend instance, so two models (or two
 * backends with different thread counts or kernel variants) in one process never share a pool,
 * a scratch buffer or a cached table. Callers serialise calls on one context (addon.c holds its lock).
 */
struct cg_ctx {
  pool_t *pool;
  /* The thread count asked for, so a pool released by cg_ctx_release() comes back the same size. */
  int requested_threads;
  const kernels_t *k;
  /* Decode matmul: groups of 8 rows per claim, and whether the 4-group kernels run (see cg_ctx_create). */
  int decode_chunk, q4_g4, q8_g4;
  /* Decode matmul of k-quant and q4_1/q5_0/q5_1 weights: the four-row kernels where the table has them. */
  int kq_r4;
  /* k-quant weights in the x16 layout (kq16.h) where the table reads it; CHATGLM_KQ16=0 keeps ggml's. */
  int kq16;
  /* x16 decode: groups of 16 rows per claim, 0 for kq16_span_for()'s choice (CHATGLM_KQ16_SPAN sets it, for measuring) */
  int kq16_span;
  /* Grow-only scratch of matmul's quantized activations and attention's tiles. */
  void *scratch;
  size_t scratch_size;
  /* Grow-only buffers of the fused layer, apart from scratch which its matmuls and attention use. */
  float *layer_buf;
  size_t layer_buf_size;
  /* The last RoPE cos/sin table and what it was made for (see rope_table). */
  double *rope_cs;
  float *rope_pos;
  size_t rope_cap;
  int rope_n, rope_dim;
  double rope_base;
};

static const kernels_t *best_kernels(void) {
#if defined(__x86_64__) || defined(_M_X64)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vnni"))
      return &kernels_avx512;
    return &kernels_avx2;
  }
#endif
#if defined(__aarch64__)
  return cg_neon_dotprod() ? &kernels_neon_dot : &kernels_neon;
#endif
  return &kernels_scalar;
}

int cg_available_isas(const char **names, int max) {
  int n = 0;
  if (n < max) names[n++] = kernels_scalar.name;
#if defined(__x86_64__) || defined(_M_X64)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    if (n < max) names[n++] = kernels_avx2.name;
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vnni") && n < max)
      names[n++] = kernels_avx512.name;
  }
#endif
#if defined(__aarch64__)
  if (n < max) names[n++] = kernels_neon.name;
  if (cg_neon_dotprod() && n < max) names[n++] = kernels_neon_dot.name;
#endif
  return n;
}

/* The kernel table of that name if this CPU runs it, else NULL. */
static const kernels_t *kernels_named(const char *name) {
  const char *names[8];
  const int n = cg_available_isas(names, 8);
  for (int i = 0; i < n; i++) {
    if (strcmp(names[i], name) != 0) continue;
    if (strcmp(name, kernels_scalar.name) == 0) return &kernels_scalar;
#if defined(__x86_64__) || defined(_M_X64)
    if (strcmp(name, kernels_avx2.name) == 0) return &kernels_avx2;
    if (strcmp(name, kernels_avx512.name) == 0) return &kernels_avx512;
#endif
#if defined(__aarch64__)
    if (strcmp(name, kernels_neon.name) == 0) return &kernels_neon;
    if (strcmp(name, kernels_neon_dot.name) == 0) return &kernels_neon_dot;
#endif
  }
  return NULL;
}

static int online_cores(void) {
  const long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)n : 1;
}

cg_ctx *cg_ctx_create(int threads, const char *isa) {
  const kernels_t *k = isa && *isa ? kernels_named(isa) : best_kernels();
  if (!k) return NULL;
  cg_ctx *c = (cg_ctx *)calloc(1, sizeof(cg_ctx));
  if (!c) return NULL;
  c->k = k;
  c->requested_threads = threads > 0 ? threads : online_cores();
  c->rope_n = -1;
  c->rope_dim = -1;
  /*
   * Decode matmul settings, read from the environment so they can be compared without a rebuild:
   * CHATGLM_DECODE_CHUNK groups of 8 rows per claim (4; clamped so a claim never overflows an int),
   * and the 4-group kernels off with CHATGLM_Q4_G4=0 / on with CHATGLM_Q8_G4=1. They are off for
   * q8_0 because a 13696x2048 q8_0 decode matmul ran at 50-52 GB/s with them against 59-76 GB/s
   * without (2 threads, L3-sized), while q4_0 gained (60-85 vs 54-59; BENCHMARKS.md).
   */
  c->decode_chunk = 4;
  c->q4_g4 = 1;
  c->q8_g4 = 0;
  const char *dc = getenv("CHATGLM_DECODE_CHUNK");
  if (dc && atoi(dc) > 0) c->decode_chunk = atoi(dc) > 256 ? 256 : atoi(dc);
  const char *g4 = getenv("CHATGLM_Q4_G4");
  if (g4 && *g4) c->q4_g4 = atoi(g4) != 0;
  const char *g8 = getenv("CHATGLM_Q8_G4");
  if (g8 && *g8) c->q8_g4 = atoi(g8) != 0;
  /* The four-row k-quant / q4_1-q5_1 decode kernels (kq_dot_r4, lq_dot_r4) only with
   * CHATGLM_KQ_ROWS4=1: from cache they are 15-25% faster per byte, but streaming from DRAM they
   * read slower than one row at a time (quiet machine, 1.7B-shape Q4_K_M decode 14.6 vs 17.0
   * tok/s; BENCHMARKS.md). They serve the types and tables without the x16 layout (kq16.h). */
  const char *r4 = getenv("CHATGLM_KQ_ROWS4");
  c->kq_r4 = r4 && atoi(r4) != 0;
  const char *x16 = getenv("CHATGLM_KQ16");
  c->kq16 = !(x16 && *x16 && atoi(x16) == 0);
  const char *span = getenv("CHATGLM_KQ16_SPAN");
  c->kq16_span = span && atoi(span) > 0 ? atoi(span) : 0;
  c->pool = pool_create(c->requested_threads);
  if (!c->pool) {
    free(c);
    return NULL;
  }
  return c;
}

void cg_ctx_release(cg_ctx *c) {
  if (c->pool) pool_destroy(c->pool);
  c->pool = NULL;
  free(c->scratch);
  c->scratch = NULL;
  c->scratch_size = 0;
  free(c->layer_buf);
  c->layer_buf = NULL;
  c->layer_buf_size = 0;
  free(c->rope_cs);
  free(c->rope_pos);
  c->rope_cs = NULL;
  c->rope_pos = NULL;
  c->rope_cap = 0;
  c->rope_n = -1;
}

void cg_ctx_destroy(cg_ctx *c) {
  if (!c) return;
  cg_ctx_release(c);
  free(c);
}

int cg_threads(const cg_ctx *c) { return c->pool ? pool_threads(c->pool) : c->requested_threads; }
const kernels_t *cg_kernels(const cg_ctx *c) { return c->k; }

/* 0 when a released context cannot start its pool again. */
static int run(cg_ctx *c, pool_task_fn fn, void *task, int nchunks) {
  if (!c->pool) c->pool = pool_create(c->requested_threads);
  if (!c->pool) {
    for (int i = 0; i < nchunks; i++) fn(task, i, 0);
    return 0;
  }
  pool_run(c->pool, fn, task, nchunks);
  return 1;
}

size_t cg_row_bytes(int type, int cols) {
  switch (type) {
    case WT_F32: return (size_t)cols * 4;
    case WT_F16:
    case WT_BF16: return (size_t)cols * 2;
    case WT_Q8_0: return (size_t)(cols / QK) * sizeof(block_q8_0);
    case WT_Q4_0: return (size_t)(cols / QK) * sizeof(block_q4_0);
    case WT_Q2_K:
    case WT_Q3_K:
    case WT_Q4_K:
    case WT_Q5_K:
    case WT_Q6_K: return (size_t)(cols / QK_K) * kq_block_bytes(type);
    case WT_Q4_1:
    case WT_Q5_0:
    case WT_Q5_1: return (size_t)(cols / QK) * lq_block_bytes(type);
    default: return 0;
  }
}

static void *scratch(cg_ctx *c, size_t bytes) {
  if (bytes > c->scratch_size) {
    free(c->scratch);
    c->scratch = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    c->scratch_size = c->scratch ? bytes : 0;
  }
  return c->scratch;
}

/* For batch_ops.c: the pool, the grow-only scratch and the fused layer's buffer of this context. */
void cg_run(cg_ctx *c, pool_task_fn fn, void *task, int nchunks) { (void)run(c, fn, task, nchunks); }

/* run() with `per` consecutive chunks per claim, so a thread reads a longer stretch of memory. */
typedef struct {
  pool_task_fn fn;
  void *task;
  int per, n;
} span_ctx;

static void span_task(void *c, int claim, int tid) {
  const span_ctx *s = (const span_ctx *)c;
  const int a = claim * s->per, b = a + s->per < s->n ? a + s->per : s->n;
  for (int i = a; i < b; i++) s->fn(s->task, i, tid);
}

/*
 * Groups of 16 rows per claim for an x16 decode matmul: about four claims per thread, so each thread
 * streams long runs of the matrix. One group per claim left the two threads reading alternate
 * 18-27 KiB pieces, and the record prefetch ran into the other thread's piece: 1.7B-shape Q4_K_M
 * decode 24 tok/s at 2 threads, against 41-44 with 16 or 64 groups per claim (BENCHMARKS.md).
 */
static int kq16_span_for(const cg_ctx *c, int groups) {
  if (c->kq16_span > 0) return c->kq16_span;
  const int per = groups / (4 * cg_threads(c));
  return per > 1 ? per : 1;
}

static void run_spans(cg_ctx *c, pool_task_fn fn, void *task, int nchunks, int per) {
  if (per <= 1) {
    run(c, fn, task, nchunks);
    return;
  }
  span_ctx s = {fn, task, per, nchunks};
  run(c, span_task, &s, (nchunks + per - 1) / per);
}
void *cg_scratch(cg_ctx *c, size_t bytes) { return scratch(c, bytes); }
float *cg_layer_buffer(cg_ctx *c, size_t floats) {
  if (floats > c->layer_buf_size) {
    free(c->layer_buf);
    c->layer_buf = (float *)aligned_alloc(64, ((floats * sizeof(float)) + 63) & ~(size_t)63);
    c->layer_buf_size = c->layer_buf ? floats : 0;
  }
  return c->layer_buf;
}

/* ---------------------------------------------------------------- weight memory */

/*
 * Decode streams every weight byte once per token (GBs), so with 4 KiB pages it also walks a page
 * table entry every 4 KiB. Linux gives transparent huge pages to madvise(MADV_HUGEPAGE) regions
 * when THP is `madvise` (the usual default), which cuts those TLB misses 512-fold. The region
 * starts on a 2 MiB boundary so every whole 2 MiB of it can be a huge page; its length is only
 * rounded to 4 KiB, so the tail uses small pages and no memory is wasted (peak RSS matters too).
 */
#define CG_HUGE (2u << 20)

void *cg_alloc_weights(size_t bytes, size_t *mapped) {
  *mapped = 0;
#if defined(__linux__)
  if (bytes == 0) return NULL;
  const size_t len = (bytes + 4095) & ~(size_t)4095;
  const size_t span = len + CG_HUGE;
  uint8_t *p = (uint8_t *)mmap(NULL, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return NULL;
  uint8_t *a = (uint8_t *)(((uintptr_t)p + CG_HUGE - 1) & ~(uintptr_t)(CG_HUGE - 1));
  if (a > p) munmap(p, (size_t)(a - p));
  const size_t tail = (size_t)(p + span - (a + len));
  if (tail > 0) munmap(a + len, tail);
#ifdef MADV_HUGEPAGE
  /* Advice only: without THP the memory is still good, just in small pages. */
  if (len >= CG_HUGE) madvise(a, len, MADV_HUGEPAGE);
#endif
  *mapped = len;
  return a;
#else
  (void)bytes;
  return NULL;
#endif
}

void cg_free_weights(void *p, size_t mapped) {
#if defined(__linux__)
  if (p && mapped) munmap(p, mapped);
#else
  (void)p;
  (void)mapped;
#endif
}

/* ---------------------------------------------------------------- repack */

static size_t x8_record(int type) { return type == WT_Q4_0 ? sizeof(block_q4_0x8) : sizeof(block_q8_0x8); }

/* Block i of 8 ggml rows -> one x8 record (d = the 8 scales, qs = chunks of 4 bytes per row). */
static void x8_pack(int type, const uint8_t *const rows[X8], int i, uint8_t *rec) {
  for (int r = 0; r < X8; r++) {
    if (type == WT_Q4_0) {
      const block_q4_0 *b = (const block_q4_0 *)rows[r] + i;
      block_q4_0x8 *o = (block_q4_0x8 *)rec;
      memcpy(&o->d[r], &b->d, 2);
      for (int c = 0; c < 4; c++) memcpy(&o->qs[c][4 * r], b->qs + 4 * c, 4);
    } else {
      const block_q8_0 *b = (const block_q8_0 *)rows[r] + i;
      block_q8_0x8 *o = (block_q8_0x8 *)rec;
      memcpy(&o->d[r], &b->d, 2);
      for (int c = 0; c < 8; c++) memcpy(&o->qs[c][4 * r], b->qs + 4 * c, 4);
    }
  }
}

int cg_kq16(const cg_ctx *c, int type) {
  const cg_gemm_kq *g = c->k->gemm_kq;
  const cg_gemm_lq *l = c->k->gemm_lq;
  if (WT_IS_LEGACY(type)) return c->kq16 && l && l->x16_types && l->x16_types(type);
  return c->kq16 && g && g->x16_types && g->x16_types(type);
}

void cg_repack(int type, int rows, int cols, const uint8_t *src, uint8_t *dst) {
  if (cg_kq16_type(type)) {
    cg_kq16_repack(type, rows, cols, src, dst);
    return;
  }
  const int nb = cols / QK;
  const size_t rb = cg_row_bytes(type, cols);
  const int groups = rows / X8;
  const size_t rec = x8_record(type);
  for (int g = 0; g < groups; g++) {
    const uint8_t *group[X8];
    for (int r = 0; r < X8; r++) group[r] = src + (size_t)(g * X8 + r) * rb;
    for (int i = 0; i < nb; i++) x8_pack(type, group, i, dst + ((size_t)g * nb + i) * rec);
  }
  /* Rows past the last group keep ggml's layout. */
  memcpy(dst + (size_t)groups * X8 * rb, src + (size_t)groups * X8 * rb, (size_t)(rows - groups * X8) * rb);
}

/* Row r of a repacked matrix back in ggml's row layout (for embedding lookups). */
static void x8_row(int type, int cols, const uint8_t *w, int rows, int r, uint8_t *out) {
  const int nb = cols / QK;
  const size_t rb = cg_row_bytes(type, cols);
  const int groups = rows / X8;
  if (r >= groups * X8) {
    memcpy(out, w + (size_t)r * rb, rb);
    return;
  }
  const size_t rec = x8_record(type);
  const int g = r / X8, lane = r % X8;
  for (int i = 0; i < nb; i++) {
    const uint8_t *o = w + ((size_t)g * nb + i) * rec;
    if (type == WT_Q4_0) {
      const block_q4_0x8 *x = (const block_q4_0x8 *)o;
      block_q4_0 *b = (block_q4_0 *)out + i;
      memcpy(&b->d, &x->d[lane], 2);
      for (int c = 0; c < 4; c++) memcpy(b->qs + 4 * c, &x->qs[c][4 * lane], 4);
    } else {
      const block_q8_0x8 *x = (const block_q8_0x8 *)o;
      block_q8_0 *b = (block_q8_0 *)out + i;
      memcpy(&b->d, &x->d[lane], 2);
      for (int c = 0; c < 8; c++) memcpy(b->qs + 4 * c, &x->qs[c][4 * lane], 4);
    }
  }
}

/* ---------------------------------------------------------------- matmul */

typedef struct {
  const kernels_t *K;
  int type, rows, cols, n, nb, chunk;
  /* use the 4-group decode kernels for this type */
  int g4;
  const uint8_t *w;
  const float *x;
  float *out;
  const float *bias;
  block_qa *xq;
  size_t row_bytes;
  /* quantized: groups of 8 rows per chunk, and where the leftover rows start */
  int groups, gchunks;
  /* tokens run four at a time (>= n when the last two or three are padded with copies; see cg_matmul) */
  int n4;
  /* prefill GEMM (gemm.h), or NULL */
  cg_gemm_fn gemm;
} mm_ctx;

static void mm_quantize_task(void *c, int t, int tid) {
  (void)tid;
  mm_ctx *m = (mm_ctx *)c;
  m->K->quantize_qa(m->x + (size_t)t * m->cols, m->xq + (size_t)t * m->nb, m->cols);
}

static inline void put(mm_ctx *m, int t, int r, float v) {
  m->out[(size_t)t * m->rows + r] = v + (m->bias ? m->bias[r] : 0.0f);
}

/*
 * Prefill: groups [g0, g1) against the tokens in whole tiles of 8, two groups per GEMM call (an odd
 * last group through the 4-token kernel). Tiles outside, groups inside: the chunk's weights stay in
 * L2 while the token tiles pass. Returns how many tokens it did.
 */
static int mm_gemm_tiles(mm_ctx *m, int g0, int g1) {
  const int nb = m->nb, n8 = m->n & ~7;
  const size_t rec = (size_t)nb * x8_record(m->type);
  float tmp[4 * X8];
  for (int t = 0; t < n8; t += 8) {
    const block_qa *a = m->xq + (size_t)t * nb;
    int g = g0;
    for (; g + 2 <= g1; g += 2)
      m->gemm(nb, m->w + (size_t)g * rec, m->w + (size_t)(g + 1) * rec, a, (size_t)nb, m->bias ? m->bias + g * X8 : NULL,
              m->out + (size_t)t * m->rows + g * X8, (size_t)m->rows);
    for (; g < g1; g++)
      for (int h = 0; h < 8; h += 4) {
        if (m->type == WT_Q4_0) m->K->x8_q4_0_4(nb, m->w + (size_t)g * rec, a + (size_t)h * nb, (size_t)nb, tmp);
        else m->K->x8_q8_0_4(nb, m->w + (size_t)g * rec, a + (size_t)h * nb, (size_t)nb, tmp);
        for (int k = 0; k < 4; k++)
          for (int r = 0; r < X8; r++) put(m, t + h + k, g * X8 + r, tmp[k * X8 + r]);
      }
  }
  return n8;
}

/* Groups [g0, g1) of 8 rows (x8 layout) against all tokens. */
static void mm_groups(mm_ctx *m, int g0, int g1) {
  const kernels_t *K = m->K;
  const int n = m->n, nb = m->nb;
  const int q4 = m->type == WT_Q4_0;
  const size_t rec = (size_t)nb * x8_record(m->type);
  float tmp[4 * X8];
  int t = m->gemm ? mm_gemm_tiles(m, g0, g1) : 0;
  /* Four tokens share each decoded weight record; the chunk's rows stay in cache across tokens.
   * Padded tokens (t + k >= n) are computed and dropped: every row's result is the same whichever
   * kernel computes it, so this only saves decoding the weights again for two or three tokens. */
  for (; t + 4 <= m->n4; t += 4) {
    const block_qa *a = m->xq + (size_t)t * nb;
    for (int g = g0; g < g1; g++) {
      const uint8_t *wg = m->w + (size_t)g * rec;
      if (q4) K->x8_q4_0_4(nb, wg, a, (size_t)nb, tmp);
      else K->x8_q8_0_4(nb, wg, a, (size_t)nb, tmp);
      for (int k = 0; k < 4 && t + k < n; k++)
        for (int r = 0; r < X8; r++) put(m, t + k, g * X8 + r, tmp[k * X8 + r]);
    }
  }
  for (; t < n; t++) {
    const block_qa *a = m->xq + (size_t)t * nb;
    int g = g0;
    void (*g4)(int, const uint8_t *, size_t, const block_qa *, float *) = q4 ? K->x8_q4_0_1g4 : K->x8_q8_0_1g4;
    if (g4 && m->g4)
      for (; g + 4 <= g1; g += 4) {
        g4(nb, m->w + (size_t)g * rec, rec, a, tmp);
        for (int r = 0; r < 4 * X8; r++) put(m, t, g * X8 + r, tmp[r]);
      }
    for (; g < g1; g++) {
      const uint8_t *wg = m->w + (size_t)g * rec;
      if (q4) K->x8_q4_0_1(nb, wg, a, tmp);
      else K->x8_q8_0_1(nb, wg, a, tmp);
      for (int r = 0; r < X8; r++) put(m, t, g * X8 + r, tmp[r]);
    }
  }
}

/* Leftover rows (rows % 8) in ggml's layout. */
static void mm_leftover(mm_ctx *m) {
  const kernels_t *K = m->K;
  const int n = m->n, nb = m->nb;
  const int q4 = m->type == WT_Q4_0;
  for (int r = m->groups * X8; r < m->rows; r++) {
    const uint8_t *wr = m->w + (size_t)r * m->row_bytes;
    for (int t = 0; t < n; t++) {
      const block_qa *a = m->xq + (size_t)t * nb;
      put(m, t, r, q4 ? K->dot_q4_0(nb, (const block_q4_0 *)wr, a) : K->dot_q8_0(nb, (const block_q8_0 *)wr, a));
    }
  }
}

/* Quantized weights: a chunk is `chunk` groups of 8 rows, or (the last one) the leftover rows. */
static void mm_q_task(void *c, int chunk, int tid) {
  (void)tid;
  mm_ctx *m = (mm_ctx *)c;
  if (chunk < m->gchunks) {
    const int g0 = chunk * m->chunk;
    mm_groups(m, g0, g0 + m->chunk < m->groups ? g0 + m->chunk : m->groups);
  } else {
    mm_leftover(m);
  }
}

/* Float weights: a chunk is `chunk` rows against all tokens. */
static void mm_f_task(void *c, int chunk, int tid) {
  (void)tid;
  mm_ctx *m = (mm_ctx *)c;
  const kernels_t *K = m->K;
  const int rows = m->rows, n = m->n, cols = m->cols;
  const int r0 = chunk * m->chunk;
  const int r1 = r0 + m->chunk < rows ? r0 + m->chunk : rows;
  for (int t = 0; t < n; t++) {
    const float *xt = m->x + (size_t)t * cols;
    for (int r = r0; r < r1; r++) {
      const uint8_t *wr = m->w + (size_t)r * m->row_bytes;
      float v;
      if (m->type == WT_F32) v = K->dot_f32(cols, (const float *)wr, xt);
      else if (m->type == WT_F16) v = K->dot_f16(cols, (const uint16_t *)wr, xt);
      else v = K->dot_bf16(cols, (const uint16_t *)wr, xt);
      put(m, t, r, v);
    }
  }
}

/* An x16 kernel's results (out[t * 16 + j]: token t0 + t, row r0 + j) into the output, for nt tokens. */
static void put_group(mm_ctx *m, int t0, int nt, int r0, const float *t16) {
  for (int t = 0; t < nt; t++)
    for (int j = 0; j < KQ16_ROWS; j++) put(m, t0 + t, r0 + j, t16[t * KQ16_ROWS + j]);
}

/*
 * k-quant weights (kernels_kquants.inc): activations to q8_K as ggml does, then chunks of 16 weight
 * rows, each row unpacked once per 8 tokens. Rows stay in ggml's layout (no repacking).
 */
typedef struct {
  mm_ctx *m;
  const block_q8_K *xk;
  int nbk;
  void (*dot)(int, int, const uint8_t *, const block_q8_K *, size_t, int, float *);
  void (*dot_r4)(int, int, const uint8_t *, size_t, const block_q8_K *, float *);
  void (*quant)(const float *, block_q8_K *, int);
  /* weights in the x16 layout (cg_kq16): its whole groups go through the table's x16 kernels */
  const cg_gemm_kq *x16;
  int x16_rows;
} mmk_ctx;

/* a chunk is one x16 group */
#define MMK_ROWS KQ16_ROWS

static void mmk_quantize_task(void *c, int t, int tid) {
  (void)tid;
  mmk_ctx *k = (mmk_ctx *)c;
  k->quant(k->m->x + (size_t)t * k->m->cols, (block_q8_K *)k->xk + (size_t)t * k->nbk, k->m->cols);
}

static void mmk_task(void *c, int chunk, int tid) {
  (void)tid;
  mmk_ctx *k = (mmk_ctx *)c;
  mm_ctx *m = k->m;
  const int r0 = chunk * MMK_ROWS, r1 = r0 + MMK_ROWS < m->rows ? r0 + MMK_ROWS : m->rows;
  float tmp[8];
  int r = r0;
  if (k->x16 && r1 <= k->x16_rows) {
    float t16[8 * KQ16_ROWS];
    for (int t0 = 0; t0 < m->n; t0 += 8) {
      const int nt = m->n - t0 < 8 ? m->n - t0 : 8;
      k->x16->x16_dot(m->type, k->nbk, m->w + (size_t)r0 * m->row_bytes, k->xk + (size_t)t0 * k->nbk, (size_t)k->nbk, nt, t16);
      put_group(m, t0, nt, r0, t16);
    }
    return;
  }
  /* One token: four rows per call share the activation loads (see kq_dot_r4). */
  if (m->n == 1 && k->dot_r4)
    for (; r + 4 <= r1; r += 4) {
      k->dot_r4(m->type, k->nbk, m->w + (size_t)r * m->row_bytes, m->row_bytes, k->xk, tmp);
      for (int j = 0; j < 4; j++) put(m, 0, r + j, tmp[j]);
    }
  for (; r < r1; r++)
    for (int t0 = 0; t0 < m->n; t0 += 8) {
      const int nt = m->n - t0 < 8 ? m->n - t0 : 8;
      k->dot(m->type, k->nbk, m->w + (size_t)r * m->row_bytes, k->xk + (size_t)t0 * k->nbk, (size_t)k->nbk, nt, tmp);
      for (int t = 0; t < nt; t++) put(m, t0 + t, r, tmp[t]);
    }
}

/*
 * k-quant prefill through the table's GEMM (gemm_kq.h): a claim packs a few 16-row panels (about
 * 192 KiB, so they stay in L2) into its thread's slice of the scratch, then runs every 8-token tile
 * of the prompt over them.
 */
typedef struct {
  mmk_ctx *k;
  const cg_gemm_kq *g;
  uint8_t *packs;
  size_t panel_bytes;
  int panels, per_claim;
} mmg_ctx;

static void mmg_task(void *c, int claim, int tid) {
  mmg_ctx *G = (mmg_ctx *)c;
  const mm_ctx *m = G->k->m;
  const int nbk = G->k->nbk;
  const int p0 = claim * G->per_claim, p1 = p0 + G->per_claim < G->panels ? p0 + G->per_claim : G->panels;
  uint8_t *buf = G->packs + (size_t)tid * (size_t)G->per_claim * G->panel_bytes;
  for (int p = p0; p < p1; p++) {
    const int r0 = p * CG_GEMM_KQ_ROWS, nr = m->rows - r0 < CG_GEMM_KQ_ROWS ? m->rows - r0 : CG_GEMM_KQ_ROWS;
    uint8_t *panel = buf + (size_t)(p - p0) * G->panel_bytes;
    if (G->k->x16 && r0 + CG_GEMM_KQ_ROWS <= G->k->x16_rows) G->g->x16_pack(m->type, nbk, m->w + (size_t)r0 * m->row_bytes, panel);
    else G->g->pack(m->type, nbk, m->w + (size_t)r0 * m->row_bytes, m->row_bytes, nr, panel);
  }
  for (int t0 = 0; t0 < m->n; t0 += CG_GEMM_KQ_TOKENS) {
    const int nt = m->n - t0 < CG_GEMM_KQ_TOKENS ? m->n - t0 : CG_GEMM_KQ_TOKENS;
    for (int p = p0; p < p1; p++) {
      const int r0 = p * CG_GEMM_KQ_ROWS, nr = m->rows - r0 < CG_GEMM_KQ_ROWS ? m->rows - r0 : CG_GEMM_KQ_ROWS;
      G->g->tile(m->type, nbk, buf + (size_t)(p - p0) * G->panel_bytes, G->k->xk + (size_t)t0 * nbk, (size_t)nbk, nt,
                 m->bias ? m->bias + r0 : NULL, nr, m->out + (size_t)t0 * m->rows + r0, (size_t)m->rows);
    }
  }
}

/* Panels per claim of the k-quant / q4_1-q5_1 GEMMs: as many as fit in about 192 KiB (L2), fewer
 * while that would leave under four claims per thread; *nth: the threads whose packing buffers the
 * scratch must hold. */
static int gemm_panels_per_claim(cg_ctx *c, int panels, size_t panel_bytes, int *nth) {
  *nth = cg_threads(c) > c->requested_threads ? cg_threads(c) : c->requested_threads;
  if (*nth < 1) *nth = 1;
  int per = (int)((192u << 10) / panel_bytes);
  if (per < 1) per = 1;
  while (per > 1 && (panels + per - 1) / per < 4 * *nth) per--;
  return per;
}

/* The GEMM path when the table has a kernel for this type and there are more tokens than one decode-kernel
 * pass takes (8): at 8 the packing costs more than it saves. */
static int mm_kquant_gemm(cg_ctx *c, mm_ctx *m, mmk_ctx *k) {
  const cg_gemm_kq *g = c->k->gemm_kq;
  if (!g || m->n <= CG_GEMM_KQ_TOKENS) return -1;
  mmg_ctx G;
  G.k = k;
  G.g = g;
  G.panel_bytes = g->panel_bytes(m->type, k->nbk);
  if (G.panel_bytes == 0) return -1;
  G.panels = (m->rows + CG_GEMM_KQ_ROWS - 1) / CG_GEMM_KQ_ROWS;
  int nth;
  const int per = gemm_panels_per_claim(c, G.panels, G.panel_bytes, &nth);
  G.per_claim = per;
  const size_t packs = (size_t)nth * (size_t)per * G.panel_bytes;
  uint8_t *s = (uint8_t *)scratch(c, packs + (size_t)m->n * k->nbk * sizeof(block_q8_K));
  if (!s) return 0;
  G.packs = s;
  k->xk = (const block_q8_K *)(s + packs);
  run(c, mmk_quantize_task, k, m->n);
  run(c, mmg_task, &G, (G.panels + per - 1) / per);
  return 1;
}

static int mm_kquant(cg_ctx *c, mm_ctx *m) {
  mmk_ctx k;
  k.m = m;
  k.nbk = m->cols / QK_K;
  k.dot = c->k->kq_dot ? c->k->kq_dot : kernels_scalar.kq_dot;
  k.dot_r4 = c->kq_r4 && c->k->kq_dot ? c->k->kq_dot_r4 : NULL;
  k.quant = c->k->quantize_q8_K ? c->k->quantize_q8_K : kernels_scalar.quantize_q8_K;
  k.x16 = cg_kq16(c, m->type) ? c->k->gemm_kq : NULL;
  k.x16_rows = m->rows / KQ16_ROWS * KQ16_ROWS;
  /* the rows after the last x16 group through the portable kernel: then every row sums as x16_dot does */
  if (k.x16) {
    k.dot = kernels_scalar.kq_dot;
    k.dot_r4 = NULL;
  }
  const int done = mm_kquant_gemm(c, m, &k);
  if (done >= 0) return done;
  k.xk = (const block_q8_K *)scratch(c, (size_t)m->n * k.nbk * sizeof(block_q8_K));
  if (!k.xk) return 0;
  if (m->n >= 4) run(c, mmk_quantize_task, &k, m->n);
  else
    for (int t = 0; t < m->n; t++) mmk_quantize_task(&k, t, 0);
  const int chunks = (m->rows + MMK_ROWS - 1) / MMK_ROWS;
  run_spans(c, mmk_task, &k, chunks, k.x16 ? kq16_span_for(c, chunks) : 1);
  return 1;
}

/* q4_1 / q5_0 / q5_1: 8-bit activations as for q8_0, rows in ggml's layout or x16 (cg_kq16), 16 rows per chunk. */
typedef struct {
  mm_ctx *m;
  void (*dot)(int, int, const uint8_t *, const block_qa *, size_t, int, float *);
  void (*dot_r4)(int, int, const uint8_t *, size_t, const block_qa *, float *);
  /* weights in the x16 layout (cg_kq16): its whole groups go through the table's x16 kernels, which
   * take q5_0's -16 back through the activation blocks' sums (asum) */
  const cg_gemm_lq *x16;
  int x16_rows;
  const int32_t *asum;
} mml_ctx;

/* The exact sums of token t's activation blocks' quants, nb of them into asum (the lq kernels' q5_0 offset). */
static void qa_block_sums(const mm_ctx *m, int t, int32_t *asum) {
  for (int i = 0; i < m->nb; i++) {
    const block_qa *b = m->xq + (size_t)t * m->nb + i;
    int32_t s = 0;
    for (int j = 0; j < QK; j++) s += b->qs[j];
    asum[(size_t)t * m->nb + i] = s;
  }
}

static void mml_task(void *c, int chunk, int tid) {
  (void)tid;
  mml_ctx *k = (mml_ctx *)c;
  mm_ctx *m = k->m;
  const int r0 = chunk * MMK_ROWS, r1 = r0 + MMK_ROWS < m->rows ? r0 + MMK_ROWS : m->rows;
  float tmp[8];
  int r = r0;
  if (k->x16 && r1 <= k->x16_rows) {
    float t16[8 * KQ16_ROWS];
    for (int t0 = 0; t0 < m->n; t0 += 8) {
      const int nt = m->n - t0 < 8 ? m->n - t0 : 8;
      k->x16->x16_dot(m->type, m->nb, m->w + (size_t)r0 * m->row_bytes, m->xq + (size_t)t0 * m->nb,
                      k->asum ? k->asum + (size_t)t0 * m->nb : NULL, (size_t)m->nb, nt, t16);
      put_group(m, t0, nt, r0, t16);
    }
    return;
  }
  /* One token: four rows per call share the activation loads (see lq_dot_r4). */
  if (m->n == 1 && k->dot_r4)
    for (; r + 4 <= r1; r += 4) {
      k->dot_r4(m->type, m->nb, m->w + (size_t)r * m->row_bytes, m->row_bytes, m->xq, tmp);
      for (int j = 0; j < 4; j++) put(m, 0, r + j, tmp[j]);
    }
  for (; r < r1; r++)
    for (int t0 = 0; t0 < m->n; t0 += 8) {
      const int nt = m->n - t0 < 8 ? m->n - t0 : 8;
      k->dot(m->type, m->nb, m->w + (size_t)r * m->row_bytes, m->xq + (size_t)t0 * m->nb, (size_t)m->nb, nt, tmp);
      for (int t = 0; t < nt; t++) put(m, t0 + t, r, tmp[t]);
    }
}

/* q4_1 / q5_0 / q5_1 prefill through the table's GEMM (gemm_kq.h), claimed as for the k-quants. */
typedef struct {
  mm_ctx *m;
  const cg_gemm_lq *g;
  uint8_t *packs;
  int32_t *asum;
  size_t panel_bytes;
  int panels, per_claim;
  /* rows in whole x16 groups (cg_kq16), packed by x16_pack; 0 in ggml's layout */
  int x16_rows;
} mmlg_ctx;

static void mmlg_sum_task(void *c, int t, int tid) {
  (void)tid;
  mmlg_ctx *G = (mmlg_ctx *)c;
  qa_block_sums(G->m, t, G->asum);
}

static void mmlg_task(void *c, int claim, int tid) {
  mmlg_ctx *G = (mmlg_ctx *)c;
  const mm_ctx *m = G->m;
  const int p0 = claim * G->per_claim, p1 = p0 + G->per_claim < G->panels ? p0 + G->per_claim : G->panels;
  uint8_t *buf = G->packs + (size_t)tid * (size_t)G->per_claim * G->panel_bytes;
  for (int p = p0; p < p1; p++) {
    const int r0 = p * CG_GEMM_KQ_ROWS, nr = m->rows - r0 < CG_GEMM_KQ_ROWS ? m->rows - r0 : CG_GEMM_KQ_ROWS;
    uint8_t *panel = buf + (size_t)(p - p0) * G->panel_bytes;
    if (r0 + CG_GEMM_KQ_ROWS <= G->x16_rows) G->g->x16_pack(m->type, m->nb, m->w + (size_t)r0 * m->row_bytes, panel);
    else G->g->pack(m->type, m->nb, m->w + (size_t)r0 * m->row_bytes, m->row_bytes, nr, panel);
  }
  for (int t0 = 0; t0 < m->n; t0 += CG_GEMM_KQ_TOKENS) {
    const int nt = m->n - t0 < CG_GEMM_KQ_TOKENS ? m->n - t0 : CG_GEMM_KQ_TOKENS;
    for (int p = p0; p < p1; p++) {
      const int r0 = p * CG_GEMM_KQ_ROWS, nr = m->rows - r0 < CG_GEMM_KQ_ROWS ? m->rows - r0 : CG_GEMM_KQ_ROWS;
      G->g->tile(m->type, m->nb, buf + (size_t)(p - p0) * G->panel_bytes, m->xq + (size_t)t0 * m->nb,
                 G->asum + (size_t)t0 * m->nb, (size_t)m->nb, nt, m->bias ? m->bias + r0 : NULL, nr,
                 m->out + (size_t)t0 * m->rows + r0, (size_t)m->rows);
    }
  }
}

/* As mm_kquant_gemm: more than 8 tokens and a kernel in the table, else -1. */
static int mm_legacy_gemm(cg_ctx *c, mm_ctx *m) {
  const cg_gemm_lq *g = c->k->gemm_lq;
  if (!g || m->n <= CG_GEMM_KQ_TOKENS) return -1;
  mmlg_ctx G;
  G.m = m;
  G.g = g;
  G.panel_bytes = g->panel_bytes(m->type, m->nb);
  if (G.panel_bytes == 0) return -1;
  G.panels = (m->rows + CG_GEMM_KQ_ROWS - 1) / CG_GEMM_KQ_ROWS;
  G.x16_rows = cg_kq16(c, m->type) ? m->rows / KQ16_ROWS * KQ16_ROWS : 0;
  int nth;
  const int per = gemm_panels_per_claim(c, G.panels, G.panel_bytes, &nth);
  G.per_claim = per;
  const size_t packs = (size_t)nth * (size_t)per * G.panel_bytes;
  const size_t xq = ((size_t)m->n * m->nb * sizeof(block_qa) + 63) & ~(size_t)63;
  uint8_t *s = (uint8_t *)scratch(c, packs + xq + (size_t)m->n * m->nb * sizeof(int32_t));
  if (!s) return 0;
  G.packs = s;
  m->xq = (block_qa *)(s + packs);
  G.asum = (int32_t *)(s + packs + xq);
  run(c, mm_quantize_task, m, m->n);
  run(c, mmlg_sum_task, &G, m->n);
  run(c, mmlg_task, &G, (G.panels + per - 1) / per);
  return 1;
}

static int mm_legacy(cg_ctx *c, mm_ctx *m) {
  const int done = mm_legacy_gemm(c, m);
  if (done >= 0) return done;
  mml_ctx k;
  k.m = m;
  k.dot = c->k->lq_dot ? c->k->lq_dot : kernels_scalar.lq_dot;
  k.dot_r4 = c->kq_r4 && c->k->lq_dot ? c->k->lq_dot_r4 : NULL;
  k.x16 = cg_kq16(c, m->type) ? c->k->gemm_lq : NULL;
  k.x16_rows = m->rows / KQ16_ROWS * KQ16_ROWS;
  k.asum = NULL;
  /* the rows after the last x16 group through the portable kernel: then every row sums as x16_dot does */
  if (k.x16) {
    k.dot = kernels_scalar.lq_dot;
    k.dot_r4 = NULL;
  }
  const size_t xq = ((size_t)m->n * m->nb * sizeof(block_qa) + 63) & ~(size_t)63;
  const int sums = k.x16 && m->type == WT_Q5_0;
  uint8_t *s = (uint8_t *)scratch(c, xq + (sums ? (size_t)m->n * m->nb * sizeof(int32_t) : 0));
  if (!s) return 0;
  m->xq = (block_qa *)s;
  if (m->n >= 4) run(c, mm_quantize_task, m, m->n);
  else
    for (int t = 0; t < m->n; t++) mm_quantize_task(m, t, 0);
  if (sums) {
    k.asum = (const int32_t *)(s + xq);
    for (int t = 0; t < m->n; t++) qa_block_sums(m, t, (int32_t *)(s + xq));
  }
  const int chunks = (m->rows + MMK_ROWS - 1) / MMK_ROWS;
  run_spans(c, mml_task, &k, chunks, k.x16 ? kq16_span_for(c, chunks) : 1);
  return 1;
}

/*
 * Groups per claim for the prefill GEMM: an even count whose weights fit in about 192 KiB (stay in
 * L2 while every token tile passes), fewer when that would leave under 4 claims per thread.
 */
static int gemm_chunk(const cg_ctx *c, int type, int nb, int groups) {
  const size_t gbytes = (size_t)nb * x8_record(type);
  int g = (int)((192u << 10) / gbytes);
  if (g > 16) g = 16;
  const int nth = cg_threads(c) > 0 ? cg_threads(c) : 1;
  while (g > 2 && (groups + g - 1) / g < 4 * nth) g -= 2;
  g &= ~1;
  return g < 2 ? 2 : g;
}

int cg_matmul(cg_ctx *c, int type, int rows, int cols, const uint8_t *w, const float *x, int n, float *out,
              const float *bias) {
  mm_ctx m;
  memset(&m, 0, sizeof(m));
  m.K = c->k;
  m.type = type;
  m.rows = rows;
  m.cols = cols;
  m.n = n;
  m.nb = cols / QK;
  m.w = w;
  m.x = x;
  m.out = out;
  m.bias = bias;
  m.row_bytes = cg_row_bytes(type, cols);
  /* A few rows (a batched decode step): the prefetched few-row kernels of batch_ops.c where there are. */
  if (type == WT_Q4_0 && n >= 2 && n <= CG_BATCH_MAX_ROWS) {
    const int done = cg_batch_matmul_q4(c, rows, cols, w, x, n, out, bias);
    if (done >= 0) return done;
  }
  if (WT_IS_KQUANT(type)) return mm_kquant(c, &m);
  if (WT_IS_LEGACY(type)) return mm_legacy(c, &m);
  if (type == WT_Q8_0 || type == WT_Q4_0) {
    /* A last two or three tokens run through the four-token kernel too, padded with copies of the last one. */
    const int rem = n % 4;
    m.n4 = rem >= 2 ? n - rem + 4 : n - rem;
    const int nq = m.n4 > n ? m.n4 : n;
    m.gemm = n >= 8 ? (type == WT_Q4_0 ? c->k->gemm_q4_0_16x8 : c->k->gemm_q8_0_16x8) : NULL;
    m.xq = (block_qa *)scratch(c, (size_t)nq * m.nb * sizeof(block_qa));
    if (!m.xq) return 0;
    if (n >= 4) run(c, mm_quantize_task, &m, n);
    else
      for (int t = 0; t < n; t++) mm_quantize_task(&m, t, 0);
    for (int t = n; t < nq; t++) memcpy(m.xq + (size_t)t * m.nb, m.xq + (size_t)(n - 1) * m.nb, (size_t)m.nb * sizeof(block_qa));
    m.groups = rows / X8;
    m.g4 = type == WT_Q4_0 ? c->q4_g4 : c->q8_g4;
    /* Decode: 4 groups (32 rows) per claim balances well; prefill: 2 groups keep the tile in L1/L2. */
    m.chunk = n >= 4 ? 2 : c->decode_chunk;
    if (m.gemm) m.chunk = gemm_chunk(c, type, m.nb, m.groups);
    m.gchunks = (m.groups + m.chunk - 1) / m.chunk;
    run(c, mm_q_task, &m, m.gchunks + (rows % X8 != 0 ? 1 : 0));
  } else {
    m.chunk = 16;
    run(c, mm_f_task, &m, (rows + m.chunk - 1) / m.chunk);
  }
  return 1;
}

/* ---------------------------------------------------------------- elementwise */

int cg_embedding(cg_ctx *c, int type, int rows, int cols, const uint8_t *w, const int32_t *ids, int n, float *out) {
  const size_t rb = cg_row_bytes(type, cols);
  uint8_t *tmp = NULL;
  const int x16 = cg_kq16(c, type);
  if (type == WT_Q8_0 || type == WT_Q4_0 || x16) {
    tmp = (uint8_t *)malloc(rb);
    if (!tmp) return 0;
  }
  for (int t = 0; t < n; t++) {
    const uint8_t *row = w + (size_t)ids[t] * rb;
    if (x16) {
      cg_kq16_row(type, cols, w, rows, ids[t], tmp);
      row = tmp;
    } else if (tmp) {
      x8_row(type, cols, w, rows, ids[t], tmp);
      row = tmp;
    }
    float *o = out + (size_t)t * cols;
    switch (type) {
      case WT_F32: memcpy(o, row, (size_t)cols * 4); break;
      case WT_F16: c->k->f16_to_f32((const uint16_t *)row, o, cols); break;
      case WT_BF16: {
        const uint16_t *r16 = (const uint16_t *)row;
        for (int i = 0; i < cols; i++) o[i] = cg_bf16_to_f32(r16[i]);
        break;
      }
      case WT_Q8_0: {
        const block_q8_0 *b = (const block_q8_0 *)row;
        for (int i = 0; i < cols / QK; i++) {
          const float d = cg_f16_to_f32(b[i].d);
          for (int j = 0; j < QK; j++) o[i * QK + j] = d * (float)b[i].qs[j];
        }
        break;
      }
      case WT_Q2_K:
      case WT_Q3_K:
      case WT_Q4_K:
      case WT_Q5_K:
      case WT_Q6_K: kq_dequant_row(type, cols / QK_K, row, o); break;
      case WT_Q4_1:
      case WT_Q5_0:
      case WT_Q5_1: lq_dequant_row(type, cols / QK, row, o); break;
      case WT_Q4_0: {
        const block_q4_0 *b = (const block_q4_0 *)row;
        for (int i = 0; i < cols / QK; i++) {
          const float d = cg_f16_to_f32(b[i].d);
          for (int j = 0; j < QK / 2; j++) {
            o[i * QK + j] = d * (float)((b[i].qs[j] & 0x0f) - 8);
            o[i * QK + j + QK / 2] = d * (float)((b[i].qs[j] >> 4) - 8);
          }
        }
        break;
      }
      default: break;
    }
  }
  free(tmp);
  return 1;
}

typedef struct {
  const kernels_t *K;
  const float *x, *w;
  float *out;
  int n, dim;
  float eps;
} rows_ctx;

static void rmsnorm_task(void *c, int t, int tid) {
  (void)tid;
  rows_ctx *r = (rows_ctx *)c;
  r->K->rmsnorm_row(r->x + (size_t)t * r->dim, r->w, r->dim, r->eps, r->out + (size_t)t * r->dim);
}

void cg_rmsnorm(cg_ctx *c, const float *x, const float *w, int n, int dim, float eps, float *out) {
  rows_ctx r = {c->k, x, w, out, n, dim, eps};
  /* A row is microseconds of work: only a batch is worth a dispatch. */
  if (n >= 4) run(c, rmsnorm_task, &r, n);
  else
    for (int t = 0; t < n; t++) rmsnorm_task(&r, t, 0);
}

#define SWIGLU_CHUNK 8192

/* Chunks of SWIGLU_CHUNK outputs over the flattened [n, half] output. */
static void swiglu_task(void *c, int chunk, int tid) {
  (void)tid;
  rows_ctx *r = (rows_ctx *)c;
  const size_t half = (size_t)r->dim;
  const size_t total = (size_t)r->n * half;
  size_t i = (size_t)chunk * SWIGLU_CHUNK;
  const size_t end = i + SWIGLU_CHUNK < total ? i + SWIGLU_CHUNK : total;
  while (i < end) {
    const size_t t = i / half, d = i % half;
    const size_t len = (half - d) < (end - i) ? (half - d) : (end - i);
    r->K->swiglu_row(r->x + t * 2 * half + d, r->dim, r->out + t * half + d, (int)len);
    i += len;
  }
}

void cg_swiglu(cg_ctx *c, const float *x, int n, int half, float *out) {
  rows_ctx r = {c->k, x, NULL, out, n, half, 0};
  const size_t total = (size_t)n * half;
  run(c, swiglu_task, &r, (int)((total + SWIGLU_CHUNK - 1) / SWIGLU_CHUNK));
}

void cg_add(cg_ctx *c, float *a, const float *b, size_t len) { c->k->add(a, b, len); }

/*
 * cos/sin of every (token, pair) angle. A step calls rope twice per layer with the same positions,
 * so the last table is kept and reused when positions, base and width match (28 layers x 2 calls
 * of pow/cos/sin per pair were ~0.5% of a decode step).
 */
static const double *rope_table(cg_ctx *c, int n, int rotaryDim, const float *positions, double base) {
  const int pairs = rotaryDim / 2;
  if (c->rope_n == n && c->rope_dim == rotaryDim && c->rope_base == base &&
      memcmp(c->rope_pos, positions, sizeof(float) * (size_t)n) == 0)
    return c->rope_cs;
  const size_t need = (size_t)n * (pairs > 0 ? pairs : 1);
  if (need > c->rope_cap || (size_t)n > c->rope_cap) {
    const size_t cap = need > (size_t)n ? need : (size_t)n;
    double *cs = (double *)malloc(sizeof(double) * 2 * cap);
    float *pos = (float *)malloc(sizeof(float) * cap);
    if (!cs || !pos) {
      free(cs);
      free(pos);
      return NULL;
    }
    free(c->rope_cs);
    free(c->rope_pos);
    c->rope_cs = cs;
    c->rope_pos = pos;
    c->rope_cap = cap;
  }
  for (int t = 0; t < n; t++) {
    const double p = positions[t];
    double *cs = c->rope_cs + (size_t)t * 2 * pairs;
    for (int i = 0; i < pairs; i++) {
      const double theta = pow(base, -2.0 * i / rotaryDim);
      const double ang = p * theta;
      cs[2 * i] = cos(ang);
      cs[2 * i + 1] = sin(ang);
    }
  }
  memcpy(c->rope_pos, positions, sizeof(float) * (size_t)n);
  c->rope_n = n;
  c->rope_dim = rotaryDim;
  c->rope_base = base;
  return c->rope_cs;
}

int cg_rope(cg_ctx *c, float *x, int n, int nHeads, int headDim, int rotaryDim, const float *positions, double base) {
  const int pairs = rotaryDim / 2;
  if (pairs <= 0 || n <= 0) return 1;
  const double *table = rope_table(c, n, rotaryDim, positions, base);
  if (!table) return 0;
  for (int t = 0; t < n; t++) {
    const double *cs = table + (size_t)t * 2 * pairs;
    for (int h = 0; h < nHeads; h++) {
      float *p = x + ((size_t)t * nHeads + h) * headDim;
      for (int i = 0; i < pairs; i++) {
        const double c = cs[2 * i], s = cs[2 * i + 1];
        const double a = p[2 * i], b = p[2 * i + 1];
        p[2 * i] = (float)(a * c - b * s);
        p[2 * i + 1] = (float)(a * s + b * c);
      }
    }
  }
  return 1;
}

/* ---------------------------------------------------------------- attention */

#define ATT_TILE 64
_Static_assert(ATT_TILE == ATT4_TILE, "the four-row attention kernel reads tiles of ATT_TILE keys");
#define ATT_MAX_ROWS 256

/* q8_0 KV rows (ggml's block_q8_0: f16 scale d = max|x|/127, x ~ d*q); n is a multiple of 32.
 * Scalar: a row is quantized once when it enters the cache and read once per K/V tile. */
static void kv_f32_to_q8(const float *x, uint8_t *dst, int n) {
  block_q8_0 *y = (block_q8_0 *)dst;
  for (int b = 0; b < n / 32; b++) {
    float amax = 0.0f;
    for (int i = 0; i < 32; i++) {
      const float a = fabsf(x[b * 32 + i]);
      if (a > amax) amax = a;
    }
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    y[b].d = cg_f32_to_f16(d);
    for (int i = 0; i < 32; i++) y[b].qs[i] = (int8_t)roundf(x[b * 32 + i] * id);
  }
}

static void kv_q8_to_f32(const uint8_t *src, float *x, int n) {
  const block_q8_0 *y = (const block_q8_0 *)src;
  for (int b = 0; b < n / 32; b++) {
    const float d = cg_f16_to_f32(y[b].d);
    for (int i = 0; i < 32; i++) x[b * 32 + i] = d * (float)y[b].qs[i];
  }
}

typedef struct {
  const kernels_t *K;
  const float *q;
  float *out;
  const uint8_t *kc, *vc;
  int kvType;          /* CG_KV_F16 or CG_KV_Q8_0 */
  size_t pstride, goff; /* bytes per cache position, bytes from one group to the next */
  int rowStart, nTokens, startPos, nHeads, nGroups, headDim, hpg, qb, nqb;
  float scale;
  int units;
  int bf16;       /* long prompt on a CPU with avx512_bf16: the bf16 kernels (attn_bf16.h) */
  float *scratch; /* per thread: K tile, V tile, scores, acc, m, l, K tile transposed, bf16 Q rows + limits */
  size_t per_thread;
} att_ctx;

/* bf16 path: the unit's query rows in the QT2 layout of attn_bf16.h (16 rows per block, t-major:
 * row r = (t - t0) * hpg + head in group), zero past the last row, then 16 ints of limits per
 * block. Kept right after the K2 / VT2 tiles in the KT area. */
static void att_q_bf16(const att_ctx *A, float *area, int g, int t0, int nrows) {
  const int hd = A->headDim, nblk = (nrows + ATD_ROWS - 1) / ATD_ROWS;
  uint16_t *QT2 = (uint16_t *)area;
  memset(QT2, 0, sizeof(uint16_t) * (size_t)nblk * ATD_ROWS * hd);
  for (int r = 0; r < nrows; r++) {
    const float *qv = A->q + ((size_t)(A->rowStart + t0 + r / A->hpg) * A->nHeads + g * A->hpg + r % A->hpg) * hd;
    uint16_t *qt = QT2 + (size_t)(r / ATD_ROWS) * ATD_ROWS * hd + 2 * (r % ATD_ROWS);
    for (int d = 0; d < hd; d++) qt[(size_t)(d / 2) * 2 * ATD_ROWS + (d & 1)] = cg_f32_to_bf16(qv[d]);
  }
}

/* bf16 path, one K/V tile (f32 rows Kt, Vt of jn keys from j0) against every row block of the unit. */
static void att_tile_bf16(const att_ctx *A, float *KT, const float *Kt, const float *Vt, int jn, int j0, int t0, int nrows,
                          float *S, float *M, float *L, float *acc) {
  const kernels_t *K = A->K;
  const int hd = A->headDim, nblk = (nrows + ATD_ROWS - 1) / ATD_ROWS;
  uint16_t *K2 = (uint16_t *)KT, *VT2 = K2 + (size_t)ATT_TILE * hd;
  const uint16_t *QT2 = (const uint16_t *)(KT + (size_t)ATT_TILE * hd);
  int *lim = (int *)(KT + (size_t)ATT_TILE * hd + (size_t)nblk * ATD_ROWS * hd / 2);
  K->attn_bf16_tiles(hd, Kt, Vt, jn, K2, VT2);
  for (int r = 0; r < nblk * ATD_ROWS; r++) {
    const int vis = r < nrows ? A->startPos + t0 + r / A->hpg - j0 + 1 : 0;
    lim[r] = vis < 0 ? 0 : vis > jn ? jn : vis;
  }
  for (int b = 0; b < nblk; b++) {
    const int rb = b * ATD_ROWS, nrb = nrows - rb < ATD_ROWS ? nrows - rb : ATD_ROWS;
    if (lim[rb + nrb - 1] == 0) continue; /* rows ascend in position: none sees this tile */
    K->attn_rows16_bf16(hd, QT2 + (size_t)rb * hd, nrb, K2, VT2, jn, lim + rb, A->scale, S, M + rb, L + rb, acc + (size_t)rb * hd);
  }
}

static void att_task(void *c, int u, int tid) {
  att_ctx *A = (att_ctx *)c;
  const kernels_t *K = A->K;
  /* A kernel table without the entry (one being written for a new ISA) uses the portable one. */
  void (*tile)(int, const float *, const float *, const float *, int, float, float *, float *, float *, float *) =
      K->attn_tile ? K->attn_tile : kernels_scalar.attn_tile;
  const int hd = A->headDim, hpg = A->hpg;
  float *base = A->scratch + (size_t)tid * A->per_thread;
  float *Kt = base;
  float *Vt = Kt + (size_t)ATT_TILE * hd;
  float *S = Vt + (size_t)ATT_TILE * hd;
  float *acc = S + (size_t)ATT_MAX_ROWS * ATT_TILE;
  float *M = acc + (size_t)ATT_MAX_ROWS * hd;
  float *L = M + ATT_MAX_ROWS;
  /* Four heads of a group at one position at a time (they share the causal limit), where the table
   * has the kernel; it reads the K tile transposed (KT). */
  void (*rows4)(int, const float *, size_t, const float *, const float *, int, float, float *, float *, float *, float *) =
      hpg % 4 == 0 && hd % 64 == 0 ? K->attn_rows4 : NULL;
  float *KT = L + ATT_MAX_ROWS;
  {
    /* Units in order hand out the longest (latest) query blocks first: causal blocks grow with position. */
    const int g = u % A->nGroups;
    const int qbi = A->nqb - 1 - u / A->nGroups;
    const int t0 = qbi * A->qb;
    const int t1 = t0 + A->qb < A->nTokens ? t0 + A->qb : A->nTokens;
    const int nrows = (t1 - t0) * hpg;
    const int maxPos = A->startPos + t1 - 1;
    /* (the bf16 kernels run rows in blocks of 16: the rows past the last, up to the block's end, are theirs too) */
    const int rows_init = A->bf16 ? (nrows + ATD_ROWS - 1) / ATD_ROWS * ATD_ROWS : nrows;
    for (int r = 0; r < rows_init; r++) {
      M[r] = -INFINITY;
      L[r] = 0.0f;
    }
    memset(acc, 0, sizeof(float) * (size_t)rows_init * hd);
    if (A->bf16) att_q_bf16(A, KT + (size_t)ATT_TILE * hd, g, t0, nrows);
    const size_t pstride = A->pstride; /* cache layout [position][group][headDim] */
    const uint8_t *kg = A->kc + (size_t)g * A->goff;
    const uint8_t *vg = A->vc + (size_t)g * A->goff;
    for (int j0 = 0; j0 <= maxPos; j0 += ATT_TILE) {
      const int jn = maxPos + 1 - j0 < ATT_TILE ? maxPos + 1 - j0 : ATT_TILE;
      /* One conversion of the K/V tile serves every query head of the group. */
      for (int j = 0; j < jn; j++) {
        const uint8_t *kp = kg + (size_t)(j0 + j) * pstride, *vp = vg + (size_t)(j0 + j) * pstride;
        if (A->kvType == CG_KV_Q8_0) {
          kv_q8_to_f32(kp, Kt + (size_t)j * hd, hd);
          kv_q8_to_f32(vp, Vt + (size_t)j * hd, hd);
        } else {
          K->f16_to_f32((const uint16_t *)kp, Kt + (size_t)j * hd, hd);
          K->f16_to_f32((const uint16_t *)vp, Vt + (size_t)j * hd, hd);
        }
      }
      if (A->bf16) {
        att_tile_bf16(A, KT, Kt, Vt, jn, j0, t0, nrows, S, M, L, acc);
        continue;
      }
      if (rows4)
        for (int d = 0; d < hd; d++)
          for (int j = 0; j < jn; j++) KT[(size_t)d * ATT_TILE + j] = Kt[(size_t)j * hd + d];
      for (int r = 0; r < nrows; r += rows4 ? 4 : 1) {
        const int t = t0 + r / hpg;
        const int h = g * hpg + r % hpg;
        const int pos = A->startPos + t;
        int lim = pos - j0 + 1;
        if (lim <= 0) continue;
        if (lim > jn) lim = jn;
        const float *qv = A->q + ((size_t)(A->rowStart + t) * A->nHeads + h) * hd;
        if (rows4) rows4(hd, qv, (size_t)hd, KT, Vt, lim, A->scale, S + (size_t)r * ATT_TILE, &M[r], &L[r], acc + (size_t)r * hd);
        else tile(hd, qv, Kt, Vt, lim, A->scale, S + (size_t)r * ATT_TILE, &M[r], &L[r], acc + (size_t)r * hd);
      }
    }
    for (int r = 0; r < nrows; r++) {
      const int t = t0 + r / hpg;
      const int h = g * hpg + r % hpg;
      float *o = A->out + ((size_t)(A->rowStart + t) * A->nHeads + h) * hd;
      const float inv = L[r] > 0 ? 1.0f / L[r] : 0.0f;
      const float *ar = acc + (size_t)r * hd;
      for (int i = 0; i < hd; i++) o[i] = ar[i] * inv;
    }
  }
}

size_t cg_attention(cg_ctx *c, const float *q, const float *k, const float *v, float *out, uint16_t *kc, uint16_t *vc,
                    int rowStart, int nTokens, int startPos, int nHeads, int nGroups, int headDim,
                    float scale) {
  return cg_attention_kv(c, q, k, v, out, kc, vc, CG_KV_F16, rowStart, nTokens, startPos, nHeads, nGroups, headDim, scale);
}

size_t cg_kv_group_bytes(int kvType, int headDim) {
  return kvType == CG_KV_Q8_0 ? (size_t)(headDim / 32) * sizeof(block_q8_0) : (size_t)headDim * 2;
}

size_t cg_attention_kv(cg_ctx *c, const float *q, const float *k, const float *v, float *out, void *kcv, void *vcv, int kvType,
                       int rowStart, int nTokens, int startPos, int nHeads, int nGroups, int headDim, float scale) {
  const int kvw = nGroups * headDim;
  uint8_t *kc = (uint8_t *)kcv, *vc = (uint8_t *)vcv;
  const size_t goff = cg_kv_group_bytes(kvType, headDim);
  const size_t pstride = goff * (size_t)nGroups;
  for (int t = 0; t < nTokens; t++) {
    const float *kr = k + (size_t)(rowStart + t) * kvw;
    const float *vr = v + (size_t)(rowStart + t) * kvw;
    for (int g = 0; g < nGroups; g++) {
      uint8_t *kd = kc + (size_t)(startPos + t) * pstride + (size_t)g * goff;
      uint8_t *vd = vc + (size_t)(startPos + t) * pstride + (size_t)g * goff;
      if (kvType == CG_KV_Q8_0) {
        kv_f32_to_q8(kr + (size_t)g * headDim, kd, headDim);
        kv_f32_to_q8(vr + (size_t)g * headDim, vd, headDim);
      } else {
        c->k->f32_to_f16(kr + (size_t)g * headDim, (uint16_t *)kd, headDim);
        c->k->f32_to_f16(vr + (size_t)g * headDim, (uint16_t *)vd, headDim);
      }
    }
  }
  /* One or a few tokens over a long cache: keys split over the threads (attn_decode.c). */
  const int few = nTokens * (nHeads / nGroups) <= ATD_MAX_ROWS;
  if (few && startPos + nTokens >= ATD_MIN_KEYS)
    return cg_attention_split(c, q, out, kc, vc, kvType, rowStart, nTokens, startPos, nHeads, nGroups, headDim, scale);
  att_ctx A;
  memset(&A, 0, sizeof(A));
  A.K = c->k;
  A.q = q;
  A.out = out;
  A.kc = kc;
  A.vc = vc;
  A.kvType = kvType;
  A.pstride = pstride;
  A.goff = goff;
  A.rowStart = rowStart;
  A.nTokens = nTokens;
  A.startPos = startPos;
  A.nHeads = nHeads;
  A.nGroups = nGroups;
  A.headDim = headDim;
  A.hpg = nHeads / nGroups;
  A.scale = scale;
  A.qb = ATT_MAX_ROWS / A.hpg > 0 ? ATT_MAX_ROWS / A.hpg : 1;
  /* Smaller query blocks when there are few, so every thread gets work. */
  const int nth = cg_threads(c) > 0 ? cg_threads(c) : 1;
  while (A.qb > 1 && ((nTokens + A.qb - 1) / A.qb) * nGroups < 2 * nth) A.qb /= 2;
  A.nqb = (nTokens + A.qb - 1) / A.qb;
  A.units = A.nqb * nGroups;
  A.bf16 = c->k->attn_rows16_bf16 && c->k->attn_bf16_tiles && headDim % 64 == 0 && startPos + nTokens >= ATT_BF16_MIN_KEYS &&
           cg_cpu_has_bf16();
  /* ... + bf16 Q rows (ATT_MAX_ROWS x headDim bf16) and their limits after the KT area */
  A.per_thread = (size_t)3 * ATT_TILE * headDim + (size_t)ATT_MAX_ROWS * ATT_TILE + (size_t)ATT_MAX_ROWS * headDim +
                 2 * ATT_MAX_ROWS + 16 + (size_t)ATT_MAX_ROWS * headDim / 2 + ATT_MAX_ROWS;
  size_t bytes = A.per_thread * sizeof(float) * (size_t)nth;
  /* A few-token step reserves what the split path would, so its scratch does not change with the context. */
  if (few) {
    const size_t sb = cg_attention_split_bytes(nth, nTokens, nHeads, nGroups, headDim);
    if (sb > bytes) bytes = sb;
  }
  A.scratch = (float *)scratch(c, bytes);
  if (!A.scratch) return (size_t)-1;
  /* Short contexts are less work than a dispatch is worth on a busy machine. */
  const double work = (double)nHeads * nTokens * (startPos + nTokens) * headDim;
  if (work < 262144.0)
    for (int u = 0; u < A.units; u++) att_task(&A, u, 0);
  else
    run(c, att_task, &A, A.units);
  return bytes;
}

/* ---------------------------------------------------------------- one decoder layer */

/*
 * A whole GLM decoder layer for one sequence, in place on x[n, H]: exactly the separate ops the
 * model would call (the same functions, in the same order, so the result is bit-identical), in one
 * call from JavaScript instead of a dozen, with no JS-side buffers and no Q/K/V split copies for a
 * single token. Per decode token that is 28 calls instead of ~340 crossings into the addon.
 */

size_t cg_layer(cg_ctx *c, float *x, int n, const cg_layer_weights *L, uint16_t *kc, uint16_t *vc, int startPos,
                const float *positions) {
  return cg_layer_kv(c, x, n, L, kc, vc, CG_KV_F16, startPos, positions);
}

size_t cg_layer_kv(cg_ctx *c, float *x, int n, const cg_layer_weights *L, void *kc, void *vc, int kvType, int startPos,
                   const float *positions) {
  const int H = L->qkv.cols;
  const int nHeads = L->nHeads, nGroups = L->nGroups, headDim = L->headDim, rotaryDim = L->rotaryDim, ffn = L->ffn;
  const double ropeBase = L->ropeBase;
  const float eps = L->eps, scale = L->scale;
  const int qDim = nHeads * headDim, kvDim = nGroups * headDim, qkvDim = qDim + 2 * kvDim;
  /* xb [n,H] | qkv [n,qkvDim] | q [n,qDim] | k,v [n,kvDim] | att [n,qDim] | hb [n,2ffn] | hb2 [n,ffn] */
  const size_t need = (size_t)n * ((size_t)H + qkvDim + qDim + 2 * (size_t)kvDim + qDim + 3 * (size_t)ffn) + 64;
  if (need > c->layer_buf_size) {
    free(c->layer_buf);
    c->layer_buf = (float *)aligned_alloc(64, ((need * sizeof(float)) + 63) & ~(size_t)63);
    c->layer_buf_size = c->layer_buf ? need : 0;
    if (!c->layer_buf) return (size_t)-1;
  }
  float *xb = c->layer_buf;
  float *qkv = xb + (size_t)n * H;
  float *qs = qkv + (size_t)n * qkvDim;
  float *ks = qs + (size_t)n * qDim;
  float *vs = ks + (size_t)n * kvDim;
  float *att = vs + (size_t)n * kvDim;
  float *hb = att + (size_t)n * qDim;
  float *hb2 = hb + (size_t)n * 2 * ffn;

  cg_rmsnorm(c, x, L->input_norm, n, H, eps, xb);
  if (!cg_matmul(c, L->qkv.type, L->qkv.rows, L->qkv.cols, L->qkv.w, xb, n, qkv, L->qkv_bias)) return (size_t)-1;
  float *q = qkv, *k = qkv + qDim, *v = qkv + qDim + kvDim;
  if (n > 1) {
    for (int t = 0; t < n; t++) {
      const float *row = qkv + (size_t)t * qkvDim;
      memcpy(qs + (size_t)t * qDim, row, sizeof(float) * (size_t)qDim);
      memcpy(ks + (size_t)t * kvDim, row + qDim, sizeof(float) * (size_t)kvDim);
      memcpy(vs + (size_t)t * kvDim, row + qDim + kvDim, sizeof(float) * (size_t)kvDim);
    }
    q = qs;
    k = ks;
    v = vs;
  }
  if (!cg_rope(c, q, n, nHeads, headDim, rotaryDim, positions, ropeBase) ||
      !cg_rope(c, k, n, nGroups, headDim, rotaryDim, positions, ropeBase))
    return (size_t)-1;
  const size_t att_bytes = cg_attention_kv(c, q, k, v, att, kc, vc, kvType, 0, n, startPos, nHeads, nGroups, headDim, scale);
  if (att_bytes == (size_t)-1) return att_bytes;
  if (!cg_matmul(c, L->dense.type, L->dense.rows, L->dense.cols, L->dense.w, att, n, xb, NULL)) return (size_t)-1;
  cg_add(c, x, xb, (size_t)n * H);
  cg_rmsnorm(c, x, L->post_norm, n, H, eps, xb);
  if (!cg_matmul(c, L->up.type, L->up.rows, L->up.cols, L->up.w, xb, n, hb, NULL)) return (size_t)-1;
  cg_swiglu(c, hb, n, ffn, hb2);
  if (!cg_matmul(c, L->down.type, L->down.rows, L->down.cols, L->down.w, hb2, n, xb, NULL)) return (size_t)-1;
  cg_add(c, x, xb, (size_t)n * H);
  return att_bytes;
}

/* ---------------------------------------------------------------- bandwidth probe */

typedef struct {
  const kernels_t *K;
  const float *buf;
  size_t n;
  double sink[64];
} bw_ctx;

#define BW_CHUNKS 64

static void bw_task(void *c, int chunk, int tid) {
  bw_ctx *b = (bw_ctx *)c;
  const size_t per = (b->n / BW_CHUNKS) & ~(size_t)31;
  const size_t start = per * (size_t)chunk;
  const size_t len = chunk == BW_CHUNKS - 1 ? b->n - start : per;
  b->sink[tid & 63] += b->K->sum_f32(b->buf + start, len);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

double cg_membw(cg_ctx *c, size_t bytes, int iters) {
  const size_t n = bytes / sizeof(float);
  float *buf = (float *)aligned_alloc(64, n * sizeof(float));
  if (!buf) return 0;
  for (size_t i = 0; i < n; i++) buf[i] = (float)(i & 7);
  bw_ctx b;
  memset(&b, 0, sizeof(b));
  b.K = c->k;
  b.buf = buf;
  b.n = n;
  double best = 0;
  for (int it = 0; it < iters; it++) {
    const double t0 = now_s();
    run(c, bw_task, &b, BW_CHUNKS);
    const double dt = now_s() - t0;
    const double gbs = (double)(n * sizeof(float)) / dt / 1e9;
    if (gbs > best) best = gbs;
  }
  free(buf);
  return best;
}

/*
 * Decode (one-token) matmul speed of the weight types in llama.cpp's Q4_K_M / Q5_K_M mixes, through
 * cg_matmul (native/ops.c) as the engine calls it: one thread (THREADS=n for more), the kernel table named on the command
 * line (then repetitions, optionally a comma list of types, and `cache` to skip the streamed figure). Two figures per type: "cache" (one 2048x2048 matrix, called repeatedly: the kernel's speed
 * per byte, timed by this thread's CPU time) and "stream" (matrices of the 1.7B shape's ffn_up size, 13696 x 2048, cycled through
 * 256 MiB so every call reads DRAM: what a decode step sees). Random blocks with sane f16 factors.
 * For BENCHMARKS.md; not a test.
 *
 * cc -O3 -std=c11 -fno-strict-aliasing -Inative tools/kq-decode-bench.c native/ops.c native/pool.c \
 *   native/batch_ops.c native/batch_kernels_avx2.c native/batch_kernels_avx512.c native/gemm_avx512.c \
 *   native/attn_avx512.c native/kernels_scalar.c native/kernels_avx2.c native/kernels_avx512.c \
 *   native/kernels_neon.c native/gemm_kquants_avx512.c native/kq16.c native/attn_decode.c native/attn_rows16_avx512.c \
 *   native/attn_bf16.c native/attn_bf16_avx512.c -lm -lpthread -o /tmp/kqbench \
 *   && taskset -c 0 /tmp/kqbench avx512vnni
 */
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "kernels.h"
#include "ops.h"

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

/* This thread's CPU time: on a shared core the in-cache figure then counts only our own cycles. */
static double cpu_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static int block_bytes(int type) {
  switch (type) {
    case WT_Q4_K: return 144;
    case WT_Q5_K: return 176;
    case WT_Q6_K: return 210;
    case WT_Q4_1: return 20;
    case WT_Q5_0: return 22;
    case WT_Q5_1: return 24;
    case WT_Q4_0: return 18;
    default: return 34; /* q8_0 */
  }
}

/* Random bytes, then each block's f16 factors (d, and dmin or m where the type has one) set to 2^-7. */
static void fill(uint8_t *w, size_t n, int type) {
  for (size_t i = 0; i < n; i++) w[i] = (uint8_t)rand();
  const int bb = block_bytes(type);
  const int at = type == WT_Q6_K ? 208 : 0;
  const int two = type == WT_Q4_K || type == WT_Q5_K || type == WT_Q4_1 || type == WT_Q5_1;
  for (size_t o = 0; o + bb <= n; o += bb) {
    w[o + at] = 0;
    w[o + at + 1] = 0x20;
    if (two) {
      w[o + at + 2] = 0;
      w[o + at + 3] = 0x20;
    }
  }
}

/* A matrix as the addon holds it: repacked where the context reads that layout, then in huge-page
 * memory (cg_alloc_weights, as loadMatrix does); other types in ordinary memory. *mapped: what
 * drop() must unmap (0: free()). */
static uint8_t *make(cg_ctx *c, int type, int rows, int cols, size_t *mapped) {
  const size_t bytes = cg_row_bytes(type, cols) * rows;
  uint8_t *w = malloc(bytes);
  *mapped = 0;
  fill(w, bytes, type);
  if (type == WT_Q4_0 || type == WT_Q8_0 || cg_kq16(c, type)) {
    uint8_t *p = cg_alloc_weights(bytes, mapped);
    if (!p) p = malloc(bytes);
    cg_repack(type, rows, cols, w, p);
    free(w);
    w = p;
  }
  return w;
}

static void drop(uint8_t *w, size_t mapped) {
  if (mapped) cg_free_weights(w, mapped);
  else free(w);
}

int main(int argc, char **argv) {
  const char *isa = argc > 1 ? argv[1] : NULL;
  const int reps = argc > 2 ? atoi(argv[2]) : 5;
  const char *only = argc > 3 ? argv[3] : NULL; /* e.g. q4_K,q6_K */
  const int stream = !(argc > 4 && strcmp(argv[4], "cache") == 0); /* "cache": skip the streamed figure */
  static const int types[] = {WT_Q4_0, WT_Q4_K, WT_Q5_K, WT_Q6_K, WT_Q4_1, WT_Q5_0, WT_Q5_1, WT_Q8_0};
  static const char *names[] = {"q4_0", "q4_K", "q5_K", "q6_K", "q4_1", "q5_0", "q5_1", "q8_0"};
  /* THREADS in the environment: more than the one thread the figures below are named for */
  const char *th = getenv("THREADS");
  cg_ctx *c = cg_ctx_create(th && atoi(th) > 0 ? atoi(th) : 1, isa);
  if (!c) {
    fprintf(stderr, "no kernel table %s on this CPU\n", isa ? isa : "(default)");
    return 1;
  }
  printf("kernels %s, %d thread(s); best of %d\n", cg_kernels(c)->name, cg_threads(c), reps);
  const int hid = 2048, ffn2 = 13696;
  float *x = malloc(sizeof(float) * 8192), *out = malloc(sizeof(float) * ffn2);
  for (int i = 0; i < 8192; i++) x[i] = rand() / (float)RAND_MAX - 0.5f;
  for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
    const int type = types[ti];
    if (only && !strstr(only, names[ti])) continue;
    /* in cache */
    size_t wmap;
    uint8_t *w = make(c, type, hid, hid, &wmap);
    const size_t bytes = cg_row_bytes(type, hid) * hid;
    double best = 1e9;
    for (int r = 0; r < reps; r++) {
      const double t0 = cpu_now();
      for (int k = 0; k < 20; k++) cg_matmul(c, type, hid, hid, w, x, 1, out, NULL);
      const double t = (cpu_now() - t0) / 20;
      if (t < best) best = t;
    }
    drop(w, wmap);
    /* streamed: enough 13696 x 2048 matrices to fill 256 MiB */
    const size_t sbytes = cg_row_bytes(type, hid) * ffn2;
    const int nm = stream ? (int)((256u << 20) / sbytes) + 1 : 0;
    uint8_t **ws = malloc(sizeof(uint8_t *) * nm);
    size_t *maps = malloc(sizeof(size_t) * (nm > 0 ? nm : 1));
    for (int k = 0; k < nm; k++) ws[k] = make(c, type, ffn2, hid, &maps[k]);
    double sbest = 1e9;
    for (int r = 0; r < reps && nm > 0; r++) {
      const double t0 = now();
      for (int k = 0; k < nm; k++) cg_matmul(c, type, ffn2, hid, ws[k], x, 1, out, NULL);
      const double t = (now() - t0) / nm;
      if (t < sbest) sbest = t;
    }
    for (int k = 0; k < nm; k++) drop(ws[k], maps[k]);
    free(ws);
    free(maps);
    printf("%-5s cache 2048x2048 %7.3f ms cpu %5.1f GB/s | stream 13696x2048 %7.3f ms %5.1f GB/s\n", names[ti], best * 1e3, bytes / best / 1e9,
           sbest * 1e3, sbytes / sbest / 1e9);
    fflush(stdout);
  }
  cg_ctx_destroy(c);
  free(x);
  free(out);
  return 0;
}

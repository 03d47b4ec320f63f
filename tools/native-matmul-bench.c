/*
 * Times cg_matmul (native/ops.c) on one weight matrix per ggml type, one thread, with the kernel
 * table named on the command line: one token (decode; best of 7 x 5 calls) and 64 tokens (prefill;
 * best of 12). Random blocks with sane f16 scales; the matrix stays in cache at the default size,
 * so this measures the kernels, not DRAM. For BENCHMARKS.md; not a test.
 *
 * cc -O3 -std=c11 -fno-strict-aliasing -Inative tools/native-matmul-bench.c native/ops.c native/pool.c \
 *   native/kernels_scalar.c native/kernels_avx2.c native/kernels_avx512.c native/kernels_neon.c \
 *   -lm -lpthread -o /tmp/mmbench && taskset -c 0 /tmp/mmbench avx512vnni 2048 2048
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

/* Random bytes, then each block's f16 factors (d, and dmin or m where the type has one) set to 0x2000 = 2^-7. */
static void fill(uint8_t *w, size_t n, int type) {
  for (size_t i = 0; i < n; i++) w[i] = (uint8_t)rand();
  const int bb = type == WT_Q4_K ? 144 : type == WT_Q5_K ? 176 : type == WT_Q6_K ? 210 : type == WT_Q5_0 ? 22 : type == WT_Q5_1 ? 24
               : type == WT_Q4_1 ? 20 : type == WT_Q4_0 ? 18 : type == WT_Q8_0 ? 34 : type == WT_Q3_K ? 110 : 84;
  const int at = type == WT_Q6_K ? 208 : type == WT_Q3_K ? 108 : type == WT_Q2_K ? 80 : 0;
  const int two = type == WT_Q4_K || type == WT_Q5_K || type == WT_Q4_1 || type == WT_Q5_1 || type == WT_Q2_K;
  for (size_t o = 0; o + bb <= n; o += bb) {
    w[o + at] = 0;
    w[o + at + 1] = 0x20;
    if (two) {
      w[o + at + 2] = 0;
      w[o + at + 3] = 0x20;
    }
  }
}

int main(int argc, char **argv) {
  const char *isa = argc > 1 ? argv[1] : NULL;
  const int rows = argc > 2 ? atoi(argv[2]) : 2048, cols = argc > 3 ? atoi(argv[3]) : 2048;
  static const int types[] = {WT_Q4_0, WT_Q8_0, WT_Q4_K, WT_Q5_K, WT_Q6_K, WT_Q5_0, WT_Q5_1, WT_Q3_K, WT_Q2_K};
  static const char *names[] = {"q4_0", "q8_0", "q4_K", "q5_K", "q6_K", "q5_0", "q5_1", "q3_K", "q2_K"};
  cg_ctx *c = cg_ctx_create(1, isa);
  if (!c) {
    fprintf(stderr, "no kernel table %s on this CPU\n", isa ? isa : "(default)");
    return 1;
  }
  printf("kernels %s, %d x %d\n", cg_kernels(c)->name, rows, cols);
  const int N = 64;
  float *x = malloc(sizeof(float) * cols * N), *out = malloc(sizeof(float) * rows * N);
  for (int i = 0; i < cols * N; i++) x[i] = rand() / (float)RAND_MAX - 0.5f;
  for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
    const int type = types[ti];
    const size_t bytes = cg_row_bytes(type, cols) * rows;
    uint8_t *w = malloc(bytes), *w2 = malloc(bytes);
    fill(w, bytes, type);
    if (type == WT_Q4_0 || type == WT_Q8_0) {
      cg_repack(type, rows, cols, w, w2); /* the layout the addon gives these types at load */
      memcpy(w, w2, bytes);
    }
    double one = 1e9, many = 1e9;
    for (int r = 0; r < 7; r++) {
      const double t0 = now();
      for (int k = 0; k < 5; k++) cg_matmul(c, type, rows, cols, w, x, 1, out, NULL);
      const double t = (now() - t0) / 5;
      if (t < one) one = t;
    }
    for (int r = 0; r < 12; r++) {
      const double t0 = now();
      cg_matmul(c, type, rows, cols, w, x, N, out, NULL);
      const double t = now() - t0;
      if (t < many) many = t;
    }
    printf("%-5s decode %7.3f ms (%5.1f GB/s)  prefill %d tokens %7.2f ms (%6.1f GFLOP/s)\n", names[ti], one * 1e3, bytes / one / 1e9, N,
           many * 1e3, 2.0 * rows * cols * N / many / 1e9);
    free(w);
    free(w2);
  }
  cg_ctx_destroy(c);
  free(x);
  free(out);
  return 0;
}

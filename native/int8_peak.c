/*
 * The machine's int8 dot-product ceiling: register-only loops of one dot-product instruction per
 * ISA (no loads, no stores, enough independent accumulators to cover the instruction latency), run
 * on 1..N threads. Prefill figures are reported as a fraction of this number (tools/bench-int8-peak).
 * One "op" is a multiply or an add: a u8 x s8 product accumulated counts 2.
 */
#define _GNU_SOURCE
#include "int8_peak.h"

#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#endif
#if defined(__aarch64__)
#include <arm_neon.h>
#endif

/* Independent accumulator chains: latency (4-5 cycles) x 2 per cycle needs about 10; more would spill
 * on the 16-register VEX ISAs (AVX2, AVX-VNNI). */
#define CHAINS 10

typedef int64_t (*peak_loop_fn)(long iters, int32_t *sink);

#if defined(__x86_64__) || defined(_M_X64)
/*
 * Each loop returns the int8 MACs it did. Written in assembly so the loop is exactly the
 * instructions named, with every operand in a register: a compiler spills accumulators on the
 * 16-register VEX ISAs and may share or hoist the work of identical chains.
 * Chains in ymm/zmm 2..11; u (0x01020304 bytes) in 0, s (0x05060708) in 1; 15 holds 16-bit ones.
 */
/* AVX-512 VNNI on 512-bit registers: 64 u8 x s8 MACs per vpdpbusd. */
static int64_t peak_avx512_zmm(long iters, int32_t *sink) {
  long n = iters;
  (void)sink;
  __asm__ volatile(
      "mov $0x01020304, %%eax\n"
      "vmovd %%eax, %%xmm0\n"
      "vpbroadcastd %%xmm0, %%zmm0\n"
      "mov $0x05060708, %%eax\n"
      "vmovd %%eax, %%xmm1\n"
      "vpbroadcastd %%xmm1, %%zmm1\n"
      "mov $0x00010001, %%eax\n"
      "vmovd %%eax, %%xmm15\n"
      "vpbroadcastd %%xmm15, %%ymm15\n"
      "vpxor %%xmm2, %%xmm2, %%xmm2\n"
      "vpxor %%xmm3, %%xmm3, %%xmm3\n"
      "vpxor %%xmm4, %%xmm4, %%xmm4\n"
      "vpxor %%xmm5, %%xmm5, %%xmm5\n"
      "vpxor %%xmm6, %%xmm6, %%xmm6\n"
      "vpxor %%xmm7, %%xmm7, %%xmm7\n"
      "vpxor %%xmm8, %%xmm8, %%xmm8\n"
      "vpxor %%xmm9, %%xmm9, %%xmm9\n"
      "vpxor %%xmm10, %%xmm10, %%xmm10\n"
      "vpxor %%xmm11, %%xmm11, %%xmm11\n"
      "1:\n"
      "vpdpbusd %%zmm1, %%zmm0, %%zmm2\n"
      "vpdpbusd %%zmm1, %%zmm0, %%zmm3\n"
      "vpdpbusd %%zmm1, %%zmm0, %%zmm4\n"
      "vpdpbusd %%zmm1, %%zmm0, %%zmm5\n"
      "vpdpbusd %%zmm1, %%zmm0, %%zmm6\n"
      "vpdpbusd %%zmm1, %%zmm0, %%zmm7\n"
      "vpdpbusd %%zmm1, %%zmm0, %%zmm8\n"
      "vpdpbusd %%zmm1, %%zmm0, %%zmm9\n"
      "vpdpbusd %%zmm1, %%zmm0, %%zmm10\n"
      "vpdpbusd %%zmm1, %%zmm0, %%zmm11\n"
      "dec %0\n"
      "jnz 1b\n"
      "vzeroupper\n"
      : "+r"(n)
      :
      : "eax", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12",
        "xmm13", "xmm14", "xmm15", "cc");
  return (int64_t)iters * CHAINS * 64;
}

/* AVX-512 VNNI (EVEX, AVX512-VL) on 256-bit registers: 32 MACs per vpdpbusd. */
static int64_t peak_avx512_ymm(long iters, int32_t *sink) {
  long n = iters;
  (void)sink;
  __asm__ volatile(
      "mov $0x01020304, %%eax\n"
      "vmovd %%eax, %%xmm0\n"
      "vpbroadcastd %%xmm0, %%ymm0\n"
      "mov $0x05060708, %%eax\n"
      "vmovd %%eax, %%xmm1\n"
      "vpbroadcastd %%xmm1, %%ymm1\n"
      "mov $0x00010001, %%eax\n"
      "vmovd %%eax, %%xmm15\n"
      "vpbroadcastd %%xmm15, %%ymm15\n"
      "vpxor %%xmm2, %%xmm2, %%xmm2\n"
      "vpxor %%xmm3, %%xmm3, %%xmm3\n"
      "vpxor %%xmm4, %%xmm4, %%xmm4\n"
      "vpxor %%xmm5, %%xmm5, %%xmm5\n"
      "vpxor %%xmm6, %%xmm6, %%xmm6\n"
      "vpxor %%xmm7, %%xmm7, %%xmm7\n"
      "vpxor %%xmm8, %%xmm8, %%xmm8\n"
      "vpxor %%xmm9, %%xmm9, %%xmm9\n"
      "vpxor %%xmm10, %%xmm10, %%xmm10\n"
      "vpxor %%xmm11, %%xmm11, %%xmm11\n"
      "1:\n"
      "vpdpbusd %%ymm1, %%ymm0, %%ymm2\n"
      "vpdpbusd %%ymm1, %%ymm0, %%ymm3\n"
      "vpdpbusd %%ymm1, %%ymm0, %%ymm4\n"
      "vpdpbusd %%ymm1, %%ymm0, %%ymm5\n"
      "vpdpbusd %%ymm1, %%ymm0, %%ymm6\n"
      "vpdpbusd %%ymm1, %%ymm0, %%ymm7\n"
      "vpdpbusd %%ymm1, %%ymm0, %%ymm8\n"
      "vpdpbusd %%ymm1, %%ymm0, %%ymm9\n"
      "vpdpbusd %%ymm1, %%ymm0, %%ymm10\n"
      "vpdpbusd %%ymm1, %%ymm0, %%ymm11\n"
      "dec %0\n"
      "jnz 1b\n"
      "vzeroupper\n"
      : "+r"(n)
      :
      : "eax", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12",
        "xmm13", "xmm14", "xmm15", "cc");
  return (int64_t)iters * CHAINS * 32;
}

/* AVX-VNNI (VEX encoding, no AVX-512 needed): 32 MACs per vpdpbusd. */
static int64_t peak_avxvnni_ymm(long iters, int32_t *sink) {
  long n = iters;
  (void)sink;
  __asm__ volatile(
      "mov $0x01020304, %%eax\n"
      "vmovd %%eax, %%xmm0\n"
      "vpbroadcastd %%xmm0, %%ymm0\n"
      "mov $0x05060708, %%eax\n"
      "vmovd %%eax, %%xmm1\n"
      "vpbroadcastd %%xmm1, %%ymm1\n"
      "mov $0x00010001, %%eax\n"
      "vmovd %%eax, %%xmm15\n"
      "vpbroadcastd %%xmm15, %%ymm15\n"
      "vpxor %%xmm2, %%xmm2, %%xmm2\n"
      "vpxor %%xmm3, %%xmm3, %%xmm3\n"
      "vpxor %%xmm4, %%xmm4, %%xmm4\n"
      "vpxor %%xmm5, %%xmm5, %%xmm5\n"
      "vpxor %%xmm6, %%xmm6, %%xmm6\n"
      "vpxor %%xmm7, %%xmm7, %%xmm7\n"
      "vpxor %%xmm8, %%xmm8, %%xmm8\n"
      "vpxor %%xmm9, %%xmm9, %%xmm9\n"
      "vpxor %%xmm10, %%xmm10, %%xmm10\n"
      "vpxor %%xmm11, %%xmm11, %%xmm11\n"
      "1:\n"
      "%{vex%} vpdpbusd %%ymm1, %%ymm0, %%ymm2\n"
      "%{vex%} vpdpbusd %%ymm1, %%ymm0, %%ymm3\n"
      "%{vex%} vpdpbusd %%ymm1, %%ymm0, %%ymm4\n"
      "%{vex%} vpdpbusd %%ymm1, %%ymm0, %%ymm5\n"
      "%{vex%} vpdpbusd %%ymm1, %%ymm0, %%ymm6\n"
      "%{vex%} vpdpbusd %%ymm1, %%ymm0, %%ymm7\n"
      "%{vex%} vpdpbusd %%ymm1, %%ymm0, %%ymm8\n"
      "%{vex%} vpdpbusd %%ymm1, %%ymm0, %%ymm9\n"
      "%{vex%} vpdpbusd %%ymm1, %%ymm0, %%ymm10\n"
      "%{vex%} vpdpbusd %%ymm1, %%ymm0, %%ymm11\n"
      "dec %0\n"
      "jnz 1b\n"
      "vzeroupper\n"
      : "+r"(n)
      :
      : "eax", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12",
        "xmm13", "xmm14", "xmm15", "cc");
  return (int64_t)iters * CHAINS * 32;
}

/* AVX2 has no int8 dot product: maddubs (u8 x s8 pairs to s16), madd against 1 (to s32), add: 32 MACs. */
static int64_t peak_avx2_ymm(long iters, int32_t *sink) {
  long n = iters;
  (void)sink;
  __asm__ volatile(
      "mov $0x01020304, %%eax\n"
      "vmovd %%eax, %%xmm0\n"
      "vpbroadcastd %%xmm0, %%ymm0\n"
      "mov $0x05060708, %%eax\n"
      "vmovd %%eax, %%xmm1\n"
      "vpbroadcastd %%xmm1, %%ymm1\n"
      "mov $0x00010001, %%eax\n"
      "vmovd %%eax, %%xmm15\n"
      "vpbroadcastd %%xmm15, %%ymm15\n"
      "vpxor %%xmm2, %%xmm2, %%xmm2\n"
      "vpxor %%xmm3, %%xmm3, %%xmm3\n"
      "vpxor %%xmm4, %%xmm4, %%xmm4\n"
      "vpxor %%xmm5, %%xmm5, %%xmm5\n"
      "vpxor %%xmm6, %%xmm6, %%xmm6\n"
      "vpxor %%xmm7, %%xmm7, %%xmm7\n"
      "vpxor %%xmm8, %%xmm8, %%xmm8\n"
      "vpxor %%xmm9, %%xmm9, %%xmm9\n"
      "vpxor %%xmm10, %%xmm10, %%xmm10\n"
      "vpxor %%xmm11, %%xmm11, %%xmm11\n"
      "1:\n"
      "vpmaddubsw %%ymm1, %%ymm0, %%ymm12\n"
      "vpmaddwd %%ymm15, %%ymm12, %%ymm12\n"
      "vpaddd %%ymm12, %%ymm2, %%ymm2\n"
      "vpmaddubsw %%ymm1, %%ymm0, %%ymm13\n"
      "vpmaddwd %%ymm15, %%ymm13, %%ymm13\n"
      "vpaddd %%ymm13, %%ymm3, %%ymm3\n"
      "vpmaddubsw %%ymm1, %%ymm0, %%ymm14\n"
      "vpmaddwd %%ymm15, %%ymm14, %%ymm14\n"
      "vpaddd %%ymm14, %%ymm4, %%ymm4\n"
      "vpmaddubsw %%ymm1, %%ymm0, %%ymm12\n"
      "vpmaddwd %%ymm15, %%ymm12, %%ymm12\n"
      "vpaddd %%ymm12, %%ymm5, %%ymm5\n"
      "vpmaddubsw %%ymm1, %%ymm0, %%ymm13\n"
      "vpmaddwd %%ymm15, %%ymm13, %%ymm13\n"
      "vpaddd %%ymm13, %%ymm6, %%ymm6\n"
      "vpmaddubsw %%ymm1, %%ymm0, %%ymm14\n"
      "vpmaddwd %%ymm15, %%ymm14, %%ymm14\n"
      "vpaddd %%ymm14, %%ymm7, %%ymm7\n"
      "vpmaddubsw %%ymm1, %%ymm0, %%ymm12\n"
      "vpmaddwd %%ymm15, %%ymm12, %%ymm12\n"
      "vpaddd %%ymm12, %%ymm8, %%ymm8\n"
      "vpmaddubsw %%ymm1, %%ymm0, %%ymm13\n"
      "vpmaddwd %%ymm15, %%ymm13, %%ymm13\n"
      "vpaddd %%ymm13, %%ymm9, %%ymm9\n"
      "vpmaddubsw %%ymm1, %%ymm0, %%ymm14\n"
      "vpmaddwd %%ymm15, %%ymm14, %%ymm14\n"
      "vpaddd %%ymm14, %%ymm10, %%ymm10\n"
      "vpmaddubsw %%ymm1, %%ymm0, %%ymm12\n"
      "vpmaddwd %%ymm15, %%ymm12, %%ymm12\n"
      "vpaddd %%ymm12, %%ymm11, %%ymm11\n"
      "dec %0\n"
      "jnz 1b\n"
      "vzeroupper\n"
      : "+r"(n)
      :
      : "eax", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12",
        "xmm13", "xmm14", "xmm15", "cc");
  return (int64_t)iters * CHAINS * 32;
}

#endif

#if defined(__aarch64__)
__attribute__((target("+dotprod"))) static int64_t peak_neon_sdot(long iters, int32_t *sink) {
  int32x4_t acc[CHAINS];
  for (int c = 0; c < CHAINS; c++) acc[c] = vdupq_n_s32(0);
  const int8x16_t u = vdupq_n_s8((int8_t)(1 + (intptr_t)sink % 3)), s = vdupq_n_s8((int8_t)(5 - (intptr_t)sink % 5));
  for (long i = 0; i < iters; i++) {
    for (int c = 0; c < CHAINS; c++) acc[c] = vdotq_s32(acc[c], u, s);
    __asm__ volatile("" : "+w"(acc[0]), "+w"(acc[1]), "+w"(acc[2]), "+w"(acc[3]));
  }
  for (int c = 1; c < CHAINS; c++) acc[0] = vaddq_s32(acc[0], acc[c]);
  *sink += vgetq_lane_s32(acc[0], 0);
  return (int64_t)iters * CHAINS * 16;
}
#endif

typedef struct {
  const char *name;
  peak_loop_fn fn;
  int (*supported)(void);
} peak_kind;

#if defined(__x86_64__) || defined(_M_X64)
static int has_avx512vnni(void) {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
         __builtin_cpu_supports("avx512vnni");
}
/* AVX-VNNI: CPUID leaf 7 subleaf 1, EAX bit 4 (older compilers' __builtin_cpu_supports lacks the name). */
static int has_avxvnni(void) {
  unsigned a = 7, b, c = 1, d;
  __asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
  __builtin_cpu_init();
  return ((a >> 4) & 1) && __builtin_cpu_supports("avx2");
}
static int has_avx2(void) {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2");
}
#endif
#if defined(__aarch64__)
int cg_neon_dotprod(void);
static int has_sdot(void) { return cg_neon_dotprod(); }
#endif

static const peak_kind KINDS[] = {
#if defined(__x86_64__) || defined(_M_X64)
    {"avx512vnni-zmm", peak_avx512_zmm, has_avx512vnni},
    {"avx512vnni-ymm", peak_avx512_ymm, has_avx512vnni},
    {"avxvnni-ymm", peak_avxvnni_ymm, has_avxvnni},
    {"avx2-ymm", peak_avx2_ymm, has_avx2},
#endif
#if defined(__aarch64__)
    {"neon-sdot", peak_neon_sdot, has_sdot},
#endif
};
#define NKINDS ((int)(sizeof(KINDS) / sizeof(KINDS[0])))

int cg_int8_peak_kinds(const char **names, int max) {
  int n = 0;
  for (int i = 0; i < NKINDS && n < max; i++)
    if (KINDS[i].supported()) names[n++] = KINDS[i].name;
  return n;
}

typedef struct {
  peak_loop_fn fn;
  long iters;
  int64_t macs;
  int32_t sink;
  pthread_barrier_t *start;
} peak_thread;

static void *peak_main(void *p) {
  peak_thread *t = (peak_thread *)p;
  pthread_barrier_wait(t->start);
  t->macs = t->fn(t->iters, &t->sink);
  return NULL;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

#define PEAK_MAX_THREADS 64

double cg_int8_peak(const char *kind, int threads, long iters) {
  const peak_kind *k = NULL;
  for (int i = 0; i < NKINDS; i++)
    if (strcmp(KINDS[i].name, kind) == 0 && KINDS[i].supported()) k = &KINDS[i];
  if (!k || threads < 1 || threads > PEAK_MAX_THREADS || iters < 1) return -1.0;
  peak_thread t[PEAK_MAX_THREADS];
  pthread_t tid[PEAK_MAX_THREADS];
  pthread_barrier_t start;
  /* the calling thread is one of the workers, so the clock starts when all are released */
  pthread_barrier_init(&start, NULL, (unsigned)threads);
  for (int i = 0; i < threads; i++) {
    memset(&t[i], 0, sizeof(t[i]));
    t[i].fn = k->fn;
    t[i].iters = iters;
    t[i].start = &start;
  }
  int started = 0;
  for (int i = 1; i < threads; i++) {
    if (pthread_create(&tid[i], NULL, peak_main, &t[i]) != 0) break;
    started++;
  }
  if (started != threads - 1) {
    /* cannot happen short of resource exhaustion; the barrier would never open */
    pthread_barrier_destroy(&start);
    return -1.0;
  }
  const double t0 = now_s();
  peak_main(&t[0]);
  for (int i = 1; i < threads; i++) pthread_join(tid[i], NULL);
  const double dt = now_s() - t0;
  pthread_barrier_destroy(&start);
  int64_t macs = 0;
  for (int i = 0; i < threads; i++) macs += t[i].macs;
  return dt > 0 ? 2.0 * (double)macs / dt : -1.0;
}

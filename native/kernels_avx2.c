/* AVX2 + FMA + F16C kernels (Haswell / Zen and later). */
#if defined(__x86_64__) || defined(_M_X64)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC target("avx2,fma,f16c")
#endif
#define KNAME kernels_avx2
#define KNAME_STR "avx2"
#include "kernels_x86.inc"
#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif

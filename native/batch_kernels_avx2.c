/* The batched-decode kernel for AVX2 + FMA + F16C (see batch_kernels_x86.inc). */
#if defined(__x86_64__) || defined(_M_X64)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC target("avx2,fma,f16c")
#endif
#define BKNAME cg_batch_q4_4_avx2
#include "batch_kernels_x86.inc"
#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif

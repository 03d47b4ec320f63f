/* The batched-decode kernel for AVX-512 VL/BW/VNNI: vpdpbusd on 256-bit registers (see batch_kernels_x86.inc). */
#if defined(__x86_64__) || defined(_M_X64)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")
#endif
#define CG_VNNI 1
#define BKNAME cg_batch_q4_4_avx512
#include "batch_kernels_x86.inc"
#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif

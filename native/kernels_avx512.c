/* AVX-512 (VL/BW/VNNI) kernels: the AVX2 code with vpdpbusd for the int8 dot products. */
#if defined(__x86_64__) || defined(_M_X64)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"))), apply_to = function)
#elif defined(__GNUC__)
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")
#endif
#define CG_VNNI 1
#define KNAME kernels_avx512
#define KNAME_STR "avx512vnni"
#include "kernels_x86.inc"
#if defined(__clang__)
#pragma clang attribute pop
#endif
#endif

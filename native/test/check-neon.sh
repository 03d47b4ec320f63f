#!/bin/sh
# Cross-compiles native/test/kernel-check.c for aarch64 and runs it under qemu user mode twice:
# -cpu max (has dotprod: tables scalar, neon, neondot) and -cpu cortex-a57 (ARMv8.0: scalar, neon).
# Needs aarch64-linux-gnu-gcc and qemu-aarch64 (Debian/Ubuntu: apt-get install gcc-aarch64-linux-gnu
# qemu-user). Correctness only: qemu timings say nothing about arm64 speed.
set -eu
cd "$(dirname "$0")/../.."
CC=${AARCH64_CC:-aarch64-linux-gnu-gcc}
QEMU=${QEMU_AARCH64:-qemu-aarch64}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$CC" -O3 -std=c11 -fno-strict-aliasing -Wall -Wno-unused-parameter -static \
  native/test/kernel-check.c native/ops.c native/pool.c native/kernels_scalar.c \
  native/kernels_avx2.c native/kernels_avx512.c native/kernels_neon.c \
  native/batch_ops.c native/batch_kernels_avx2.c native/batch_kernels_avx512.c native/gemm_avx512.c native/gemm_kquants_avx512.c native/kq16.c native/attn_avx512.c native/attn_decode.c native/attn_rows16_avx512.c native/attn_bf16.c native/attn_bf16_avx512.c \
  -lm -lpthread -o "$out/kernel-check"
echo "== qemu-aarch64 -cpu max"
"$QEMU" -cpu max "$out/kernel-check" --expect-isas scalar,neon,neondot --expect-best neondot
echo "== qemu-aarch64 -cpu cortex-a57"
"$QEMU" -cpu cortex-a57 "$out/kernel-check" --expect-isas scalar,neon --expect-best neon

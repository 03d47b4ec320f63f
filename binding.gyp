{
  "targets": [
    {
      "target_name": "chatglm_native",
      "sources": [
        "native/addon.c",
        "native/ops.c",
        "native/pool.c",
        "native/kernels_scalar.c",
        "native/kernels_avx2.c",
        "native/kernels_avx512.c",
        "native/kernels_neon.c",
        "native/batch_ops.c",
        "native/batch_kernels_avx2.c",
        "native/batch_kernels_avx512.c",
        "native/int8_peak.c",
        "native/gemm_avx512.c",
        "native/gemm_kquants_avx512.c",
        "native/kq16.c",
        "native/attn_avx512.c",
        "native/attn_decode.c",
        "native/attn_rows16_avx512.c",
        "native/attn_bf16.c",
        "native/attn_bf16_avx512.c"
      ],
      "cflags": ["-O3", "-std=c11", "-fno-strict-aliasing", "-Wall", "-Wno-unused-parameter"],
      "cflags!": ["-O2", "-O0"],
      "libraries": ["-lpthread", "-lm"],
      "xcode_settings": {
        "OTHER_CFLAGS": ["-O3", "-std=c11"]
      }
    }
  ]
}

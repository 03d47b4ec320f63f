/* The portable kernel table: the fallback on CPUs without a SIMD variant. */
#include "kernels_generic.inc"
#include "attn_decode.h"

const kernels_t kernels_scalar = {
    .name = "scalar",
    .quantize_qa = gen_quantize_qa,
    .dot_q8_0 = gen_dot_q8_0,
    .dot_q4_0 = gen_dot_q4_0,
    .x8_q4_0_1 = gen_x8_q4_0_1,
    .x8_q4_0_1g4 = gen_x8_q4_0_1g4,
    .x8_q8_0_1g4 = gen_x8_q8_0_1g4,
    .x8_q4_0_4 = gen_x8_q4_0_4,
    .x8_q8_0_1 = gen_x8_q8_0_1,
    .x8_q8_0_4 = gen_x8_q8_0_4,
    .dot_f32 = gen_dot_f32,
    .dot_f16 = gen_dot_f16,
    .dot_bf16 = gen_dot_bf16,
    .f16_to_f32 = gen_f16_to_f32,
    .f32_to_f16 = gen_f32_to_f16,
    .rmsnorm_row = gen_rmsnorm_row,
    .swiglu_row = gen_swiglu_row,
    .add = gen_add,
    .attn_tile = gen_attn_tile,
    .sum_f32 = gen_sum_f32,
    .quantize_q8_K = gen_quantize_q8_K,
    .kq_dot = gen_kq_dot,
    .lq_dot = gen_lq_dot,
    .attn_rows16 = cg_attn_rows16_scalar,
};

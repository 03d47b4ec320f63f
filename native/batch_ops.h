/*
 * Batched decode (continuous batching: one step carries one or a few new tokens of several
 * sequences): a q4_0 matmul for a few rows that keeps up with the weight stream (software
 * prefetch, 512-bit kernels where the CPU has them), and one decoder layer over every sequence
 * of a step with the one-token sequences' attention in one pool job.
 * Every row is computed with the same arithmetic in the same order as when its sequence runs
 * alone (cg_layer_kv), so batching never changes a result.
 */
#ifndef CHATGLM_BATCH_OPS_H
#define CHATGLM_BATCH_OPS_H

#include <stddef.h>
#include <stdint.h>

#include "ops.h"
#include "pool.h"

/* Rows up to which cg_matmul hands a q4_0 product to cg_batch_matmul_q4. */
#define CG_BATCH_MAX_ROWS 8

/* ops.c: the context's pool, grow-only scratch and fused-layer buffer (NULL when out of memory). */
void cg_run(cg_ctx *c, pool_task_fn fn, void *task, int nchunks);
void *cg_scratch(cg_ctx *c, size_t bytes);
float *cg_layer_buffer(cg_ctx *c, size_t floats);

/* out[n, rows] = x[n, cols] . w^T (+ bias) for repacked q4_0 w and 2 <= n <= CG_BATCH_MAX_ROWS.
 * 1 done, 0 out of memory, -1 not handled here (no kernel for this ISA): the caller computes it. */
int cg_batch_matmul_q4(cg_ctx *c, int rows, int cols, const uint8_t *w, const float *x, int n, float *out, const float *bias);

/* One sequence of a batched step: rows [rowStart, rowStart + nTokens) of x, at cache positions
 * startPos.., and this layer's K/V cache (cg_attention_kv's layout; kvType CG_KV_F16 or CG_KV_Q8_0). */
typedef struct {
  void *kc, *vc;
  int kvType, rowStart, nTokens, startPos;
} cg_batch_seq;

/* cg_layer_kv for several sequences laid out one after another in x[n, H] (n = all their rows):
 * the linear layers run over all rows at once, attention per sequence on its own cache (decode
 * rows of all sequences in one pool job). positions[n]: each row's RoPE position. Returns
 * attention's scratch bytes, or (size_t)-1 when a buffer cannot be allocated. */
size_t cg_batch_layer_kv(cg_ctx *c, float *x, int n, const cg_layer_weights *L, const cg_batch_seq *seqs, int nseqs,
                         const float *positions);

#endif

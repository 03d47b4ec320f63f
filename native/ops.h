/* Whole-tensor operations over the thread pool (what the N-API layer exposes). */
#ifndef CHATGLM_OPS_H
#define CHATGLM_OPS_H

#include <stddef.h>
#include <stdint.h>
#include "kernels.h"

/*
 * The state ops share (thread pool, kernel table, scratch buffers, RoPE table), one per backend
 * instance. Calls on one context must not overlap; different contexts run independently.
 */
typedef struct cg_ctx cg_ctx;

/* threads <= 0: all online cores. isa NULL or "": the best variant this CPU runs. NULL when the
 * variant is not available here or the pool cannot start. */
cg_ctx *cg_ctx_create(int threads, const char *isa);
/* Stops the pool and frees the buffers; the context stays usable (they come back on next use). */
void cg_ctx_release(cg_ctx *c);
void cg_ctx_destroy(cg_ctx *c);
int cg_threads(const cg_ctx *c);
const kernels_t *cg_kernels(const cg_ctx *c);
/* Names of the variants this CPU can run, best last; returns the count. */
int cg_available_isas(const char **names, int max);

size_t cg_row_bytes(int type, int cols);
/* Zeroed memory for weights, 2 MiB-aligned and advised for transparent huge pages (Linux; NULL
 * elsewhere or on failure: callers fall back to ordinary memory). `mapped` is what to free. */
void *cg_alloc_weights(size_t bytes, size_t *mapped);
void cg_free_weights(void *p, size_t mapped);
/* ggml rows -> the x8 layout matmul/embedding expect for q4_0/q8_0 (see kernels.h), or the x16
 * layout of the k-quants in kq16.h; same size. */
void cg_repack(int type, int rows, int cols, const uint8_t *src, uint8_t *dst);
/* 1 when this context's matmul and embedding expect k-quant `type` in the x16 layout (kq16.h), so
 * the loader must cg_repack it; 0 when they read ggml's layout. */
int cg_kq16(const cg_ctx *c, int type);
/* 0 when its scratch cannot be allocated. */
int cg_matmul(cg_ctx *c, int type, int rows, int cols, const uint8_t *w, const float *x, int n, float *out, const float *bias);
/* 0 when its row buffer cannot be allocated. */
int cg_embedding(cg_ctx *c, int type, int rows, int cols, const uint8_t *w, const int32_t *ids, int n, float *out);
void cg_rmsnorm(cg_ctx *c, const float *x, const float *w, int n, int dim, float eps, float *out);
/* 0 when its cos/sin table cannot be allocated. */
int cg_rope(cg_ctx *c, float *x, int n, int nHeads, int headDim, int rotaryDim, const float *positions, double base);
void cg_swiglu(cg_ctx *c, const float *x, int n, int half, float *out);
void cg_add(cg_ctx *c, float *a, const float *b, size_t len);
/* KV cache layout [position][group][headDim] in f16; appends this step's rows, then attends.
 * Returns the scratch bytes it used, or (size_t)-1 when they cannot be allocated. */
size_t cg_attention(cg_ctx *c, const float *q, const float *k, const float *v, float *out, uint16_t *kc, uint16_t *vc,
                    int rowStart, int nTokens, int startPos, int nHeads, int nGroups, int headDim,
                    float scale);
/* KV cache element types: f16, or ggml q8_0 blocks along headDim (headDim a multiple of 32). */
#define CG_KV_F16 0
#define CG_KV_Q8_0 1
/* Bytes of one group's headDim values in the cache. */
size_t cg_kv_group_bytes(int kvType, int headDim);
/* cg_attention with the cache's element type chosen by kvType (kc/vc: [position][group] rows of
 * cg_kv_group_bytes each). */
size_t cg_attention_kv(cg_ctx *c, const float *q, const float *k, const float *v, float *out, void *kc, void *vc, int kvType,
                       int rowStart, int nTokens, int startPos, int nHeads, int nGroups, int headDim, float scale);
typedef struct {
  int type, rows, cols;
  const uint8_t *w;
} cg_matrix;

/* One decoder layer's weights and shape, made once at load time (addon.c layerWeights). */
typedef struct {
  const float *input_norm, *post_norm, *qkv_bias; /* qkv_bias may be NULL */
  cg_matrix qkv, dense, up, down;
  int nHeads, nGroups, headDim, rotaryDim, ffn;
  double ropeBase;
  float eps, scale;
} cg_layer_weights;

/* One GLM decoder layer for one sequence of n tokens at positions startPos.., in place on x[n, H]
 * (H = qkv.cols); kc/vc are this layer's f16 cache. Returns attention's scratch bytes, or
 * (size_t)-1 when its buffers cannot be allocated. */
size_t cg_layer(cg_ctx *c, float *x, int n, const cg_layer_weights *L, uint16_t *kc, uint16_t *vc, int startPos,
                const float *positions);

/* cg_layer with the cache's element type chosen by kvType (see cg_attention_kv). */
size_t cg_layer_kv(cg_ctx *c, float *x, int n, const cg_layer_weights *L, void *kc, void *vc, int kvType, int startPos,
                   const float *positions);

/* Best-of-iters read bandwidth in GB/s over a buffer of `bytes`, all threads. */
double cg_membw(cg_ctx *c, size_t bytes, int iters);

#endif

/*
 * N-API binding. Every op takes a context from createContext() first. Every array argument is a JS TypedArray whose memory is used in place (no copies);
 * sizes are checked here so a wrong call throws instead of reading out of bounds.
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "int8_peak.h"
#include "ops.h"
#include "kq16.h"

#define CHECK(call)                                                      \
  do {                                                                   \
    if ((call) != napi_ok) {                                             \
      napi_throw_error(env, NULL, "chatglm native: N-API call failed"); \
      return NULL;                                                       \
    }                                                                    \
  } while (0)

#define FAIL(msg)                        \
  do {                                   \
    napi_throw_error(env, NULL, (msg));  \
    return NULL;                         \
  } while (0)

/*
 * A backend's native context (ops.c's cg_ctx: thread pool, kernel table, scratch) wrapped in a JS
 * external with its own lock. Calls on one context take turns (Node worker threads may share a
 * backend object's context); different contexts, e.g. two models in one server, run independently.
 * The type tags make a wrong object passed as a context or a layer a TypeError, not a bad pointer.
 */
typedef struct {
  cg_ctx *c;
  pthread_mutex_t lock;
} ctx_t;

static const napi_type_tag CTX_TAG = {0x63686174676c6dULL, 0x6374780000000001ULL};
static const napi_type_tag LAYER_TAG = {0x63686174676c6dULL, 0x6c61796572000001ULL};

#define LOCKED(stmt)                 \
  do {                               \
    pthread_mutex_lock(&ctx->lock);  \
    stmt;                            \
    pthread_mutex_unlock(&ctx->lock);\
  } while (0)

static void free_ctx(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  ctx_t *ctx = (ctx_t *)data;
  cg_ctx_destroy(ctx->c);
  pthread_mutex_destroy(&ctx->lock);
  free(ctx);
}

static ctx_t *get_ctx(napi_env env, napi_value v) {
  bool ok = false;
  void *data = NULL;
  if (napi_check_object_type_tag(env, v, &CTX_TAG, &ok) != napi_ok || !ok || napi_get_value_external(env, v, &data) != napi_ok) {
    napi_throw_type_error(env, NULL, "chatglm native: the first argument must be a context from createContext()");
    return NULL;
  }
  return (ctx_t *)data;
}

/* Declares argc and a[] (the arguments after the context) and ctx, for an op taking K arguments. */
#define CTX_ARGS(K)                                               \
  size_t argc = (K) + 1;                                          \
  napi_value all_[(K) + 1];                                       \
  CHECK(napi_get_cb_info(env, info, &argc, all_, NULL, NULL));    \
  if (argc < 1) FAIL("chatglm native: missing context argument"); \
  ctx_t *ctx = get_ctx(env, all_[0]);                             \
  if (!ctx) return NULL;                                          \
  napi_value *a = all_ + 1;                                       \
  argc -= 1;

typedef struct {
  void *data;
  size_t bytes;
  int present;
} arr_t;

/* Reads argument i as a typed array of the given type (or null/undefined when optional). */
static int get_arr(napi_env env, napi_value v, napi_typedarray_type want, int optional, arr_t *out, const char *what) {
  napi_valuetype vt;
  out->data = NULL;
  out->bytes = 0;
  out->present = 0;
  if (napi_typeof(env, v, &vt) != napi_ok) return 0;
  if (optional && (vt == napi_null || vt == napi_undefined)) return 1;
  bool is_ta = false;
  napi_is_typedarray(env, v, &is_ta);
  char msg[160];
  if (!is_ta) {
    snprintf(msg, sizeof msg, "chatglm native: %s must be a typed array", what);
    napi_throw_type_error(env, NULL, msg);
    return 0;
  }
  napi_typedarray_type type;
  size_t length, offset;
  napi_value ab;
  void *data;
  if (napi_get_typedarray_info(env, v, &type, &length, &data, &ab, &offset) != napi_ok) return 0;
  if (type != want) {
    snprintf(msg, sizeof msg, "chatglm native: %s has the wrong typed array type", what);
    napi_throw_type_error(env, NULL, msg);
    return 0;
  }
  size_t el = 1;
  if (type == napi_float32_array || type == napi_int32_array) el = 4;
  else if (type == napi_uint16_array) el = 2;
  out->data = data;
  out->bytes = length * el;
  out->present = 1;
  return 1;
}

static int get_i32(napi_env env, napi_value v, int32_t *out) {
  return napi_get_value_int32(env, v, out) == napi_ok;
}
static int get_f64(napi_env env, napi_value v, double *out) {
  return napi_get_value_double(env, v, out) == napi_ok;
}

static int need(napi_env env, const arr_t *a, size_t bytes, const char *what) {
  if (a->bytes < bytes) {
    char msg[160];
    snprintf(msg, sizeof msg, "chatglm native: %s too small (%zu bytes, need %zu)", what, a->bytes, bytes);
    napi_throw_range_error(env, NULL, msg);
    return 0;
  }
  return 1;
}

/* A JS array of the k C strings in names. */
static napi_value string_array(napi_env env, const char *const *names, int k) {
  napi_value arr;
  napi_create_array_with_length(env, (size_t)k, &arr);
  for (int i = 0; i < k; i++) {
    napi_value e;
    napi_create_string_utf8(env, names[i], NAPI_AUTO_LENGTH, &e);
    napi_set_element(env, arr, (uint32_t)i, e);
  }
  return arr;
}

static napi_value isa_list(napi_env env) {
  const char *names[8];
  const int k = cg_available_isas(names, 8);
  return string_array(env, names, k);
}

/* isas() -> names of the kernel variants this CPU runs, best last */
static napi_value js_isas(napi_env env, napi_callback_info info) {
  (void)info;
  return isa_list(env);
}

/* createContext(threads, isa) -> context; threads 0 = all cores, isa "" = the best variant */
static napi_value js_create_context(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value a[2];
  CHECK(napi_get_cb_info(env, info, &argc, a, NULL, NULL));
  int32_t threads = 0;
  char isa[32] = {0};
  size_t len = 0;
  if (argc < 2 || !get_i32(env, a[0], &threads) || napi_get_value_string_utf8(env, a[1], isa, sizeof isa, &len) != napi_ok)
    FAIL("createContext(threads, isa)");
  ctx_t *ctx = (ctx_t *)calloc(1, sizeof(ctx_t));
  if (!ctx) FAIL("chatglm native: out of memory");
  ctx->c = cg_ctx_create(threads, isa);
  if (!ctx->c) {
    free(ctx);
    FAIL("chatglm native: that kernel variant is not available on this CPU, or the thread pool could not start");
  }
  pthread_mutex_init(&ctx->lock, NULL);
  napi_value ext;
  if (napi_create_external(env, ctx, free_ctx, NULL, &ext) != napi_ok) {
    free_ctx(env, ctx, NULL);
    FAIL("chatglm native: N-API call failed");
  }
  CHECK(napi_type_tag_object(env, ext, &CTX_TAG));
  return ext;
}

/* info(ctx) -> {isa, threads, isas} */
static napi_value js_info(napi_env env, napi_callback_info info) {
  CTX_ARGS(0);
  (void)a;
  napi_value obj, s, n;
  const char *isa;
  int threads;
  LOCKED(isa = cg_kernels(ctx->c)->name; threads = cg_threads(ctx->c));
  napi_create_object(env, &obj);
  napi_create_string_utf8(env, isa, NAPI_AUTO_LENGTH, &s);
  napi_set_named_property(env, obj, "isa", s);
  napi_create_int32(env, threads, &n);
  napi_set_named_property(env, obj, "threads", n);
  napi_set_named_property(env, obj, "isas", isa_list(env));
  /* the weight types this context reads repacked (loadMatrix must call repack for them) */
  napi_value types;
  napi_create_array(env, &types);
  uint32_t nt = 0;
  for (int t = 0; t <= WT_LAST; t++) {
    int packed;
    LOCKED(packed = t == WT_Q4_0 || t == WT_Q8_0 || cg_kq16(ctx->c, t));
    if (!packed) continue;
    napi_create_int32(env, t, &n);
    napi_set_element(env, types, nt++, n);
  }
  napi_set_named_property(env, obj, "repackTypes", types);
  return obj;
}

/* release(ctx): stops the context's threads and frees its buffers now instead of at garbage collection */
static napi_value js_release(napi_env env, napi_callback_info info) {
  CTX_ARGS(0);
  (void)a;
  LOCKED(cg_ctx_release(ctx->c));
  return NULL;
}

/* matmul(ctx, type, rows, cols, w:Uint8Array, x:Float32Array, n, out:Float32Array, bias:Float32Array|null) */
static napi_value js_matmul(napi_env env, napi_callback_info info) {
  CTX_ARGS(8);
  if (argc < 7) FAIL("matmul: expected 8 arguments");
  int32_t type, rows, cols, n;
  if (!get_i32(env, a[0], &type) || !get_i32(env, a[1], &rows) || !get_i32(env, a[2], &cols) || !get_i32(env, a[5], &n))
    FAIL("matmul: bad integer argument");
  if (type < WT_F32 || type > WT_LAST || rows <= 0 || cols <= 0 || n < 0) FAIL("matmul: bad shape or type");
  if ((type == WT_Q8_0 || type == WT_Q4_0 || WT_IS_LEGACY(type)) && cols % QK != 0) FAIL("matmul: quantized cols must be a multiple of 32");
  if (WT_IS_KQUANT(type) && cols % QK_K != 0) FAIL("matmul: k-quant cols must be a multiple of 256");
  arr_t w, x, out, bias;
  if (!get_arr(env, a[3], napi_uint8_array, 0, &w, "w")) return NULL;
  if (!get_arr(env, a[4], napi_float32_array, 0, &x, "x")) return NULL;
  if (!get_arr(env, a[6], napi_float32_array, 0, &out, "out")) return NULL;
  if (argc >= 8) {
    if (!get_arr(env, a[7], napi_float32_array, 1, &bias, "bias")) return NULL;
  } else {
    bias.present = 0;
    bias.data = NULL;
  }
  if (!need(env, &w, cg_row_bytes(type, cols) * (size_t)rows, "w")) return NULL;
  if (!need(env, &x, (size_t)n * cols * 4, "x")) return NULL;
  if (!need(env, &out, (size_t)n * rows * 4, "out")) return NULL;
  if (bias.present && !need(env, &bias, (size_t)rows * 4, "bias")) return NULL;
  if (n == 0) return NULL;
  int ok;
  LOCKED(ok = cg_matmul(ctx->c, type, rows, cols, (const uint8_t *)w.data, (const float *)x.data, n, (float *)out.data,
                        bias.present ? (const float *)bias.data : NULL));
  if (!ok) FAIL("matmul: out of memory");
  return NULL;
}

/* repack(type, rows, cols, src:Uint8Array, dst:Uint8Array): q4_0/q8_0 rows -> x8 layout, k-quants -> x16 (kq16.h) */
static napi_value js_repack(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value a[5];
  CHECK(napi_get_cb_info(env, info, &argc, a, NULL, NULL));
  if (argc < 5) FAIL("repack: expected 5 arguments");
  int32_t type, rows, cols;
  if (!get_i32(env, a[0], &type) || !get_i32(env, a[1], &rows) || !get_i32(env, a[2], &cols)) FAIL("repack: bad integer argument");
  const int kq = cg_kq16_type(type);
  if ((type != WT_Q8_0 && type != WT_Q4_0 && !kq) || rows <= 0 || cols <= 0 || cols % (WT_IS_KQUANT(type) ? QK_K : QK) != 0) FAIL("repack: bad shape or type");
  arr_t src, dst;
  if (!get_arr(env, a[3], napi_uint8_array, 0, &src, "src")) return NULL;
  if (!get_arr(env, a[4], napi_uint8_array, 0, &dst, "dst")) return NULL;
  const size_t bytes = cg_row_bytes(type, cols) * (size_t)rows;
  if (!need(env, &src, bytes, "src") || !need(env, &dst, bytes, "dst")) return NULL;
  (cg_repack(type, rows, cols, (const uint8_t *)src.data, (uint8_t *)dst.data));
  return NULL;
}

static void free_weights(napi_env env, void *data, void *hint) {
  const size_t mapped = (size_t)(uintptr_t)hint;
  int64_t ignored;
  napi_adjust_external_memory(env, -(int64_t)mapped, &ignored);
  cg_free_weights(data, mapped);
}

/*
 * allocWeights(bytes) -> Uint8Array | null: zeroed memory for repacked weights in transparent huge
 * pages (see cg_alloc_weights); null where that is not available, and the caller uses a plain array.
 */
static napi_value js_alloc_weights(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value a[1];
  CHECK(napi_get_cb_info(env, info, &argc, a, NULL, NULL));
  double want;
  if (argc < 1 || !get_f64(env, a[0], &want) || !(want > 0) || want > 9007199254740991.0) FAIL("allocWeights: bad size");
  const size_t bytes = (size_t)want;
  napi_value nul;
  napi_get_null(env, &nul);
  size_t mapped = 0;
  void *p = cg_alloc_weights(bytes, &mapped);
  if (!p) return nul;
  napi_value ab, ta;
  if (napi_create_external_arraybuffer(env, p, bytes, free_weights, (void *)(uintptr_t)mapped, &ab) != napi_ok) {
    /* Runtimes that refuse external buffers (e.g. a V8 sandbox) get the plain-array fallback. */
    cg_free_weights(p, mapped);
    const napi_extended_error_info *ignored;
    napi_get_last_error_info(env, &ignored);
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (pending) {
      napi_value e;
      napi_get_and_clear_last_exception(env, &e);
    }
    return nul;
  }
  int64_t ignored;
  napi_adjust_external_memory(env, (int64_t)mapped, &ignored);
  CHECK(napi_create_typedarray(env, napi_uint8_array, bytes, ab, 0, &ta));
  return ta;
}

/* embedding(ctx, type, rows, cols, w:Uint8Array, ids:Int32Array, out:Float32Array) */
static napi_value js_embedding(napi_env env, napi_callback_info info) {
  CTX_ARGS(6);
  if (argc < 6) FAIL("embedding: expected 6 arguments");
  int32_t type, rows, cols;
  if (!get_i32(env, a[0], &type) || !get_i32(env, a[1], &rows) || !get_i32(env, a[2], &cols)) FAIL("embedding: bad integer argument");
  if (type < WT_F32 || type > WT_LAST || rows <= 0 || cols <= 0) FAIL("embedding: bad shape or type");
  if ((type == WT_Q8_0 || type == WT_Q4_0 || WT_IS_LEGACY(type)) && cols % QK != 0) FAIL("embedding: quantized cols must be a multiple of 32");
  if (WT_IS_KQUANT(type) && cols % QK_K != 0) FAIL("embedding: k-quant cols must be a multiple of 256");
  arr_t w, ids, out;
  if (!get_arr(env, a[3], napi_uint8_array, 0, &w, "w")) return NULL;
  if (!get_arr(env, a[4], napi_int32_array, 0, &ids, "ids")) return NULL;
  if (!get_arr(env, a[5], napi_float32_array, 0, &out, "out")) return NULL;
  const int n = (int)(ids.bytes / 4);
  if (!need(env, &w, cg_row_bytes(type, cols) * (size_t)rows, "w")) return NULL;
  if (!need(env, &out, (size_t)n * cols * 4, "out")) return NULL;
  const int32_t *id = (const int32_t *)ids.data;
  for (int i = 0; i < n; i++)
    if (id[i] < 0 || id[i] >= rows) {
      napi_throw_range_error(env, NULL, "chatglm native: token id out of range of the embedding");
      return NULL;
    }
  int ok;
  LOCKED(ok = cg_embedding(ctx->c, type, rows, cols, (const uint8_t *)w.data, id, n, (float *)out.data));
  if (!ok) FAIL("embedding: out of memory");
  return NULL;
}

/* rmsnorm(ctx, x, w, n, dim, eps, out) */
static napi_value js_rmsnorm(napi_env env, napi_callback_info info) {
  CTX_ARGS(6);
  if (argc < 6) FAIL("rmsnorm: expected 6 arguments");
  int32_t n, dim;
  double eps;
  if (!get_i32(env, a[2], &n) || !get_i32(env, a[3], &dim) || !get_f64(env, a[4], &eps)) FAIL("rmsnorm: bad number");
  arr_t x, w, out;
  if (!get_arr(env, a[0], napi_float32_array, 0, &x, "x")) return NULL;
  if (!get_arr(env, a[1], napi_float32_array, 0, &w, "weight")) return NULL;
  if (!get_arr(env, a[5], napi_float32_array, 0, &out, "out")) return NULL;
  if (n < 0 || dim <= 0) FAIL("rmsnorm: bad shape");
  if (!need(env, &x, (size_t)n * dim * 4, "x") || !need(env, &w, (size_t)dim * 4, "weight") ||
      !need(env, &out, (size_t)n * dim * 4, "out"))
    return NULL;
  LOCKED(cg_rmsnorm(ctx->c, (const float *)x.data, (const float *)w.data, n, dim, (float)eps, (float *)out.data));
  return NULL;
}

/* rope(ctx, x, n, nHeads, headDim, rotaryDim, positions, base) */
static napi_value js_rope(napi_env env, napi_callback_info info) {
  CTX_ARGS(7);
  if (argc < 7) FAIL("rope: expected 7 arguments");
  int32_t n, nh, hd, rd;
  double base;
  if (!get_i32(env, a[1], &n) || !get_i32(env, a[2], &nh) || !get_i32(env, a[3], &hd) || !get_i32(env, a[4], &rd) ||
      !get_f64(env, a[6], &base))
    FAIL("rope: bad number");
  arr_t x, pos;
  if (!get_arr(env, a[0], napi_float32_array, 0, &x, "x")) return NULL;
  if (!get_arr(env, a[5], napi_float32_array, 0, &pos, "positions")) return NULL;
  if (n < 0 || nh <= 0 || hd <= 0 || rd < 0 || rd > hd || rd % 2 != 0) FAIL("rope: bad shape");
  if (!need(env, &x, (size_t)n * nh * hd * 4, "x") || !need(env, &pos, (size_t)n * 4, "positions")) return NULL;
  int ok;
  LOCKED(ok = cg_rope(ctx->c, (float *)x.data, n, nh, hd, rd, (const float *)pos.data, base));
  if (!ok) FAIL("rope: out of memory");
  return NULL;
}

/* swiglu(ctx, x, n, half, out) */
static napi_value js_swiglu(napi_env env, napi_callback_info info) {
  CTX_ARGS(4);
  if (argc < 4) FAIL("swiglu: expected 4 arguments");
  int32_t n, half;
  if (!get_i32(env, a[1], &n) || !get_i32(env, a[2], &half)) FAIL("swiglu: bad number");
  arr_t x, out;
  if (!get_arr(env, a[0], napi_float32_array, 0, &x, "x")) return NULL;
  if (!get_arr(env, a[3], napi_float32_array, 0, &out, "out")) return NULL;
  if (n < 0 || half <= 0) FAIL("swiglu: bad shape");
  if (!need(env, &x, (size_t)n * 2 * half * 4, "x") || !need(env, &out, (size_t)n * half * 4, "out")) return NULL;
  LOCKED(cg_swiglu(ctx->c, (const float *)x.data, n, half, (float *)out.data));
  return NULL;
}

/* add(ctx, a, b, len) */
static napi_value js_add(napi_env env, napi_callback_info info) {
  CTX_ARGS(3);
  if (argc < 3) FAIL("add: expected 3 arguments");
  int32_t len;
  if (!get_i32(env, a[2], &len) || len < 0) FAIL("add: bad length");
  arr_t x, y;
  if (!get_arr(env, a[0], napi_float32_array, 0, &x, "a")) return NULL;
  if (!get_arr(env, a[1], napi_float32_array, 0, &y, "b")) return NULL;
  if (!need(env, &x, (size_t)len * 4, "a") || !need(env, &y, (size_t)len * 4, "b")) return NULL;
  LOCKED(cg_add(ctx->c, (float *)x.data, (const float *)y.data, (size_t)len));
  return NULL;
}

/*
 * attention(ctx, q, k, v, out, kc:Uint16Array, vc:Uint16Array, positions, rowStart, nTokens, startPos,
 *           nHeads, nGroups, headDim, scale) -> scratch bytes
 * kc/vc hold `positions` slots laid out [position][group][headDim] in f16.
 */
static napi_value js_attention(napi_env env, napi_callback_info info) {
  CTX_ARGS(15);
  if (argc < 14) FAIL("attention: expected 14 arguments");
  /* Optional 15th argument: the cache's element type (0 f16 in Uint16Arrays, 1 q8_0 in Uint8Arrays). */
  int32_t kvType = 0;
  if (argc >= 15 && (!get_i32(env, a[14], &kvType) || (kvType != CG_KV_F16 && kvType != CG_KV_Q8_0))) FAIL("attention: bad KV type");
  int32_t cap, rowStart, nTok, startPos, nh, ng, hd;
  double scale;
  if (!get_i32(env, a[6], &cap) || !get_i32(env, a[7], &rowStart) || !get_i32(env, a[8], &nTok) ||
      !get_i32(env, a[9], &startPos) || !get_i32(env, a[10], &nh) || !get_i32(env, a[11], &ng) ||
      !get_i32(env, a[12], &hd) || !get_f64(env, a[13], &scale))
    FAIL("attention: bad number");
  if (nh <= 0 || ng <= 0 || nh % ng != 0 || hd <= 0 || rowStart < 0 || nTok < 0 || startPos < 0)
    FAIL("attention: bad shape");
  if (nh / ng > 256) FAIL("attention: more than 256 query heads per KV group");
  if (kvType == CG_KV_Q8_0 && hd % 32 != 0) FAIL("attention: a q8_0 KV cache needs a head size that is a multiple of 32");
  if ((int64_t)startPos + nTok > cap) {
    napi_throw_range_error(env, NULL, "chatglm native: KV cache capacity exceeded");
    return NULL;
  }
  arr_t q, k, v, out, kc, vc;
  if (!get_arr(env, a[0], napi_float32_array, 0, &q, "q")) return NULL;
  if (!get_arr(env, a[1], napi_float32_array, 0, &k, "k")) return NULL;
  if (!get_arr(env, a[2], napi_float32_array, 0, &v, "v")) return NULL;
  if (!get_arr(env, a[3], napi_float32_array, 0, &out, "out")) return NULL;
  const napi_typedarray_type cacheType = kvType == CG_KV_Q8_0 ? napi_uint8_array : napi_uint16_array;
  if (!get_arr(env, a[4], cacheType, 0, &kc, "k cache")) return NULL;
  if (!get_arr(env, a[5], cacheType, 0, &vc, "v cache")) return NULL;
  const size_t cacheBytes = (size_t)cap * ng * cg_kv_group_bytes(kvType, hd);
  const size_t rowsEnd = (size_t)rowStart + nTok;
  if (!need(env, &q, rowsEnd * nh * hd * 4, "q") || !need(env, &out, rowsEnd * nh * hd * 4, "out") ||
      !need(env, &k, rowsEnd * ng * hd * 4, "k") || !need(env, &v, rowsEnd * ng * hd * 4, "v") ||
      !need(env, &kc, cacheBytes, "k cache") || !need(env, &vc, cacheBytes, "v cache"))
    return NULL;
  size_t bytes = 0;
  if (nTok > 0)
    LOCKED(bytes = cg_attention_kv(ctx->c, (const float *)q.data, (const float *)k.data, (const float *)v.data, (float *)out.data,
                                   kc.data, vc.data, kvType, rowStart, nTok, startPos, nh, ng, hd, (float)scale));
  if (bytes == (size_t)-1) FAIL("attention: out of memory");
  napi_value r;
  napi_create_double(env, (double)bytes, &r);
  return r;
}

static int get_type(napi_env env, napi_value v, int32_t *type) {
  return get_i32(env, v, type) && *type >= WT_F32 && *type <= WT_LAST;
}

/* One matrix argument pair (type, bytes) of layer(), checked against the shape the layer needs. */
static int get_matrix(napi_env env, napi_value tv, napi_value wv, int rows, int cols, cg_matrix *m, const char *what) {
  int32_t type;
  char msg[160];
  if (!get_type(env, tv, &type)) {
    snprintf(msg, sizeof msg, "layer: bad weight type for %s", what);
    napi_throw_error(env, NULL, msg);
    return 0;
  }
  if (((type == WT_Q8_0 || type == WT_Q4_0 || WT_IS_LEGACY(type)) && cols % QK != 0) || (WT_IS_KQUANT(type) && cols % QK_K != 0)) {
    snprintf(msg, sizeof msg, "layer: %s has %d columns, not a whole number of %s blocks", what, cols, WT_IS_KQUANT(type) ? "256-element" : "32-element");
    napi_throw_error(env, NULL, msg);
    return 0;
  }
  arr_t w;
  if (!get_arr(env, wv, napi_uint8_array, 0, &w, what)) return 0;
  if (!need(env, &w, cg_row_bytes(type, cols) * (size_t)rows, what)) return 0;
  m->type = type;
  m->rows = rows;
  m->cols = cols;
  m->w = (const uint8_t *)w.data;
  return 1;
}

/*
 * A decoder layer's weights and shape, checked once at load time. The JS arrays it points into are
 * held by references for as long as the handle lives, so the pointers stay valid.
 */
#define LAYER_ARRAYS 7
typedef struct {
  cg_layer_weights L;
  int hidden;
  napi_ref refs[LAYER_ARRAYS];
} layer_t;

static void free_layer(napi_env env, void *data, void *hint) {
  (void)hint;
  layer_t *h = (layer_t *)data;
  for (int i = 0; i < LAYER_ARRAYS; i++)
    if (h->refs[i]) napi_delete_reference(env, h->refs[i]);
  free(h);
}

/*
 * layerWeights(inputNorm, postNorm, qkvBias|null, qkvType, qkvW, denseType, denseW, upType, upW,
 *              downType, downW, nHeads, nGroups, headDim, rotaryDim, ropeBase, eps, scale, hidden, ffn)
 *   -> layer handle (q4_0/q8_0 weights already repacked)
 */
static napi_value js_layer_weights(napi_env env, napi_callback_info info) {
  size_t argc = 20;
  napi_value a[20];
  CHECK(napi_get_cb_info(env, info, &argc, a, NULL, NULL));
  if (argc < 20) FAIL("layerWeights: expected 20 arguments");
  int32_t nh, ng, hd, rd, H, ffn;
  double ropeBase, eps, scale;
  if (!get_i32(env, a[11], &nh) || !get_i32(env, a[12], &ng) || !get_i32(env, a[13], &hd) || !get_i32(env, a[14], &rd) ||
      !get_f64(env, a[15], &ropeBase) || !get_f64(env, a[16], &eps) || !get_f64(env, a[17], &scale) || !get_i32(env, a[18], &H) ||
      !get_i32(env, a[19], &ffn))
    FAIL("layerWeights: bad number");
  if (nh <= 0 || ng <= 0 || nh % ng != 0 || hd <= 0 || rd < 0 || rd > hd || rd % 2 != 0 || H <= 0 || ffn <= 0)
    FAIL("layerWeights: bad shape");
  if (nh / ng > 256) FAIL("layerWeights: more than 256 query heads per KV group");
  /* The shapes below are ints: refuse any that would wrap, rather than size buffers from a wrapped value. */
  if ((int64_t)nh * hd + 2 * (int64_t)ng * hd > INT32_MAX || 2 * (int64_t)ffn > INT32_MAX) FAIL("layerWeights: shape too large");
  const int qDim = nh * hd, kvDim = ng * hd;
  arr_t inorm, pnorm, bias;
  if (!get_arr(env, a[0], napi_float32_array, 0, &inorm, "input norm")) return NULL;
  if (!get_arr(env, a[1], napi_float32_array, 0, &pnorm, "post norm")) return NULL;
  if (!get_arr(env, a[2], napi_float32_array, 1, &bias, "qkv bias")) return NULL;
  if (!need(env, &inorm, (size_t)H * 4, "input norm") || !need(env, &pnorm, (size_t)H * 4, "post norm")) return NULL;
  if (bias.present && !need(env, &bias, (size_t)(qDim + 2 * kvDim) * 4, "qkv bias")) return NULL;
  layer_t *h = (layer_t *)calloc(1, sizeof(layer_t));
  if (!h) FAIL("layerWeights: out of memory");
  cg_layer_weights *L = &h->L;
  L->input_norm = (const float *)inorm.data;
  L->post_norm = (const float *)pnorm.data;
  L->qkv_bias = bias.present ? (const float *)bias.data : NULL;
  if (!get_matrix(env, a[3], a[4], qDim + 2 * kvDim, H, &L->qkv, "qkv") || !get_matrix(env, a[5], a[6], H, qDim, &L->dense, "dense") ||
      !get_matrix(env, a[7], a[8], 2 * ffn, H, &L->up, "up") || !get_matrix(env, a[9], a[10], H, ffn, &L->down, "down")) {
    free(h);
    return NULL;
  }
  L->nHeads = nh;
  L->nGroups = ng;
  L->headDim = hd;
  L->rotaryDim = rd;
  L->ropeBase = ropeBase;
  L->eps = (float)eps;
  L->scale = (float)scale;
  L->ffn = ffn;
  h->hidden = H;
  const int held[LAYER_ARRAYS] = {0, 1, 2, 4, 6, 8, 10};
  napi_value ext;
  if (napi_create_external(env, h, free_layer, NULL, &ext) != napi_ok) {
    free(h);
    FAIL("chatglm native: N-API call failed");
  }
  for (int i = 0; i < LAYER_ARRAYS; i++) {
    if (i == 2 && !bias.present) continue;
    CHECK(napi_create_reference(env, a[held[i]], 1, &h->refs[i]));
  }
  CHECK(napi_type_tag_object(env, ext, &LAYER_TAG));
  return ext;
}

/*
 * layer(ctx, handle, x, n, kc, vc, positions(capacity), startPos, pos:Float32Array) -> attention scratch bytes
 * One GLM decoder layer for one sequence, in place on x[n, hidden].
 */
static napi_value js_layer(napi_env env, napi_callback_info info) {
  CTX_ARGS(9);
  if (argc < 8) FAIL("layer: expected 9 arguments");
  /* Optional last argument: the cache's element type, as for attention. */
  int32_t kvType = 0;
  if (argc >= 9 && (!get_i32(env, a[8], &kvType) || (kvType != CG_KV_F16 && kvType != CG_KV_Q8_0))) FAIL("layer: bad KV type");
  bool tagged = false;
  void *hp = NULL;
  if (napi_check_object_type_tag(env, a[0], &LAYER_TAG, &tagged) != napi_ok || !tagged || napi_get_value_external(env, a[0], &hp) != napi_ok) {
    napi_throw_type_error(env, NULL, "chatglm native: layer needs a handle from layerWeights()");
    return NULL;
  }
  const layer_t *h = (const layer_t *)hp;
  int32_t n, cap, startPos;
  if (!get_i32(env, a[2], &n) || !get_i32(env, a[5], &cap) || !get_i32(env, a[6], &startPos)) FAIL("layer: bad number");
  if (n <= 0 || startPos < 0 || cap < 0) FAIL("layer: bad shape");
  if ((int64_t)startPos + n > cap) {
    napi_throw_range_error(env, NULL, "chatglm native: KV cache capacity exceeded");
    return NULL;
  }
  if (kvType == CG_KV_Q8_0 && h->L.headDim % 32 != 0) FAIL("layer: a q8_0 KV cache needs a head size that is a multiple of 32");
  const size_t kvRow = (size_t)h->L.nGroups * cg_kv_group_bytes(kvType, h->L.headDim);
  const napi_typedarray_type cacheType = kvType == CG_KV_Q8_0 ? napi_uint8_array : napi_uint16_array;
  arr_t x, kc, vc, pos;
  if (!get_arr(env, a[1], napi_float32_array, 0, &x, "x")) return NULL;
  if (!get_arr(env, a[3], cacheType, 0, &kc, "k cache")) return NULL;
  if (!get_arr(env, a[4], cacheType, 0, &vc, "v cache")) return NULL;
  if (!get_arr(env, a[7], napi_float32_array, 0, &pos, "positions")) return NULL;
  if (!need(env, &x, (size_t)n * h->hidden * 4, "x") || !need(env, &pos, (size_t)n * 4, "positions") ||
      !need(env, &kc, (size_t)cap * kvRow, "k cache") || !need(env, &vc, (size_t)cap * kvRow, "v cache"))
    return NULL;
  size_t bytes;
  LOCKED(bytes = cg_layer_kv(ctx->c, (float *)x.data, n, &h->L, kc.data, vc.data, kvType, startPos, (const float *)pos.data));
  if (bytes == (size_t)-1) FAIL("layer: out of memory");
  napi_value r;
  napi_create_double(env, (double)bytes, &r);
  return r;
}

/* membw(ctx, mib, iters) -> GB/s */
static napi_value js_membw(napi_env env, napi_callback_info info) {
  CTX_ARGS(2);
  int32_t mib = 1024, iters = 5;
  if (argc >= 1) get_i32(env, a[0], &mib);
  if (argc >= 2) get_i32(env, a[1], &iters);
  if (mib <= 0 || iters <= 0) FAIL("membw: bad arguments");
  napi_value r;
  double gbps;
  LOCKED(gbps = cg_membw(ctx->c, (size_t)mib << 20, iters));
  napi_create_double(env, gbps, &r);
  return r;
}

#include "batch_addon.inc"
/* int8PeakKinds() -> the int8 peak loops this CPU runs; int8Peak(kind, threads, iters) -> ops/s (int8_peak.c) */
static napi_value js_int8_peak_kinds(napi_env env, napi_callback_info info) {
  (void)info;
  const char *names[8];
  const int k = cg_int8_peak_kinds(names, 8);
  return string_array(env, names, k);
}

static napi_value js_int8_peak(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value a[3];
  CHECK(napi_get_cb_info(env, info, &argc, a, NULL, NULL));
  char kind[64] = "";
  size_t len = 0;
  int32_t threads = 1;
  double iters = 0;
  if (argc < 3 || napi_get_value_string_utf8(env, a[0], kind, sizeof kind, &len) != napi_ok || !get_i32(env, a[1], &threads) ||
      !get_f64(env, a[2], &iters))
    FAIL("int8Peak(kind, threads, iters): bad arguments");
  const double ops = cg_int8_peak(kind, threads, (long)iters);
  if (ops < 0) FAIL("int8Peak: unknown kind for this CPU, or bad thread/iteration count");
  napi_value r;
  napi_create_double(env, ops, &r);
  return r;
}

static napi_value init_module(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"isas", NULL, js_isas, NULL, NULL, NULL, napi_default, NULL},
      {"createContext", NULL, js_create_context, NULL, NULL, NULL, napi_default, NULL},
      {"info", NULL, js_info, NULL, NULL, NULL, napi_default, NULL},
      {"release", NULL, js_release, NULL, NULL, NULL, napi_default, NULL},
      {"matmul", NULL, js_matmul, NULL, NULL, NULL, napi_default, NULL},
      {"repack", NULL, js_repack, NULL, NULL, NULL, napi_default, NULL},
      {"allocWeights", NULL, js_alloc_weights, NULL, NULL, NULL, napi_default, NULL},
      {"embedding", NULL, js_embedding, NULL, NULL, NULL, napi_default, NULL},
      {"rmsnorm", NULL, js_rmsnorm, NULL, NULL, NULL, napi_default, NULL},
      {"rope", NULL, js_rope, NULL, NULL, NULL, napi_default, NULL},
      {"swiglu", NULL, js_swiglu, NULL, NULL, NULL, napi_default, NULL},
      {"add", NULL, js_add, NULL, NULL, NULL, napi_default, NULL},
      {"attention", NULL, js_attention, NULL, NULL, NULL, napi_default, NULL},
      {"layerWeights", NULL, js_layer_weights, NULL, NULL, NULL, napi_default, NULL},
      {"layer", NULL, js_layer, NULL, NULL, NULL, napi_default, NULL},
      {"membw", NULL, js_membw, NULL, NULL, NULL, napi_default, NULL},
      {"batchLayer", NULL, js_batch_layer, NULL, NULL, NULL, napi_default, NULL},
      {"int8PeakKinds", NULL, js_int8_peak_kinds, NULL, NULL, NULL, napi_default, NULL},
      {"int8Peak", NULL, js_int8_peak, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init_module)

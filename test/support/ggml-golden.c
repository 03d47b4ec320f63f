/*
 * Golden bytes from llama.cpp's own ggml (libggml-base.so, loaded with dlopen from the prebuilt
 * node-llama-cpp package), for quant-kquants-golden.test.ts. Nothing here reimplements ggml.
 *
 *   ggml-golden LIB quant TYPE ROWS COLS IN.f32 OUT.bin   ggml_quantize_chunk (no imatrix), or
 *                                                       quantize_row_q8_K_ref for TYPE 15
 *   ggml-golden LIB deq   TYPE ROWS COLS IN.bin OUT.f32   the type's to_float (dequantize_row_*)
 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef size_t (*quantize_chunk_fn)(int type, const float *src, void *dst, int64_t start, int64_t nrows,
                                    int64_t n_per_row, const float *imatrix);
typedef size_t (*row_size_fn)(int type, int64_t ne);
typedef void (*q8k_fn)(const float *x, void *y, int64_t k);
typedef void (*to_float_fn)(const void *x, float *y, int64_t k);

static void *sym(void *lib, const char *name) {
  void *p = dlsym(lib, name);
  if (!p) {
    fprintf(stderr, "missing symbol %s\n", name);
    exit(2);
  }
  return p;
}

static void *slurp(const char *path, size_t want) {
  FILE *f = fopen(path, "rb");
  if (!f) exit(3);
  void *b = malloc(want ? want : 1);
  if (fread(b, 1, want, f) != want) exit(4);
  fclose(f);
  return b;
}

static const char *deq_name(int type) {
  switch (type) {
    case 2: return "dequantize_row_q4_0";
    case 3: return "dequantize_row_q4_1";
    case 6: return "dequantize_row_q5_0";
    case 7: return "dequantize_row_q5_1";
    case 8: return "dequantize_row_q8_0";
    case 10: return "dequantize_row_q2_K";
    case 11: return "dequantize_row_q3_K";
    case 12: return "dequantize_row_q4_K";
    case 13: return "dequantize_row_q5_K";
    case 14: return "dequantize_row_q6_K";
    case 15: return "dequantize_row_q8_K";
    default: return NULL;
  }
}

int main(int argc, char **argv) {
  if (argc != 8) return 1;
  void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    fprintf(stderr, "%s\n", dlerror());
    return 2;
  }
  const int type = atoi(argv[3]);
  const int64_t rows = atoll(argv[4]), cols = atoll(argv[5]);
  const size_t rb = type == 15 ? (size_t)(cols / 256) * 292 : ((row_size_fn)sym(lib, "ggml_row_size"))(type, cols);
  FILE *out = fopen(argv[7], "wb");
  if (!out) return 3;
  if (strcmp(argv[2], "quant") == 0) {
    float *x = (float *)slurp(argv[6], (size_t)(rows * cols) * 4);
    uint8_t *y = (uint8_t *)calloc((size_t)rows, rb);
    if (type == 15) {
      q8k_fn q = (q8k_fn)sym(lib, "quantize_row_q8_K_ref");
      for (int64_t r = 0; r < rows; r++) q(x + r * cols, y + r * rb, cols);
    } else {
      ((quantize_chunk_fn)sym(lib, "ggml_quantize_chunk"))(type, x, y, 0, rows, cols, NULL);
    }
    fwrite(y, rb, (size_t)rows, out);
  } else {
    const char *name = deq_name(type);
    if (!name) return 5;
    uint8_t *b = (uint8_t *)slurp(argv[6], rb * (size_t)rows);
    float *y = (float *)malloc((size_t)(rows * cols) * 4);
    to_float_fn f = (to_float_fn)sym(lib, name);
    for (int64_t r = 0; r < rows; r++) f(b + r * rb, y + r * cols, cols);
    fwrite(y, 4, (size_t)(rows * cols), out);
  }
  fclose(out);
  return 0;
}

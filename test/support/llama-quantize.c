/*
 * llama.cpp's own llama-quantize, through libllama from the prebuilt node-llama-cpp package
 * (dlopen; nothing here reimplements it), for gguf-convert-kquants.test.ts:
 *
 *   llama-quantize LIBLLAMA IN.gguf OUT.gguf FTYPE     (llama_ftype number, e.g. 15 = Q4_K_M)
 *
 * llama_model_quantize_params begins with int32 nthread and the ftype in every llama.cpp release;
 * the rest is left at llama_model_quantize_default_params()' values (no imatrix, not pure).
 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct {
  int32_t nthread;
  int32_t ftype;
  unsigned char rest[1024]; /* room for the fields this harness leaves alone, whatever their number */
} params_t;

int main(int argc, char **argv) {
  if (argc != 5) return 1;
  void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    fprintf(stderr, "%s\n", dlerror());
    return 2;
  }
  void (*init)(void) = (void (*)(void))dlsym(lib, "llama_backend_init");
  params_t (*defaults)(void) = (params_t(*)(void))dlsym(lib, "llama_model_quantize_default_params");
  uint32_t (*quantize)(const char *, const char *, const params_t *) =
      (uint32_t(*)(const char *, const char *, const params_t *))dlsym(lib, "llama_model_quantize");
  if (!init || !defaults || !quantize) {
    fprintf(stderr, "missing llama symbols\n");
    return 2;
  }
  init();
  params_t p = defaults();
  p.nthread = 1;
  p.ftype = atoi(argv[4]);
  return quantize(argv[2], argv[3], &p) == 0 ? 0 : 3;
}

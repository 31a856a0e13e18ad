// What llama_interop and llama_diffusion share: starting llama.cpp's CPU backends quietly,
// reading comma-separated token ids, loading a model on the CPU.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "ggml-backend.h"
#include "llama.h"

namespace llama_harness {

// llama.cpp's warnings and errors reach stderr unless LLAMA_INTEROP_QUIET is set; the rest is dropped.
inline void quiet_log(ggml_log_level level, const char* text, void*) {
  if (level >= GGML_LOG_LEVEL_WARN && std::getenv("LLAMA_INTEROP_QUIET") == nullptr) std::fputs(text, stderr);
}

inline void init_backends() {
  llama_log_set(quiet_log, nullptr);
  ggml_backend_load_all_from_path(ILLADA_LLAMA_CPP_LIB_DIR);
  llama_backend_init();
}

// "1,5,9" -> {1, 5, 9}; stops at the first text that is not a number (empty: none).
inline std::vector<llama_token> parse_ids(const char* s) {
  std::vector<llama_token> ids;
  const char* p = s;
  while (*p) {
    char* end = nullptr;
    const long v = std::strtol(p, &end, 10);
    if (end == p) break;
    ids.push_back(static_cast<llama_token>(v));
    p = *end == ',' ? end + 1 : end;
  }
  return ids;
}

// prog: the program's name for the message when llama.cpp cannot load the file.
inline llama_model* load_model(const char* path, const char* prog) {
  llama_model_params mp = llama_model_default_params();
  mp.n_gpu_layers = 0;
  llama_model* model = llama_model_load_from_file(path, mp);
  if (!model) std::fprintf(stderr, "%s: llama.cpp could not load %s\n", prog, path);
  return model;
}

// A CPU context whose one micro-batch holds all n tokens (LLaDA attends bidirectionally without a
// KV cache, as llama.cpp's diffusion example runs it), flash attention off. On failure: a message
// and nullptr (the model stays the caller's).
inline llama_context* one_batch_context(llama_model* model, uint32_t n, int threads, const char* prog,
                                        const char* path) {
  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = n;
  cp.n_batch = n;
  cp.n_ubatch = n;
  cp.n_threads = threads;
  cp.n_threads_batch = threads;
  cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
  llama_context* ctx = llama_init_from_model(model, cp);
  if (!ctx) std::fprintf(stderr, "%s: could not create a context for %s\n", prog, path);
  return ctx;
}

}  // namespace llama_harness

// Stands in for llama.cpp's common/log.h when build/llama_diffusion compiles llama.cpp's
// examples/diffusion/diffusion.cpp without the rest of llama.cpp's `common` library: the two
// macros that file uses, printing to stderr (LOG_INF only when LLAMA_DIFFUSION_VERBOSE is set).
#pragma once

#include <cstdio>
#include <cstdlib>

#define LOG_ERR(...) std::fprintf(stderr, __VA_ARGS__)
#define LOG_INF(...)                                                                          \
  do {                                                                                        \
    if (std::getenv("LLAMA_DIFFUSION_VERBOSE") != nullptr) std::fprintf(stderr, __VA_ARGS__); \
  } while (0)

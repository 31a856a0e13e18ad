// Layout helpers shared by the attention forward and backward: converting stores and the gather of row-major [T, heads*hd] activations into head-major
// [heads, rows, hd] blocks that batched matmuls want.
#pragma once

#include <cstdint>
#include <vector>

#include "util/aligned.h"
#include "util/bf16.h"

namespace illada::cpu {

inline void store(float* dst, float v) { *dst = v; }
inline void store(bf16* dst, float v) { *dst = to_bf16(v); }

// dst [heads, rows, hd] <- rows [row0, row0+rows) of a row-major [*, heads*hd] buffer.
template <class T>
void gather_heads(T* dst, const float* src, int64_t row0, int64_t rows, int64_t heads,
                  int64_t hd) {
#pragma omp parallel for collapse(2) schedule(static) if (heads * rows * hd >= (1 << 15))
  for (int64_t h = 0; h < heads; ++h) {
    for (int64_t r = 0; r < rows; ++r) {
      const float* s = src + (row0 + r) * heads * hd + h * hd;
      T* d = dst + (h * rows + r) * hd;
      for (int64_t i = 0; i < hd; ++i) store(d + i, s[i]);
    }
  }
}

}  // namespace illada::cpu

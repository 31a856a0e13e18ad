// CPU implementations of the row-wise ops: the loops live in ops_isa.inc, compiled once per
// instruction set; each function here runs the copy for isa_level() (util/isa_dispatch.h).
#include "kernels/cpu/ops.h"

#include <cmath>

#include "kernels/cpu/fast_math.h"
#include "util/isa_dispatch.h"

#define ILLADA_ISA_BODY "kernels/cpu/ops_isa.inc"
#include "util/foreach_isa.inc"

namespace illada::cpu {

void rmsnorm(float* out, const float* x, const float* w, int64_t rows, int64_t d, float eps) {
  ILLADA_DISPATCH(rmsnorm, out, x, w, rows, d, eps)
}

void rope_table(float* cos_sin, int64_t max_pos, int64_t hd, float theta) {
  const int64_t half = hd / 2;
  for (int64_t p = 0; p < max_pos; ++p) {
    for (int64_t i = 0; i < half; ++i) {
      const float inv_freq =
          1.0f / std::pow(theta, static_cast<float>(2 * i) / static_cast<float>(hd));
      const float angle = static_cast<float>(p) * inv_freq;
      cos_sin[p * hd + i] = std::cos(angle);
      cos_sin[p * hd + half + i] = std::sin(angle);
    }
  }
}

void rope(float* x, int64_t ld, const int32_t* pos, int64_t rows, int64_t n_heads, int64_t hd,
          const float* cos_sin) {
  ILLADA_DISPATCH(rope, x, ld, pos, rows, n_heads, hd, cos_sin)
}

void swiglu(float* out, const float* gate, const float* up, int64_t n) {
  ILLADA_DISPATCH(swiglu, out, gate, up, n)
}

void softmax_rows(float* x, int64_t ld, int64_t rows, int64_t n, float scale) {
  ILLADA_DISPATCH(softmax_rows, x, ld, rows, n, scale)
}

}  // namespace illada::cpu

// CPU implementations of the row-wise ops; loops are written so GCC vectorises them.
#include "kernels/cpu/ops.h"

#include <cmath>

#include "kernels/cpu/fast_math.h"

namespace illada::cpu {

// Below this many elements a parallel region costs more than it saves (and under CPU
// contention far more); such calls run on the calling thread.
constexpr int64_t kParallelMin = 1 << 15;

void rmsnorm(float* out, const float* x, const float* w, int64_t rows, int64_t d, float eps) {
#pragma omp parallel for schedule(static) if (rows * d >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * d;
    float* o = out + r * d;
    float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
    for (int64_t i = 0; i < d; ++i) ss += xr[i] * xr[i];
    const float inv = 1.0f / std::sqrt(ss / static_cast<float>(d) + eps);
#pragma omp simd
    for (int64_t i = 0; i < d; ++i) o[i] = xr[i] * inv * w[i];
  }
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
  const int64_t half = hd / 2;
#pragma omp parallel for schedule(static) if (rows * n_heads * hd >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const float* cs = cos_sin + static_cast<int64_t>(pos[r]) * hd;
    for (int64_t h = 0; h < n_heads; ++h) {
      float* v = x + r * ld + h * hd;
#pragma omp simd
      for (int64_t i = 0; i < half; ++i) {
        const float a = v[i], b = v[i + half];
        v[i] = a * cs[i] - b * cs[half + i];
        v[i + half] = b * cs[i] + a * cs[half + i];
      }
    }
  }
}

void swiglu(float* out, const float* gate, const float* up, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + fast_exp(-g)) * up[i];
  }
}

void softmax_rows(float* x, int64_t ld, int64_t rows, int64_t n, float scale) {
#pragma omp parallel for schedule(static) if (rows * n >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    float* v = x + r * ld;
    const float inv = softmax_exp_row(v, n, scale);
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) v[i] *= inv;
  }
}

void add(float* x, const float* y, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

}  // namespace illada::cpu

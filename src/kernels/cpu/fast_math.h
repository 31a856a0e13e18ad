// exp() for fp32 vector loops: Cody-Waite range reduction and a degree-7 Taylor polynomial,
// written branch-free so `#pragma omp simd` loops vectorise (std::exp does not). Relative
// error < 3e-7 on [-87.3, 88]; inputs below clamp to exp(-87.3), above to exp(88).
// Always inlined: the kernels that call these are compiled once per instruction set
// (util/isa_dispatch.h), and each copy must vectorise them with its own instructions rather than
// call one shared baseline copy.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace illada::cpu {

#pragma omp declare simd
[[gnu::always_inline]] inline float fast_exp(float x) {
  x = x < -87.3f ? -87.3f : (x > 88.0f ? 88.0f : x);  // keeps 2^n a normal float
  // Round x / ln 2 to the nearest integer by the 1.5 * 2^23 trick (no libm call, vectorises).
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  const float r = (x - n * 0.693145751953125f) - n * 1.42860682030941723212e-6f;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, 4);
  return p * scale;
}

// The un-normalised softmax of one row, in place: v[i] = exp((v[i] - max v) * scale); returns
// 1 / sum so that the caller scales (and rounds, or combines with a gradient) in its own pass.
[[gnu::always_inline]] inline float softmax_exp_row(float* v, int64_t n, float scale) {
  float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
  for (int64_t i = 0; i < n; ++i) mx = v[i] > mx ? v[i] : mx;
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int64_t i = 0; i < n; ++i) {
    v[i] = fast_exp((v[i] - mx) * scale);
    sum += v[i];
  }
  return 1.0f / sum;
}

}  // namespace illada::cpu

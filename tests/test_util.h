// Helpers shared by the C++ tests: seeded random tensors, bf16 rounding, error measures.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "util/bf16.h"
#include "util/check.h"
#include "util/rng.h"

namespace illada::test {

// n standard-normal values (times scale) from counter-based stream `stream` of `seed`.
inline std::vector<float> randn(size_t n, uint64_t stream, float scale = 1.0f,
                                uint64_t seed = 1234) {
  Rng rng(seed, stream);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(rng.normal()) * scale;
  return v;
}

inline std::vector<bf16> to_bf16_vec(const std::vector<float>& v) {
  std::vector<bf16> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = to_bf16(v[i]);
  return out;
}

// The values a bf16 round trip leaves.
inline std::vector<float> rounded(const std::vector<float>& v) {
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = to_float(to_bf16(v[i]));
  return out;
}

inline std::vector<float> widen(const std::vector<bf16>& v) {
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = to_float(v[i]);
  return out;
}

// Largest difference in units of the bf16 spacing at each reference value: a result that is
// the twin's value rounded once differs by at most one such unit (ties after reordering).
inline float max_bf16_ulps(const std::vector<float>& got, const std::vector<float>& ref) {
  float worst = 0.0f;
  for (size_t i = 0; i < ref.size(); ++i) {
    const float ulp = std::ldexp(1.0f, std::ilogb(std::max(std::fabs(ref[i]), 1e-30f)) - 7);
    worst = std::max(worst, std::fabs(got[i] - ref[i]) / ulp);
  }
  return worst;
}

inline float max_abs(const std::vector<float>& v) {
  float m = 0.0f;
  for (float x : v) m = std::max(m, std::fabs(x));
  return m;
}

inline float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  float m = 0.0f;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

// The message of the illada::Error thrown by f, or "" (and a test failure) if none was thrown.
// Any other exception type escapes and fails the test too.
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an illada::Error";
  return "";
}

}  // namespace illada::test

#define EXPECT_CONTAINS(haystack, needle) EXPECT_PRED_FORMAT2(::testing::IsSubstring, needle, haystack)

// Scalar reference kernels (see reference.h); slow on purpose, obviously correct.
#include "reference.h"

#include <cmath>
#include <vector>

namespace illada::reference {

void gemm(float* c, const float* a, const float* b, int64_t m, int64_t n, int64_t k,
          bool b_is_nk, float alpha, bool accumulate) {
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double acc = 0.0;
      for (int64_t p = 0; p < k; ++p) {
        acc += static_cast<double>(a[i * k + p]) * (b_is_nk ? b[j * k + p] : b[p * n + j]);
      }
      const float v = static_cast<float>(alpha * acc);
      c[i * n + j] = accumulate ? c[i * n + j] + v : v;
    }
  }
}

void rmsnorm(float* out, const float* x, const float* w, int64_t rows, int64_t d, float eps) {
  for (int64_t r = 0; r < rows; ++r) {
    double ss = 0.0;
    for (int64_t i = 0; i < d; ++i) ss += static_cast<double>(x[r * d + i]) * x[r * d + i];
    const double inv = 1.0 / std::sqrt(ss / static_cast<double>(d) + eps);
    for (int64_t i = 0; i < d; ++i) out[r * d + i] = static_cast<float>(x[r * d + i] * inv * w[i]);
  }
}

void rope(float* x, const int32_t* pos, int64_t rows, int64_t n_heads, int64_t hd, float theta) {
  const int64_t half = hd / 2;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t h = 0; h < n_heads; ++h) {
      float* v = x + (r * n_heads + h) * hd;
      for (int64_t i = 0; i < half; ++i) {
        const double angle =
            pos[r] * std::pow(static_cast<double>(theta), -2.0 * static_cast<double>(i) / hd);
        const double c = std::cos(angle), s = std::sin(angle);
        const double a = v[i], b = v[i + half];
        v[i] = static_cast<float>(a * c - b * s);
        v[i + half] = static_cast<float>(b * c + a * s);
      }
    }
  }
}

void swiglu(float* out, const float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const double g = gate[i];
    out[i] = static_cast<float>(g / (1.0 + std::exp(-g)) * up[i]);
  }
}

void softmax_rows(float* x, int64_t rows, int64_t n, float scale) {
  for (int64_t r = 0; r < rows; ++r) {
    float* v = x + r * n;
    double mx = -INFINITY, sum = 0.0;
    for (int64_t i = 0; i < n; ++i) mx = std::fmax(mx, static_cast<double>(v[i]) * scale);
    std::vector<double> e(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) sum += e[i] = std::exp(static_cast<double>(v[i]) * scale - mx);
    for (int64_t i = 0; i < n; ++i) v[i] = static_cast<float>(e[i] / sum);
  }
}

void attention(float* out, const float* q, const float* k, const float* v, int64_t n_heads,
               int64_t n_kv_heads, int64_t hd, const int32_t* cu_seqlens, int64_t n_seqs) {
  const int64_t group = n_heads / n_kv_heads;
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  for (int64_t b = 0; b < n_seqs; ++b) {
    const int64_t s0 = cu_seqlens[b], len = cu_seqlens[b + 1] - s0;
    std::vector<double> p(static_cast<size_t>(len));
    for (int64_t h = 0; h < n_heads; ++h) {
      const int64_t g = h / group;
      for (int64_t i = 0; i < len; ++i) {
        const float* qi = q + ((s0 + i) * n_heads + h) * hd;
        double mx = -INFINITY;
        for (int64_t j = 0; j < len; ++j) {
          const float* kj = k + ((s0 + j) * n_kv_heads + g) * hd;
          double dot = 0.0;
          for (int64_t t = 0; t < hd; ++t) dot += static_cast<double>(qi[t]) * kj[t];
          p[j] = dot * scale;
          mx = std::fmax(mx, p[j]);
        }
        double sum = 0.0;
        for (int64_t j = 0; j < len; ++j) sum += p[j] = std::exp(p[j] - mx);
        float* o = out + ((s0 + i) * n_heads + h) * hd;
        for (int64_t t = 0; t < hd; ++t) {
          double acc = 0.0;
          for (int64_t j = 0; j < len; ++j) acc += p[j] * v[((s0 + j) * n_kv_heads + g) * hd + t];
          o[t] = static_cast<float>(acc / sum);
        }
      }
    }
  }
}

}  // namespace illada::reference

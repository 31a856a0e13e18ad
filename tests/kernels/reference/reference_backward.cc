// Scalar backward kernels (see reference_backward.h); slow on purpose, obviously correct.
#include "reference_backward.h"

#include <cmath>
#include <vector>

namespace illada::reference {

void rmsnorm_backward(float* dx, float* dw, const float* dy, const float* x, const float* w,
                      int64_t rows, int64_t d, float eps, bool accumulate_dx) {
  std::vector<double> dwacc(static_cast<size_t>(d), 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * d;
    const float* g = dy + r * d;
    double ss = 0.0, gx = 0.0;
    for (int64_t i = 0; i < d; ++i) {
      ss += static_cast<double>(xr[i]) * xr[i];
      gx += static_cast<double>(g[i]) * w[i] * xr[i];
    }
    const double inv = 1.0 / std::sqrt(ss / d + eps);
    for (int64_t i = 0; i < d; ++i) {
      // y_i = x_i * inv * w_i; d inv / d x_j = -inv^3 x_j / d.
      const double v = inv * g[i] * w[i] - xr[i] * inv * inv * inv * gx / d;
      dx[r * d + i] = static_cast<float>(accumulate_dx ? dx[r * d + i] + v : v);
      dwacc[i] += static_cast<double>(g[i]) * xr[i] * inv;
    }
  }
  for (int64_t i = 0; i < d; ++i) dw[i] = static_cast<float>(dw[i] + dwacc[i]);
}

void rope_backward(float* dx, const int32_t* pos, int64_t rows, int64_t n_heads, int64_t hd,
                   float theta) {
  const int64_t half = hd / 2;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t h = 0; h < n_heads; ++h) {
      float* v = dx + (r * n_heads + h) * hd;
      for (int64_t i = 0; i < half; ++i) {
        const double angle =
            pos[r] * std::pow(static_cast<double>(theta), -2.0 * static_cast<double>(i) / hd);
        const double c = std::cos(angle), s = std::sin(angle);
        const double a = v[i], b = v[i + half];
        // Transpose of [[c, -s], [s, c]].
        v[i] = static_cast<float>(a * c + b * s);
        v[i + half] = static_cast<float>(b * c - a * s);
      }
    }
  }
}

void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate,
                     const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const double g = gate[i], u = up[i], d = dout[i];
    const double sg = 1.0 / (1.0 + std::exp(-g));
    dgate[i] = static_cast<float>(d * u * (sg + g * sg * (1.0 - sg)));
    dup[i] = static_cast<float>(d * g * sg);
  }
}

double cross_entropy_backward(float* dlogits, float* row_loss, const float* logits,
                              const int32_t* targets, const float* row_scale, int64_t rows,
                              int64_t n) {
  double total = 0.0;
  std::vector<double> e(static_cast<size_t>(n));
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = logits + r * n;
    const int32_t tgt = targets[r];
    double mx = -INFINITY, sum = 0.0;
    for (int64_t i = 0; i < n; ++i) mx = std::fmax(mx, static_cast<double>(x[i]));
    for (int64_t i = 0; i < n; ++i) sum += e[i] = std::exp(x[i] - mx);
    const double loss = mx + std::log(sum) - x[tgt];
    if (row_loss) row_loss[r] = static_cast<float>(loss);
    total += row_scale[r] * loss;
    for (int64_t i = 0; i < n; ++i) {
      dlogits[r * n + i] = static_cast<float>(row_scale[r] * (e[i] / sum - (i == tgt ? 1.0 : 0.0)));
    }
  }
  return total;
}

void embedding_backward(float* dwte, const float* dx, const int32_t* ids, int64_t rows, int64_t d) {
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < d; ++i) dwte[static_cast<int64_t>(ids[r]) * d + i] += dx[r * d + i];
  }
}

void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q,
                        const float* k, const float* v, int64_t n_heads, int64_t n_kv_heads,
                        int64_t hd, const int32_t* cu_seqlens, int64_t n_seqs) {
  const int64_t group = n_heads / n_kv_heads;
  const int64_t ldq = n_heads * hd, ldk = n_kv_heads * hd;
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  const int64_t total = cu_seqlens[n_seqs];
  std::vector<double> gq(static_cast<size_t>(total * ldq), 0.0);
  std::vector<double> gk(static_cast<size_t>(total * ldk), 0.0), gv(gk.size(), 0.0);
  for (int64_t b = 0; b < n_seqs; ++b) {
    const int64_t s0 = cu_seqlens[b], len = cu_seqlens[b + 1] - s0;
    std::vector<double> p(static_cast<size_t>(len)), dp(static_cast<size_t>(len));
    for (int64_t h = 0; h < n_heads; ++h) {
      const int64_t g = h / group;
      for (int64_t i = 0; i < len; ++i) {
        const float* qi = q + (s0 + i) * ldq + h * hd;
        const float* doi = dout + (s0 + i) * ldq + h * hd;
        double mx = -INFINITY, sum = 0.0;
        for (int64_t j = 0; j < len; ++j) {
          const float* kj = k + (s0 + j) * ldk + g * hd;
          double dot = 0.0;
          for (int64_t t = 0; t < hd; ++t) dot += static_cast<double>(qi[t]) * kj[t];
          p[j] = dot * scale;
          mx = std::fmax(mx, p[j]);
        }
        for (int64_t j = 0; j < len; ++j) sum += p[j] = std::exp(p[j] - mx);
        for (int64_t j = 0; j < len; ++j) p[j] /= sum;
        // dP_j = dO . v_j; D = sum_j P_j dP_j (= dO . O).
        double dsum = 0.0;
        for (int64_t j = 0; j < len; ++j) {
          const float* vj = v + (s0 + j) * ldk + g * hd;
          double dot = 0.0;
          for (int64_t t = 0; t < hd; ++t) dot += static_cast<double>(doi[t]) * vj[t];
          dp[j] = dot;
          dsum += p[j] * dot;
        }
        for (int64_t j = 0; j < len; ++j) {
          const double ds = p[j] * (dp[j] - dsum) * scale;
          const float* kj = k + (s0 + j) * ldk + g * hd;
          for (int64_t t = 0; t < hd; ++t) {
            gq[(s0 + i) * ldq + h * hd + t] += ds * kj[t];
            gk[(s0 + j) * ldk + g * hd + t] += ds * qi[t];
            gv[(s0 + j) * ldk + g * hd + t] += p[j] * doi[t];
          }
        }
      }
    }
  }
  for (size_t i = 0; i < gq.size(); ++i) dq[i] = static_cast<float>(gq[i]);
  for (size_t i = 0; i < gk.size(); ++i) {
    dk[i] = static_cast<float>(gk[i]);
    dv[i] = static_cast<float>(gv[i]);
  }
}

}  // namespace illada::reference

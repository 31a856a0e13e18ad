// AdamW update and global-norm clipping (see adamw.h).
#include "train/adamw.h"

#include <cmath>

#include "util/check.h"
#include "util/profile.h"

namespace illada::train {

double global_norm(std::span<const float> g) {
  constexpr int64_t kChunk = 1 << 16;
  const int64_t n = static_cast<int64_t>(g.size());
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> part(static_cast<size_t>(chunks), 0.0);
  const float* p = g.data();
#pragma omp parallel for schedule(static) if (n >= (1 << 15))
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t end = std::min(n, (c + 1) * kChunk);
    double s = 0.0;
    // Vector lanes sum in an order fixed at compile time: the same bits at any thread count.
#pragma omp simd reduction(+ : s)
    for (int64_t i = c * kChunk; i < end; ++i) s += static_cast<double>(p[i]) * p[i];
    part[c] = s;
  }
  double total = 0.0;
  for (double s : part) total += s;
  return std::sqrt(total);
}

AdamW::AdamW(const ParamLayout& layout, const AdamWOptions& opts) : layout_(layout), opts_(opts) {
  for (const auto& s : layout_.specs) {
    bool decay = true;
    if (s.role == TensorRole::kNorm) decay = opts_.decay_norms;
    if (s.role == TensorRole::kEmbedding) decay = opts_.decay_embedding;
    decay_.push_back(decay ? 1 : 0);
  }
  m_.assign(static_cast<size_t>(layout_.total), 0.0f);
  v_.assign(static_cast<size_t>(layout_.total), 0.0f);
}

AdamW::StepInfo AdamW::step(std::span<float> params, std::span<const float> grads, double lr,
                            std::span<bf16> params16) {
  ProfileScope prof("adamw");
  ILLADA_CHECK(static_cast<int64_t>(params.size()) == layout_.total &&
               static_cast<int64_t>(grads.size()) == layout_.total);
  ILLADA_CHECK(params16.empty() || static_cast<int64_t>(params16.size()) == layout_.total);
  StepInfo info;
  info.grad_norm = global_norm(grads);
  if (!std::isfinite(info.grad_norm)) return info;  // no update; the caller reports it
  if (opts_.max_grad_norm > 0.0) {
    info.clip_scale = std::min(1.0, opts_.max_grad_norm / (info.grad_norm + 1e-6));
  }
  ++t_;
  const double b1 = opts_.beta1, b2 = opts_.beta2;
  const float c1 = static_cast<float>(1.0 - b1), c2 = static_cast<float>(1.0 - b2);
  const float fb1 = static_cast<float>(b1), fb2 = static_cast<float>(b2);
  const float step_size = static_cast<float>(lr / (1.0 - std::pow(b1, static_cast<double>(t_))));
  const float inv_bc2 = static_cast<float>(1.0 / std::sqrt(1.0 - std::pow(b2, static_cast<double>(t_))));
  const float eps = static_cast<float>(opts_.eps);
  const float gs = static_cast<float>(info.clip_scale);
  for (size_t ti = 0; ti < layout_.specs.size(); ++ti) {
    const int64_t off = layout_.offset[ti], n = layout_.numel[ti];
    const float keep = decay_[ti] ? static_cast<float>(1.0 - lr * opts_.weight_decay) : 1.0f;
    float* p = params.data() + off;
    const float* g = grads.data() + off;
    float* m = m_.data() + off;
    float* v = v_.data() + off;
    bf16* p16 = params16.empty() ? nullptr : params16.data() + off;
    auto update = [&](int64_t i) {
      const float gi = g[i] * gs;
      m[i] = fb1 * m[i] + c1 * gi;
      v[i] = fb2 * v[i] + c2 * gi * gi;
      // sqrt(v / bc2) + eps, as PyTorch's (v.sqrt() / sqrt(bc2)).add_(eps).
      p[i] = p[i] * keep - step_size * m[i] / (std::sqrt(v[i]) * inv_bc2 + eps);
    };
    if (p16) {
#pragma omp parallel for simd schedule(static) if (n >= (1 << 15))
      for (int64_t i = 0; i < n; ++i) {
        update(i);
        p16[i] = to_bf16(p[i]);
      }
    } else {
#pragma omp parallel for simd schedule(static) if (n >= (1 << 15))
      for (int64_t i = 0; i < n; ++i) update(i);
    }
  }
  return info;
}

}  // namespace illada::train

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

namespace {

struct UpdateConsts {
  float b1, b2, c1, c2, step_size, inv_bc2, eps, gs, keep;
};

// One element's update; returns the new parameter. Plain restrict pointers, so the loops
// that call it vectorise with contiguous loads (a lambda over captured spans compiled to
// gathers and scatters, twice the time).
inline float adamw_update(float* __restrict p, const float* __restrict g, float* __restrict m,
                          float* __restrict v, int64_t i, const UpdateConsts& k) {
  const float gi = g[i] * k.gs;
  const float mi = k.b1 * m[i] + k.c1 * gi;
  const float vi = k.b2 * v[i] + k.c2 * gi * gi;
  m[i] = mi;
  v[i] = vi;
  // sqrt(v / bc2) + eps, as PyTorch's (v.sqrt() / sqrt(bc2)).add_(eps).
  const float pi = p[i] * k.keep - k.step_size * mi / (std::sqrt(vi) * k.inv_bc2 + k.eps);
  p[i] = pi;
  return pi;
}

}  // namespace

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
  UpdateConsts base;
  base.b1 = static_cast<float>(b1);
  base.b2 = static_cast<float>(b2);
  base.c1 = static_cast<float>(1.0 - b1);
  base.c2 = static_cast<float>(1.0 - b2);
  base.step_size = static_cast<float>(lr / (1.0 - std::pow(b1, static_cast<double>(t_))));
  base.inv_bc2 = static_cast<float>(1.0 / std::sqrt(1.0 - std::pow(b2, static_cast<double>(t_))));
  base.eps = static_cast<float>(opts_.eps);
  base.gs = static_cast<float>(info.clip_scale);
  const int64_t n_tensors = static_cast<int64_t>(layout_.specs.size());
  // One parallel region for all tensors; each tensor's elements are split statically, with
  // no barrier between tensors.
#pragma omp parallel if (layout_.total >= (1 << 15))
  for (int64_t ti = 0; ti < n_tensors; ++ti) {
    const int64_t off = layout_.offset[ti], n = layout_.numel[ti];
    UpdateConsts k = base;
    k.keep = decay_[ti] ? static_cast<float>(1.0 - lr * opts_.weight_decay) : 1.0f;
    float* __restrict p = params.data() + off;
    const float* __restrict g = grads.data() + off;
    float* __restrict m = m_.data() + off;
    float* __restrict v = v_.data() + off;
    bf16* __restrict p16 = params16.empty() ? nullptr : params16.data() + off;
    if (p16) {
#pragma omp for simd schedule(static) nowait
      for (int64_t i = 0; i < n; ++i) p16[i] = to_bf16(adamw_update(p, g, m, v, i, k));
    } else {
#pragma omp for simd schedule(static) nowait
      for (int64_t i = 0; i < n; ++i) adamw_update(p, g, m, v, i, k);
    }
  }
  return info;
}

}  // namespace illada::train

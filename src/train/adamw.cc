// AdamW update and global-norm clipping (see adamw.h). The loops over the parameters are in
// adamw_isa.inc, compiled once per instruction set (util/isa_dispatch.h).
#include "train/adamw.h"

#include <cmath>

#include "util/check.h"
#include "util/isa_dispatch.h"
#include "util/profile.h"

namespace illada::train {
namespace {

struct UpdateConsts {
  float b1, b2, c1, c2, step_size, inv_bc2, eps, gs;
  float keep;  // 1 - lr * weight_decay for tensors that decay, else 1
};

}  // namespace
}  // namespace illada::train

#define ILLADA_ISA_BODY "train/adamw_isa.inc"
#include "util/foreach_isa.inc"

namespace illada::train {

double global_norm(std::span<const float> g) { ILLADA_DISPATCH(global_norm, g) }

namespace {

void update_params(const ParamLayout& layout, const uint8_t* decay, const UpdateConsts& k,
                   float* params, const float* grads, float* m, float* v, bf16* params16) {
  ILLADA_DISPATCH(update_params, layout, decay, k, params, grads, m, v, params16)
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
  base.keep = static_cast<float>(1.0 - lr * opts_.weight_decay);
  update_params(layout_, decay_.data(), base, params.data(), grads.data(), m_.data(), v_.data(),
                params16.empty() ? nullptr : params16.data());
  return info;
}

}  // namespace illada::train

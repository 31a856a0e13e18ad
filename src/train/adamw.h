// AdamW over the flat parameter/gradient buffers of a TrainableModel, with gradient clipping
// by global L2 norm. PyTorch semantics: decoupled decay p *= 1 - lr*wd before the update,
// bias-corrected moments, eps added outside the square root. fp32 state (m, v) in the same
// layout as the parameters.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "train/trainable.h"
#include "util/aligned.h"

namespace illada::train {

struct AdamWOptions {
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.1;
  bool decay_norms = false;      // decay RMSNorm weights too (off, as in LLaDA/OLMo)
  bool decay_embedding = true;   // decay wte (and a tied head)
  double max_grad_norm = 1.0;    // clip the global gradient norm to this; <= 0 disables
};

// L2 norm of a flat buffer in double, summed in fixed-size chunks in a fixed order (same bits
// whatever the thread count).
double global_norm(std::span<const float> g);

class AdamW {
 public:
  AdamW(const ParamLayout& layout, const AdamWOptions& opts);

  struct StepInfo {
    double grad_norm = 0.0;  // before clipping
    double clip_scale = 1.0;
  };
  // One update of params from grads (already summed over micro-batches and ranks) at this lr.
  // A non-finite gradient norm leaves params and state untouched (check info.grad_norm).
  // params16, when not empty, gets the updated params rounded to bf16 in the same pass (the
  // model's bf16 compute copy, saving a second sweep over the parameters).
  StepInfo step(std::span<float> params, std::span<const float> grads, double lr,
                std::span<bf16> params16 = {});

  int64_t steps_taken() const { return t_; }
  std::span<float> m() { return m_; }  // first moments, parameter layout (checkpointing)
  std::span<float> v() { return v_; }  // second moments
  void set_steps_taken(int64_t t) { t_ = t; }
  const AdamWOptions& options() const { return opts_; }

 private:
  ParamLayout layout_;
  AdamWOptions opts_;
  std::vector<uint8_t> decay_;  // [tensors] whether weight decay applies
  Buffer<float> m_, v_;
  int64_t t_ = 0;
};

}  // namespace illada::train

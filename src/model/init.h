// Fresh weights as the official model code draws them (modeling_llada.py init_weights applied
// by LLaDAModel.reset_parameters with init_params=True): one rule per tensor from config.json's
// init_fn, init_std and init_cutoff_factor.
#pragma once

#include <cstdint>

#include "model/config.h"
#include "model/weights.h"

namespace illada {

// How one tensor is drawn: all ones (norm weights), or a normal with standard deviation `std`,
// truncated to [-cutoff * std, cutoff * std] when cutoff > 0.
struct InitRule {
  bool ones = false;
  double std = 0.0;
  double cutoff = 0.0;
};

// The rule of one tensor of this config (LLaDA llama blocks, no biases, scale_logits off):
//   normal          N(0, init_std), cut at init_cutoff_factor std if set; the blocks' ff_out
//                   (marked _is_residual) then divided by sqrt(2 n_layers)
//   mitchell        N(0, 1/sqrt(d_in)) cut at 3 std; attn_out and ff_out of block l also
//                   divided by sqrt(2 (l + 1))
//   fan_in          N(0, 1/sqrt(d_in))
//   kaiming_normal  N(0, sqrt(2 / fan_in)) (torch's kaiming_normal_ with nonlinearity relu)
//   full_megatron   cut at init_cutoff_factor (default 3) std: the embedding and q/k/v,
//                   ff_proj, up_proj init_std; attn_out and ff_out init_std / sqrt(2 n_layers);
//                   the untied head 1/sqrt(d_model)
// where d_in is the matrix's input width (d_model, or mlp_hidden_size for ff_out). One
// divergence from the released code: with full_megatron its llama block passes no module type
// for q/k/v, ff_proj and up_proj and raises; here they are input modules, as its sequential
// block has them.
InitRule init_rule(const ModelConfig& c, const TensorSpec& spec);

// n draws of the rule (its normal part) into out, from the counter-based stream
// (seed, stream): deterministic whatever the thread that draws them.
void draw_init(float* out, int64_t n, const InitRule& rule, uint64_t seed, uint64_t stream);

// The standard normal quantile function (relative error below 1.2e-9), for p in (0, 1).
double normal_quantile(double p);

}  // namespace illada

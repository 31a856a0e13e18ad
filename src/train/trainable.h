// A LLaDA/iLLaDA Transformer that can be trained: fp32 master parameters and their gradients
// in two flat buffers laid out by tensor_specs() (one visitor for load, save, zero-grad and the
// optimizer; one buffer to all-reduce), a forward that keeps what the backward needs, and the
// backward itself. Compute precision fp32 (checking) or bf16 (matmul inputs rounded to bf16,
// fp32 accumulation, fp32 master weights).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/backward.h"
#include "model/config.h"
#include "model/weights.h"
#include "util/bf16.h"

namespace illada::train {

// Where each tensor of tensor_specs() lives in a flat parameter (or gradient) buffer.
struct ParamLayout {
  std::vector<TensorSpec> specs;  // tensor_specs(config) order
  std::vector<int64_t> offset;    // [specs] first element in the flat buffer
  std::vector<int64_t> numel;     // [specs]
  int64_t total = 0;
  explicit ParamLayout(const ModelConfig& c);
  ParamLayout() = default;
  int64_t find(const std::string& name) const;  // index into specs, -1 if absent
};

// One micro-batch for the loss: the corrupted packed ids and the rows that carry a loss.
// loss = sum_i target_weights[i] * CE(logits[target_rows[i]], targets[i]).
struct LossBatch {
  std::span<const int32_t> input_ids;       // [T] x_t (masked tokens replaced)
  std::span<const int32_t> cu_seqlens;      // [n_seqs + 1]; positions restart per sequence
  std::span<const int32_t> target_rows;     // [M] rows of input_ids with a loss
  std::span<const int32_t> targets;         // [M] clean tokens at those rows
  std::span<const float> target_weights;    // [M] e.g. 1 / (p * tokens in the batch)
};

// Activations of one micro-batch, kept from forward to backward (what a step scratches).
struct TrainActivations {
  int64_t t = 0, m = 0;                // tokens, target rows
  std::vector<float> xs;               // [n_layers + 1, T, d] residual stream entering each layer
  std::vector<float> x_mid;            // [n_layers, T, d] after the attention sub-block
  std::vector<float> q, k, v;          // [n_layers, T, n_(kv_)heads*hd], q/k after RoPE
  std::vector<float> att;              // [n_layers, T, n_heads*hd] attention output
  std::vector<float> gate, up;         // [n_layers, T, mlp] before the activation
  std::vector<float> head_x, head_n;   // [M, d] final rows with a loss, after ln_f
  std::vector<float> logits;           // [M, vocab], then its gradient
  std::vector<int32_t> pos;            // [T]
  std::vector<int32_t> cu;             // [n_seqs + 1]
  std::vector<float> rope_table;       // [rope_len, hd]
  int64_t rope_len = 0;
  // Scratch of the backward pass.
  std::vector<float> dx, dn, dbig, dbig2, dq, dk, dv, dh, normed, hidden;
  std::vector<bf16> a16, b16, c16;     // bf16 matmul operands
  std::vector<float> f32t;             // transposed fp32 operand
  cpu::AttentionWorkspace attn_ws;
  cpu::AttentionBackwardWorkspace attn_bwd_ws;
};

class TrainableModel {
 public:
  TrainableModel(const ModelConfig& c, ComputeType compute);

  const ModelConfig& config() const { return config_; }
  const ParamLayout& layout() const { return layout_; }
  ComputeType compute() const { return compute_; }
  std::span<float> params() { return params_; }
  std::span<const float> params() const { return params_; }
  std::span<float> grads() { return grads_; }
  std::span<const float> grads() const { return grads_; }

  // Copies every tensor of `w` (fp32 or bf16) into the master parameters.
  void load(const ModelWeights& w);
  // fp32 views into the master parameters (valid while this object lives and is not moved),
  // for Model::forward, save_model and comparisons.
  ModelWeights weights_view() const;
  // Visits every tensor with its parameter and gradient slices.
  void for_each_param(
      const std::function<void(const TensorSpec&, std::span<float> p, std::span<float> g)>& fn);
  void zero_grad();
  // Rebuilds the bf16 copy of the weights from the master parameters (bf16 mode; call after
  // every optimizer step and after load).
  void refresh_compute_weights();

  // Forward and backward of one micro-batch: adds every parameter's gradient into grads() and
  // returns the micro-batch's loss (sum of weighted cross-entropies, in double).
  double forward_backward(const LossBatch& b, TrainActivations& a);
  // Forward only: the loss, no gradients (held-out evaluation).
  double loss(const LossBatch& b, TrainActivations& a);

 private:
  double forward(const LossBatch& b, TrainActivations& a);  // fills a; logits -> their gradient
  void backward(const LossBatch& b, TrainActivations& a);

  ModelConfig config_;
  ComputeType compute_;
  ParamLayout layout_;
  std::vector<float> params_;  // [layout.total] fp32 master weights
  std::vector<float> grads_;   // [layout.total]
  std::vector<bf16> params16_; // [layout.total] bf16 copy (bf16 mode only)
  // Offsets of each layer's tensors (slots as in LayerWeights) and of the globals.
  std::vector<std::array<int64_t, 9>> layer_off_;
  int64_t wte_off_ = 0, ln_f_off_ = 0, head_off_ = 0;
};

}  // namespace illada::train

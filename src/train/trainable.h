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
#include <type_traits>
#include <vector>

#include "kernels/cpu/backward.h"
#include "model/block.h"
#include "model/config.h"
#include "model/weights.h"
#include "util/aligned.h"
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

// Matmul operands in the compute precision T (bf16, or fp32 when checking gradients), kept
// from forward to backward so the weight gradients recompute nothing.
template <class T>
struct TrainOperands {
  Buffer<T> n1, n2;      // [n_layers, T, d] RMSNorm outputs entering attention / MLP
  Buffer<T> hidden;      // [n_layers, T, mlp] silu(gate) * up
  Buffer<T> head_n;      // [M_pad, d] final rows with a loss, after ln_f (zero rows past M)
  // [T, mlp] backward scratch: gradients of gate and up (bf16: dgate [T, 2*mlp] holds both).
  Buffer<T> dgate, dup;
};

// Activations of one micro-batch, kept from forward to backward (what a step scratches).
struct TrainActivations {
  int64_t t = 0, m = 0;                // tokens, target rows
  int64_t m_pad = 0;                   // rows of the head's products: m rounded up, zero-padded
  Buffer<float> xs;               // [n_layers + 1, T, d] residual stream entering each layer
  Buffer<float> x_mid;            // [n_layers, T, d] after the attention sub-block
  // fp32 mode: [n_layers, T, n_(kv_)heads*hd], q/k after RoPE (bf16 mode: q16/k16/v16).
  Buffer<float> q, k, v;
  Buffer<float> att;              // fp32 mode: [n_layers, T, n_heads*hd] attention output
  // fp32 mode: [n_layers, T, mlp] before the activation (bf16 mode: gate16 below).
  Buffer<float> gate, up;
  Buffer<float> head_x;           // [M, d] final rows with a loss
  Buffer<float> logits;           // [M_pad, vocab], then its gradient (zero rows past M)
  PackedLayout layout;                 // offsets and positions of the micro-batch
  Buffer<float> rope_table;       // [rope_len, hd]
  int64_t rope_len = 0;
  TrainOperands<float> ops32;          // fp32 mode
  TrainOperands<bf16> ops16;           // bf16 mode
  // bf16 mode: rounded copies of fp32 buffers as matmul operands (fp32 mode reads the buffers).
  Buffer<bf16> q16, k16, v16;     // [n_layers, n_(kv_)heads, T, hd] head-major, after RoPE
  Buffer<bf16> att16;             // [n_layers, T, n_heads*hd] attention output
  Buffer<bf16> dx16, dlogits16;  // of dx and the logits' gradient
  Buffer<bf16> dqkv16;            // [T, (n_heads + 2*n_kv_heads)*hd] of dq, dk, dv
  // gate and up side by side [n_layers, T, 2*mlp], the fused product's bf16 output (rounded
  // once, as autocast's bf16 linear output; half the traffic of fp32), and the bf16 gradient
  // of the MLP hidden [T, mlp] (backward scratch).
  Buffer<bf16> gate16, dh16;
  // One layer's q/k/v projections side by side [T, (n_heads + 2*n_kv_heads)*hd] (scratch of
  // the fused product, bf16 output), before RoPE and the head-major layout.
  Buffer<bf16> qkv16;
  // Scratch of the backward pass (dq, dk, dv head-major [n_(kv_)heads, T, hd] in bf16 mode).
  Buffer<float> dx, dn, dq, dk, dv, dh;
  BlockWorkspace ws;  // the forward's attention scratch
  cpu::AttentionBackwardWorkspace attn_bwd_ws;

  template <class T>
  TrainOperands<T>& ops() {
    if constexpr (std::is_same_v<T, bf16>) {
      return ops16;
    } else {
      return ops32;
    }
  }
};

class TrainableModel {
 public:
  TrainableModel(const ModelConfig& c, ComputeType compute);

  const ModelConfig& config() const { return config_; }
  const ParamLayout& layout() const { return layout_; }
  ComputeType compute() const { return compute_; }
  std::span<float> params() { return params_; }
  std::span<const float> params() const { return params_; }
  // The gradients summed since zero_grad() (tensors no micro-batch reached read as zeros).
  std::span<float> grads() {
    zero_fresh_grads();
    return grads_;
  }

  // Copies every tensor of `w` (fp32 or bf16) into the master parameters.
  void load(const ModelWeights& w);
  // fp32 views into the master parameters (valid while this object lives and is not moved),
  // for Model::forward, save_model and comparisons.
  ModelWeights weights_view() const;
  // Visits every tensor with its parameter and gradient slices.
  void for_each_param(
      const std::function<void(const TensorSpec&, std::span<float> p, std::span<float> g)>& fn);
  // Starts a new sum of gradients. No pass over the buffer: each tensor's first writer of the
  // next backward overwrites it (a weight-gradient product without its read of C), and what no
  // writer reached is zeroed when the gradients are read.
  void zero_grad();
  // Rebuilds the bf16 copy of the weights from the master parameters (bf16 mode; call after
  // every optimizer step and after load).
  void refresh_compute_weights();
  // The bf16 copy itself (empty in fp32 mode), for an optimizer that refreshes it as it updates.
  std::span<bf16> compute_weights() { return params16_; }

  // Forward and backward of one micro-batch: adds every parameter's gradient into grads() and
  // returns the micro-batch's loss (sum of weighted cross-entropies, in double).
  double forward_backward(const LossBatch& b, TrainActivations& a);
  // Forward only: the loss, no gradients (held-out evaluation).
  double loss(const LossBatch& b, TrainActivations& a);

 private:
  // T: the matmul operand type of the compute precision.
  template <class T>
  double forward(const LossBatch& b, TrainActivations& a);  // fills a; logits -> their gradient
  template <class T>
  void backward(const LossBatch& b, TrainActivations& a);
  void check_batch(const LossBatch& b, TrainActivations& a);  // fills a.layout, rope table
  // Marks the gradient tensors covering [off, off + n) as written; true if they were still
  // fresh (not written since zero_grad()), i.e. the writer must overwrite, not add.
  bool claim_grad(int64_t off, int64_t n);
  // For writers that can only add: zeroes [off, off + n) first if it was fresh.
  void claim_grad_zeroed(int64_t off, int64_t n);
  void zero_fresh_grads();

  ModelConfig config_;
  ComputeType compute_;
  ParamLayout layout_;
  Buffer<float> params_;  // [layout.total] fp32 master weights
  Buffer<float> grads_;   // [layout.total]
  std::vector<uint8_t> grad_fresh_;  // [tensors] not written since zero_grad()
  Buffer<bf16> params16_; // [layout.total] bf16 copy (bf16 mode only)
  // Offsets of each layer's tensors in the flat buffers, by name, and of the globals.
  struct LayerOffsets {
    std::array<int64_t, std::size(kLayerTensors)> at{};
    int64_t operator[](LayerTensor t) const { return at[static_cast<size_t>(t)]; }
    int64_t& operator[](LayerTensor t) { return at[static_cast<size_t>(t)]; }
  };
  std::vector<LayerOffsets> layer_off_;
  int64_t wte_off_ = 0, ln_f_off_ = 0, head_off_ = 0;
  // The block's views of the weights: fp32 master (fp32 mode) or the bf16 copy with q/k/v and
  // gate/up as single matrices (their rows are adjacent in the layout); norms always fp32.
  std::vector<LayerWeights> views32_, views16_;
  Matrix head32_, head16_;
};

}  // namespace illada::train

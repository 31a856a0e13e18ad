// The LLaDA/iLLaDA Transformer forward pass on the CPU: bidirectional blocks over a packed
// batch of sequences (cumulative offsets, no padding), logits for all or chosen rows.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "model/block.h"
#include "model/config.h"
#include "model/weights.h"
#include "util/aligned.h"

namespace illada {

// What one forward call reads: a packed batch. Sequence b is ids[cu_seqlens[b],
// cu_seqlens[b+1]); positions restart at 0 in every sequence.
struct ForwardInput {
  std::span<const int32_t> ids;         // [T]
  std::span<const int32_t> cu_seqlens;  // [n_seqs + 1]; empty = one sequence of all ids
  std::span<const int32_t> logit_rows;  // rows of ids whose logits are wanted; empty = all
  std::span<const SeqCache> caches;     // empty, or one per sequence
};

// Activations of one forward call, reused across calls and layers (what a step scratches).
struct ForwardState {
  PackedLayout layout;
  Buffer<float> x;        // [T, d] residual stream
  Buffer<float> normed;   // [T, d] fp32: n1, then n2, then the head's rows
  Buffer<float> q, k, v;  // fp32: [T, n_heads*hd], [T, n_kv_heads*hd]
  Buffer<float> attn;     // fp32: [T, n_heads*hd]
  Buffer<float> gate, up; // fp32: [T, mlp] (gate then holds silu(gate) * up)
  Buffer<bf16> normed16;  // bf16: [T, d] as normed
  Buffer<bf16> qkv16;     // bf16: [T, (n_heads + 2*n_kv_heads)*hd]
  Buffer<bf16> q16;       // bf16: [n_heads, T, hd] after RoPE
  Buffer<bf16> k16, v16;  // bf16: [n_kv_heads, T or all cached keys, hd]
  Buffer<bf16> attn16;    // bf16: [T, n_heads*hd]
  Buffer<bf16> gate_up16; // bf16: [T, 2*mlp]
  Buffer<bf16> hidden16;  // bf16: [T, mlp]
  Buffer<float> head_in;  // [rows, d] gathered rows
  std::vector<int32_t> all_rows;  // 0..T-1 when every row's logits are wanted
  Buffer<float> rope_table;  // [rope_len, hd]
  int64_t rope_len = 0;
  BlockWorkspace ws;
};

class Model {
 public:
  // Loads a Hugging Face style directory (config.json + safetensors) or a LLaDA GGUF file
  // (open_model_source in weights.h). Throws Error. In bf16,
  // `pack` repacks the matrices for faster products (pack_matrices): worth it for anything
  // that runs more than a few forward passes; a single pass is faster without.
  // `check_tensors` first scans every tensor for NaN/Inf (check_tensors_finite): it reads the
  // whole checkpoint, so it is off unless asked for. `layout`: how packed matrices with k > 512
  // are laid out (kernels/gemm.h): kChunks for a model whose products run batch-invariant
  // (generate, serve), kWhole for the fastest other products.
  static Model load(const std::string& dir, ComputeType dtype, bool pack = true, bool check_tensors = false,
                    WeightsLayout layout = WeightsLayout::kWhole);
  Model(ModelConfig config, ModelWeights weights);

  const ModelConfig& config() const { return config_; }
  const ModelWeights& weights() const { return weights_; }
  ComputeType dtype() const { return weights_.dtype; }

  // Writes logits [rows, embedding_size] (rows = logit_rows.size() or T). Throws Error on
  // out-of-vocabulary ids, malformed offsets, sequences longer than max_sequence_length, or a
  // non-finite logit (NaN/Inf weights: no sampler or score could mean anything after it).
  void forward(const ForwardInput& in, ForwardState& st, std::span<float> logits) const;

  // Number of logit rows forward() will write for this input.
  static int64_t logit_row_count(const ForwardInput& in) {
    return in.logit_rows.empty() ? static_cast<int64_t>(in.ids.size())
                                 : static_cast<int64_t>(in.logit_rows.size());
  }

 private:
  template <class T>
  void run_layers(const BlockBatch& batch, ForwardState& st) const;

  ModelConfig config_;
  ModelWeights weights_;
};

}  // namespace illada

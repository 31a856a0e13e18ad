// The LLaDA/iLLaDA Transformer forward pass on the CPU: bidirectional blocks over a packed
// batch of sequences (cumulative offsets, no padding), logits for all or chosen rows.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/attention_bf16.h"
#include "model/config.h"
#include "model/weights.h"
#include "util/aligned.h"

namespace illada {

// Keys and values of every layer for one sequence, in fp32 after RoPE (what a request owns
// when it decodes with Fast-dLLM's block-wise approximate cache).
struct KVCache {
  int64_t capacity = 0;  // positions
  int64_t kv_dim = 0;    // n_kv_heads * head_dim
  Buffer<float> k, v;  // [n_layers, capacity, kv_dim]
  void reset(const ModelConfig& c, int64_t positions);
  float* k_layer(int64_t l) { return k.data() + l * capacity * kv_dim; }
  float* v_layer(int64_t l) { return v.data() + l * capacity * kv_dim; }
};

// Use of a cache by one sequence of a forward call: its ids sit at positions
// [first_pos, first_pos + len); their keys/values are written into the cache at those rows,
// and its queries attend to cache rows [0, kv_len) (which must include them).
struct SeqCache {
  KVCache* cache = nullptr;
  int32_t first_pos = 0;
  int32_t kv_len = 0;
};

// What one forward call reads: a packed batch. Sequence b is ids[cu_seqlens[b],
// cu_seqlens[b+1]); positions restart at 0 in every sequence.
struct ForwardInput {
  std::span<const int32_t> ids;         // [T]
  std::span<const int32_t> cu_seqlens;  // [n_seqs + 1]; empty = one sequence of all ids
  std::span<const int32_t> logit_rows;  // rows of ids whose logits are wanted; empty = all
  std::span<const SeqCache> caches;     // empty, or one per sequence
};

// Activations of one forward call, reused across calls (what a step scratches).
struct ForwardState {
  Buffer<float> x;       // [T, d] residual stream
  Buffer<float> normed;  // [T, d] (fp32 path)
  Buffer<float> q;       // [T, n_heads*hd]
  Buffer<float> k, v;    // [T, n_kv_heads*hd]
  Buffer<float> attn;    // [T, n_heads*hd] (fp32 path)
  Buffer<float> gate;    // [T, mlp]
  Buffer<float> up;      // [T, mlp]
  Buffer<bf16> normed16;  // [T, d] bf16 matmul input (bf16 path, as the three below)
  Buffer<bf16> attn16;    // [T, n_heads*hd]
  Buffer<bf16> hidden16;  // [T, mlp]
  Buffer<bf16> q16;       // [n_heads, T, hd] after RoPE (bf16 path)
  Buffer<bf16> k16, v16;  // [n_kv_heads, T or all cached keys, hd] (bf16 path)
  Buffer<float> head_in;                                  // [rows, d] gathered rows
  Buffer<bf16> head_in16;
  std::vector<int32_t> pos;       // [T]
  std::vector<int32_t> cu;        // [n_seqs + 1]
  std::vector<int32_t> cu_kv;     // [n_seqs + 1] key offsets when a cache is used
  std::vector<const float*> k_seq, v_seq;  // [n_seqs] cache layer bases
  Buffer<float> rope_table;  // [rope_len, hd]
  int64_t rope_len = 0;
  cpu::AttentionWorkspace attn_ws;
  cpu::Bf16AttentionWorkspace attn_bf16_ws;
};

class Model {
 public:
  // Loads a Hugging Face style directory (config.json + safetensors) or a LLaDA GGUF file
  // (open_model_source in weights.h). Throws Error. In bf16,
  // `pack` repacks the matrices for faster products (pack_matrices): worth it for anything
  // that runs more than a few forward passes; a single pass is faster without.
  // `check_tensors` first scans every tensor for NaN/Inf (check_tensors_finite): it reads the
  // whole checkpoint, so it is off unless asked for.
  static Model load(const std::string& dir, ComputeType dtype, bool pack = true, bool check_tensors = false);
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
  // The n_layers blocks, from the embedded st.x to the last residual, per precision.
  void f32_layers(const ForwardInput& in, ForwardState& st, int64_t t, bool cached,
                  int64_t n_seqs, const cpu::AttentionShape& ashape) const;
  void bf16_layers(const ForwardInput& in, ForwardState& st, int64_t t, bool cached,
                   int64_t n_seqs, const cpu::AttentionShape& ashape) const;

  ModelConfig config_;
  ModelWeights weights_;
};

}  // namespace illada

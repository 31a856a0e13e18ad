// Non-causal grouped-query attention over packed variable-length sequences (cumulative
// offsets, no padding): a sequence attends only to itself. Scores go through oneDNN matmuls
// one block of queries at a time, so no [L, L] buffer exists per head at long lengths.
#pragma once

#include <cstdint>
#include <vector>

#include "util/bf16.h"

namespace illada::cpu {

struct AttentionShape {
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t n_seqs = 0;             // number of packed sequences
  const int32_t* cu_seqlens = nullptr;  // [n_seqs + 1], cu_seqlens[0] = 0
  // Keys/values may be a longer packed buffer than the queries (a KV cache); by default
  // both use cu_seqlens.
  const int32_t* cu_seqlens_kv = nullptr;
};

// Scratch reused across calls so the hot loop does not allocate.
struct AttentionWorkspace {
  std::vector<float> scores;  // [q_block, Lk]
  std::vector<bf16> probs;    // [q_block, Lk] (bf16 path)
};

// out [Tq, n_heads*hd] = softmax(q k^T / sqrt(hd)) v per sequence and head; q [Tq, n_heads*hd],
// k, v [Tk, n_kv_heads*hd]; all dense rows. Query head h reads kv head h / (n_heads/n_kv).
void attention(float* out, const float* q, const float* k, const float* v,
               const AttentionShape& s, AttentionWorkspace& ws);
// bf16 inputs on AMX; softmax in fp32, probabilities rounded to bf16 for the second product.
void attention(float* out, const bf16* q, const bf16* k, const bf16* v,
               const AttentionShape& s, AttentionWorkspace& ws);

}  // namespace illada::cpu

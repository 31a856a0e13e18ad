// Non-causal grouped-query attention over packed variable-length sequences (cumulative
// offsets, no padding): a sequence attends only to itself. Per sequence and block of queries,
// q/k/v are gathered into dense head-major buffers so that both products run as one batched
// oneDNN matmul over the kv heads (AMX in bf16); no [L, L] buffer per head at long lengths.
#pragma once

#include <cstdint>
#include <vector>

#include "util/aligned.h"
#include "util/bf16.h"

namespace illada::cpu {

struct AttentionShape {
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t n_seqs = 0;                   // number of packed sequences
  const int32_t* cu_seqlens = nullptr;  // [n_seqs + 1] query offsets, cu_seqlens[0] = 0
  // Keys/values may come from a longer packed buffer than the queries (a KV cache); null
  // means the same offsets as the queries.
  const int32_t* cu_seqlens_kv = nullptr;
  // Optional per-sequence key/value bases (row-major [Lk_b, n_kv_heads*hd], e.g. a KV cache
  // layer): sequence b then reads k_seq[b], v_seq[b] instead of rows of k, v.
  const float* const* k_seq = nullptr;
  const float* const* v_seq = nullptr;
  bool bf16 = false;  // round both products' inputs to bf16 (fp32 accumulation, fp32 softmax)
};

// Scratch reused across calls so the hot loop does not allocate.
struct AttentionWorkspace {
  Buffer<float> qf, kf, vf, scores, out;  // fp32 path
  Buffer<bf16> qb, kb, vb, probs;         // bf16 path
};

// out [Tq, n_heads*hd] = softmax(q k^T / sqrt(hd)) v per sequence and head; q [Tq, n_heads*hd],
// k, v [Tk, n_kv_heads*hd], dense rows, fp32. Query head h reads kv head h / (n_heads/n_kv).
void attention(float* out, const float* q, const float* k, const float* v,
               const AttentionShape& s, AttentionWorkspace& ws);

}  // namespace illada::cpu

// bf16 attention for the inference forward, on head-major bf16 q/k/v (written
// directly by the RoPE pass) and writing the bf16 input of the output
// projection. One parallel loop over (sequence, query head, query block) tasks;
// each task runs its two products on its own thread and keeps its scores in
// cache: S = Q_h K_g^T, P = bf16(softmax(S / sqrt(hd))), O = P V_g. Same
// roundings as attention() with bf16 = true, then O rounded to bf16.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/cpu/attention.h"
#include "util/aligned.h"
#include "util/bf16.h"

namespace illada::cpu {

// Per-thread scratch and the task list, reused across calls.
struct Bf16AttentionWorkspace {
  struct Task {
    int64_t seq, head, row0, rows;
  };
  struct Scratch {
    Buffer<float> scores;    // [rows, Lk]
    Buffer<bf16> probs;      // [rows, Lk]
    Buffer<float> out;       // [rows, hd]
    Buffer<uint8_t> onednn;  // the products' scratchpad
  };
  std::vector<Task> tasks;
  std::vector<Scratch> scratch;  // one per thread
};

// out [Tq, n_heads*hd] (row-major) = attention over sequences as in
// attention(), from head-major q [n_heads, q_rows, hd] and k, v [n_kv_heads,
// kv_rows, hd] (q_rows >= Tq, kv_rows >= Tk). s.cu_seqlens_kv (or s.cu_seqlens)
// gives the key rows of each sequence; s.k_seq/v_seq must be null and s.bf16 is
// implied. Dense head-major operands let oneDNN use its AMX brgemm kernels
// (1.6x the strided-operand rate at 320 rows).
void attention_bf16_heads(bf16* out, const bf16* q, int64_t q_rows, const bf16* k, const bf16* v,
                          int64_t kv_rows, const AttentionShape& s, Bf16AttentionWorkspace& ws);

}  // namespace illada::cpu

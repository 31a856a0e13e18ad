// Backward passes of the Transformer's ops on the CPU, for training: free functions on raw
// buffers, output first, dimensions explicit. Each has a scalar twin in
// tests/kernels/reference/reference_backward.h. Parameter gradients (dw) are always accumulated
// (+=), so micro-batches of one optimizer step add up in the same buffer; per-row reductions
// are ordered so the result does not depend on the thread count.
#pragma once

#include <cstdint>
#include <vector>

#include "util/aligned.h"
#include "util/bf16.h"

namespace illada::cpu {

// y = x * rsqrt(mean(x^2) + eps) * w. dx (+)= dL/dx (accumulate_dx: add to dx, e.g. the
// residual stream's gradient), dw += dL/dw. x, dy, dx: [rows, d]; w, dw: [d]. dx may not
// alias dy or x.
void rmsnorm_backward(float* dx, float* dw, const float* dy, const float* x, const float* w,
                      int64_t rows, int64_t d, float eps, bool accumulate_dx);
// The same, also writing the resulting dx rounded to bf16 into dx16 [rows, d]: the operand of
// the next matmuls of the backward pass, without a separate conversion pass.
void rmsnorm_backward(float* dx, bf16* dx16, float* dw, const float* dy, const float* x,
                      const float* w, int64_t rows, int64_t d, float eps, bool accumulate_dx);

// The gradient of rope(): rotation of each (i, i + hd/2) pair by -angle, in place on
// dx [rows, n_heads*hd] (row stride ld); same table as rope().
void rope_backward(float* dx, int64_t ld, const int32_t* pos, int64_t rows, int64_t n_heads,
                   int64_t hd, const float* cos_sin);

// out = silu(gate) * up. dgate, dup: [n]; either may alias dout.
void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate,
                     const float* up, int64_t n);
// The same with dgate and dup rounded to bf16 (the operands of the next matmuls).
void swiglu_backward(bf16* dgate, bf16* dup, const float* dout, const float* gate,
                     const float* up, int64_t n);

// The same on rows holding gate and up side by side: gu [rows, 2n] (gate | up), dout
// [rows, n]; writes dgu [rows, 2n] = bf16(dgate | dup), the operand of the fused products.
void swiglu_backward_rows(bf16* dgu, const float* dout, const float* gu, int64_t rows,
                          int64_t n);
// The same from bf16 dout and gu (products' bf16 outputs).
void swiglu_backward_rows(bf16* dgu, const bf16* dout, const bf16* gu, int64_t rows, int64_t n);

// Row-wise cross-entropy and its gradient in one pass. For each row r: loss_r =
// logsumexp(logits[r]) - logits[r, targets[r]]; dlogits[r] = row_scale[r] * (softmax(logits[r])
// - onehot(targets[r])). dlogits may alias logits (in place). row_loss [rows] (optional) gets
// loss_r. Returns sum_r row_scale[r] * loss_r, summed in row order in double.
double cross_entropy_backward(float* dlogits, float* row_loss, const float* logits,
                              const int32_t* targets, const float* row_scale, int64_t rows,
                              int64_t n);

// dwte[ids[r], :] += dx[r, :]. dwte [vocab, d], dx [rows, d]. Rows repeated in ids add up in
// row order (columns are split across threads, never rows: no races, fixed order).
void embedding_backward(float* dwte, const float* dx, const int32_t* ids, int64_t rows, int64_t d);

struct AttentionBackwardShape {
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t n_seqs = 0;                   // packed sequences
  const int32_t* cu_seqlens = nullptr;  // [n_seqs + 1], offsets of queries and keys alike
  bool bf16 = false;  // round every product's inputs to bf16 (fp32 accumulation and softmax)
  int64_t block_rows = 0;  // query rows per block; 0 = automatic (tests force small blocks)
};

struct AttentionBackwardWorkspace {
  Buffer<float> probs, dprobs, dq, dkt, dvt, dsum;  // fp32 scratch
  Buffer<float> qf, qtf, kf, vf, dof, dotf, pf, dsf;  // fp32 matmul operands
  Buffer<bf16> qb, qtb, kb, vb, dob, dotb, pb, dsb;   // bf16 matmul operands
  // attention_backward_heads: its tasks and per-thread scratch.
  struct Task {
    int64_t seq, kv_head, block;  // block: query rows per product
  };
  struct Scratch {
    Buffer<float> scores, dprobs;  // [block, len]
    Buffer<bf16> probs, dscores;   // [block, len]
    Buffer<bf16> dout;             // [len, hd], one query head's dO
    Buffer<float> dsum;            // [len]
    Buffer<uint8_t> onednn;        // the products' scratchpad
  };
  std::vector<Task> tasks;
  std::vector<Scratch> scratch;  // one per thread
};

// Gradient of cpu::attention (non-causal GQA over packed sequences, scale 1/sqrt(hd)):
// recomputes the probabilities from q and k blockwise, then
//   dP = dO V^T, dS = P * (dP - rowsum(dO * O)) * scale, dQ = dS K, dK = dS^T Q, dV = P^T dO.
// q, out, dout, dq: [T, n_heads*hd]; k, v, dk, dv: [T, n_kv_heads*hd]; dense rows. dq, dk, dv
// are written (not accumulated). out must be the forward's output for these q, k, v.
void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q,
                        const float* k, const float* v, const float* out,
                        const AttentionBackwardShape& s, AttentionBackwardWorkspace& ws);

// Gradient of attention_bf16_heads() (the bf16 training forward), on the operands that forward
// reads and writes, so nothing is gathered or recomputed in fp32 but the scores: head-major
// bf16 q [n_heads, ld_rows, hd] and k, v [n_kv_heads, ld_rows, hd] (q, k after RoPE), the bf16
// output out16 [T, n_heads*hd] and the fp32 output gradient dout [T, n_heads*hd]. Writes
// head-major fp32 dq [n_heads, ld_rows, hd] and dk, dv [n_kv_heads, ld_rows, hd] (summed over
// each kv head's query heads). One parallel loop over (sequence, kv head) tasks; each task
// runs its products on its own thread (S, dP, softmax and dS per query block stay in its
// cache) and sums dK, dV over its query heads and blocks in a fixed order, so the result does
// not depend on the thread count. dK = dS^T Q and dV = P^T dO read dS and P transposed in
// place. s.bf16 is implied.
void attention_backward_heads(float* dq, float* dk, float* dv, const float* dout, const bf16* q,
                              const bf16* k, const bf16* v, const bf16* out16, int64_t ld_rows,
                              const AttentionBackwardShape& s, AttentionBackwardWorkspace& ws);

// The gradient of rope_bf16_heads(), back to rows: out [rows, n_heads*hd] (dense) =
// bf16(dx rotated by -angle), dx head-major fp32 [n_heads, ld_rows, hd]. cos_sin null: no
// rotation (the values' gradient), only the layout change and rounding.
void rope_backward_heads(bf16* out, const float* dx, int64_t ld_rows, const int32_t* pos,
                         int64_t rows, int64_t n_heads, int64_t hd, const float* cos_sin);
// The same with out's row stride ld (e.g. one column range of a wider [rows, ld] buffer).
void rope_backward_heads(bf16* out, int64_t ld, const float* dx, int64_t ld_rows,
                         const int32_t* pos, int64_t rows, int64_t n_heads, int64_t hd,
                         const float* cos_sin);

}  // namespace illada::cpu

// The LLaDA block, defined once: x += attn_out(attention(rope(q), rope(k), v)) over
// rmsnorm(x), then x += ff_out(silu(ff_proj(n)) * up_proj(n)) over n = rmsnorm(x). Inference
// (fp32 or bf16, with or without Fast-dLLM's KV cache) and training (whose backward reads the
// activations this forward leaves) both run block_forward(); the precision is the template
// argument T, the matmul operand type (float, or bf16 with fp32 accumulation), and the caller
// says where each activation goes. Also the one validator of packed batches, the embedding and
// the head, which the two paths share as well.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/attention_bf16.h"
#include "model/config.h"
#include "model/weights.h"
#include "util/aligned.h"
#include "util/bf16.h"

namespace illada {

// A packed batch after validation: sequence offsets and the position of every row.
struct PackedLayout {
  std::vector<int32_t> cu;   // [n_seqs + 1]
  std::vector<int32_t> pos;  // [T] restarting at 0 per sequence, or at its first cache row
  int64_t longest = 0;       // largest position + 1
  int64_t n_seqs() const { return static_cast<int64_t>(cu.size()) - 1; }
};

// Checks a packed batch and fills `out`: cu_seqlens (empty: one sequence of all ids) must start
// at 0, end at the number of ids and never decrease; every id must lie in [0, vocab) (vocab < 0:
// not checked, for clean ids that may hold anything); no position may reach max_len. Sequence b
// starts at position first_pos[b] (empty: 0). Throws Error starting with `who`.
void validate_packed(PackedLayout& out, std::span<const int32_t> ids, std::span<const int32_t> cu_seqlens,
                     int64_t vocab, int64_t max_len, std::span<const int32_t> first_pos, const char* who);

// Keys and values of every layer for one sequence, after RoPE, in the compute precision: what a
// request owns when it decodes with Fast-dLLM's block-wise approximate cache.
struct KVCache {
  int64_t capacity = 0;  // positions
  int64_t n_kv_heads = 0, head_dim = 0;
  ComputeType dtype = ComputeType::kF32;
  Buffer<float> k, v;     // fp32: [n_layers, capacity, n_kv_heads*hd] row-major
  Buffer<bf16> k16, v16;  // bf16: [n_layers, n_kv_heads, capacity, hd] head-major
  void reset(const ModelConfig& c, int64_t positions, ComputeType dtype);
  int64_t kv_dim() const { return n_kv_heads * head_dim; }
  float* k_layer(int64_t l) { return k.data() + l * capacity * kv_dim(); }
  float* v_layer(int64_t l) { return v.data() + l * capacity * kv_dim(); }
  bf16* k16_layer(int64_t l) { return k16.data() + l * capacity * kv_dim(); }
  bf16* v16_layer(int64_t l) { return v16.data() + l * capacity * kv_dim(); }
};

// Use of a cache by one sequence of a forward call: its ids sit at positions
// [first_pos, first_pos + len); their keys/values are written into the cache at those rows,
// and its queries attend to cache rows [0, kv_len) (which must include them).
struct SeqCache {
  KVCache* cache = nullptr;
  int32_t first_pos = 0;
  int32_t kv_len = 0;
};

struct BlockDims {
  int64_t d = 0, hd = 0, n_heads = 0, n_kv_heads = 0, mlp = 0;
  float eps = 0;
  int64_t qd() const { return n_heads * hd; }
  int64_t kvd() const { return n_kv_heads * hd; }
  int64_t qkv() const { return qd() + 2 * kvd(); }
  static BlockDims of(const ModelConfig& c);
};

// What every layer of one forward call shares: the batch, the RoPE table and the caches.
struct BlockBatch {
  int64_t t = 0;                         // rows
  const PackedLayout* layout = nullptr;
  const float* rope_table = nullptr;     // [>= layout->longest, hd]
  std::span<const SeqCache> caches;      // empty, or one per sequence
  std::vector<int32_t> cu_kv;            // [n_seqs + 1] key offsets with caches
  int64_t t_kv = 0;                      // keys of all sequences (t without caches)
};

// Where one layer's activations go, [t, ...] rows unless said. Inference gives the same
// buffers to every layer; training gives each layer its own, and its backward reads them.
template <class T>
struct BlockActs {
  T* n1 = nullptr;  // [t, d] attn_norm output
  // fp32: q [t, qd], k, v [t, kvd] row-major, q and k after RoPE.
  float *q = nullptr, *k = nullptr, *v = nullptr;
  // bf16: qkv [t, qd + 2 kvd], the product's output; q16 [n_heads, t, hd] after RoPE and
  // k16, v16 [n_kv_heads, t_kv, hd] (with caches: every cached key of the batch), head-major.
  bf16 *qkv = nullptr, *q16 = nullptr, *k16 = nullptr, *v16 = nullptr;
  T* att = nullptr;         // [t, qd] attention output
  float* x_mid = nullptr;   // [t, d] residual stream after attention (may be x_in itself)
  T* n2 = nullptr;          // [t, d] ff_norm output (may share n1's buffer)
  float *gate = nullptr, *up = nullptr;  // fp32: [t, mlp] before the activation
  bf16* gate_up = nullptr;               // bf16: [t, 2 mlp], gate | up
  T* hidden = nullptr;      // [t, mlp] silu(gate) * up (fp32 may be gate itself)
};

// Scratch that attention and the caches need, reused across calls.
struct BlockWorkspace {
  cpu::AttentionWorkspace attn;
  cpu::Bf16AttentionWorkspace attn_bf16;
  std::vector<const float*> k_seq, v_seq;  // fp32 caches: one layer's bases per sequence
};

// One layer: reads x_in, writes a.x_mid and x_out (x_in, x_mid and x_out may all be one buffer:
// the residuals are then added in place). With caches, the layer's fresh keys and values go
// into them and attention reads every cached row. T: float or bf16.
template <class T>
void block_forward(const LayerWeights& w, int64_t layer, const BlockDims& dims, const BlockBatch& batch,
                   const float* x_in, float* x_out, BlockActs<T>& a, BlockWorkspace& ws);

// x [t, d] fp32 = the embedding rows of ids (fp32 or bf16 table, widened).
void embed(float* x, std::span<const int32_t> ids, const Matrix& wte, bool wte_bf16, int64_t d);

// The head on chosen rows: gathered [rows, d] = x[rows[i]] (fp32, kept for a backward),
// normed [rows_pad, d] = ln_f(gathered) in the operand type with zero rows past rows.size(),
// logits [rows_pad, vocab] = normed · head^T (zero rows past rows.size()). rows_pad >= rows.
template <class T>
void head_forward(float* logits, float* gathered, T* normed, const float* x, std::span<const int32_t> rows,
                  int64_t rows_pad, const float* ln_f, const Matrix& head, int64_t d, float eps);

}  // namespace illada

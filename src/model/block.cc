// The one LLaDA block (see block.h). Its products: fp32 runs q, k, v and gate, up as separate
// fp32 products; bf16 runs q/k/v and gate/up as one product each (a fused or packed matrix, or
// column slices of one output) writing bf16, rounded once on the store as a bf16 Linear does,
// and RoPE/SwiGLU read those bf16 rows. Residual connections are added in the product's store.
// Block-quantised matrices (a GGUF file's blocks, Matrix::quant) run kernels/qgemm.h's integer
// products in either precision: fp32 out, rounded to bf16 once where the block wants bf16.
#include "model/block.h"

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "kernels/cpu/bf16_ops.h"
#include "kernels/cpu/ops.h"
#include "kernels/gemm.h"
#include "kernels/qgemm.h"
#include "kernels/quant.h"
#include "util/check.h"
#include "util/profile.h"

namespace illada {
namespace {

template <class T>
constexpr bool kBf16 = std::is_same_v<T, bf16>;

// The product on a quantised matrix's blocks (see product): int8 activations, integer dot
// products (kernels/qgemm.h); a bf16 output (never accumulated) is rounded once as it is stored.
template <class C, class T>
void quant_product(C* y, int64_t ldy, const T* x, const Matrix& w, int64_t t, bool accumulate) {
  qgemm(y, x, QuantMatrix{w.quant, static_cast<const std::byte*>(w.data), w.rows, w.cols}, t,
        {.ldy = ldy, .accumulate = accumulate});
}

// y [t, w.rows] (row stride ldy) (+)= x [t, w.cols] · W^T.
template <class C, class T>
void product(C* y, int64_t ldy, const T* x, const Matrix& w, int64_t t, bool accumulate) {
  ProfileScope prof("linear");
  if (w.quantised()) {
    quant_product(y, ldy, x, w, t, accumulate);
    return;
  }
  GemmShape s = linear_shape(t, w.rows, w.cols, accumulate);
  s.ldc = ldy;
  if constexpr (kBf16<T>) {
    if (w.packed) {
      gemm(y, x, *w.packed, s);
    } else {
      gemm(y, x, w.b16(), s);
    }
  } else {
    gemm(y, x, w.f32(), s);
  }
}

// y [t, w.rows] = r + x · W^T; with y == r, added in place.
template <class T>
void residual_product(float* y, const T* x, const Matrix& w, const float* r, int64_t t) {
  if (y == r) {
    product(y, w.rows, x, w, t, true);
    return;
  }
  if constexpr (kBf16<T>) {
    if (w.quantised()) {
      std::memcpy(y, r, static_cast<size_t>(t * w.rows) * sizeof(float));
      product(y, w.rows, x, w, t, true);
      return;
    }
    ProfileScope prof("linear");
    const GemmShape s = linear_shape(t, w.rows, w.cols, false);
    if (w.packed) {
      gemm_add(y, x, *w.packed, r, s);
    } else {
      gemm_add(y, x, w.b16(), r, s);
    }
  } else {
    std::memcpy(y, r, static_cast<size_t>(t * w.rows) * sizeof(float));
    product(y, w.rows, x, w, t, true);
  }
}

void rmsnorm_op(float* out, const float* x, const float* w, int64_t rows, int64_t d, float eps) {
  cpu::rmsnorm(out, x, w, rows, d, eps);
}
void rmsnorm_op(bf16* out, const float* x, const float* w, int64_t rows, int64_t d, float eps) {
  cpu::rmsnorm_bf16(out, x, w, rows, d, eps);
}

cpu::AttentionShape attention_shape(const BlockDims& dims, const BlockBatch& batch, bool bf16) {
  return {.n_heads = dims.n_heads, .n_kv_heads = dims.n_kv_heads, .head_dim = dims.hd,
          .n_seqs = batch.layout->n_seqs(), .cu_seqlens = batch.layout->cu.data(),
          .cu_seqlens_kv = batch.caches.empty() ? nullptr : batch.cu_kv.data(), .bf16 = bf16};
}

// fp32 attention sub-block input: q, k, v rows after RoPE; with caches the fresh rows go into
// them and attention reads each sequence's cache.
void attend_f32(float* att, const float* q, const float* k, const float* v, int64_t layer, const BlockDims& dims,
                const BlockBatch& batch, BlockWorkspace& ws) {
  cpu::AttentionShape s = attention_shape(dims, batch, false);
  if (!batch.caches.empty()) {
    const auto& cu = batch.layout->cu;
    const int64_t kvd = dims.kvd(), n = batch.layout->n_seqs();
    ws.k_seq.resize(static_cast<size_t>(n));
    ws.v_seq.resize(static_cast<size_t>(n));
    for (int64_t b = 0; b < n; ++b) {
      KVCache& kc = *batch.caches[b].cache;
      const int64_t rows = cu[b + 1] - cu[b], first = batch.caches[b].first_pos;
      std::memcpy(kc.k_layer(layer) + first * kvd, k + cu[b] * kvd, static_cast<size_t>(rows * kvd) * 4);
      std::memcpy(kc.v_layer(layer) + first * kvd, v + cu[b] * kvd, static_cast<size_t>(rows * kvd) * 4);
      ws.k_seq[b] = kc.k_layer(layer);
      ws.v_seq[b] = kc.v_layer(layer);
    }
    s.k_seq = ws.k_seq.data();
    s.v_seq = ws.v_seq.data();
  }
  ProfileScope prof("attention");
  cpu::attention(att, q, k, v, s, ws.attn);
}

// bf16: RoPE from the fused product's rows into head-major operands (and the caches), then
// attention over them.
void attend_bf16(bf16* att, BlockActs<bf16>& a, int64_t layer, const BlockDims& dims, const BlockBatch& batch,
                 BlockWorkspace& ws) {
  const int64_t t = batch.t, hd = dims.hd, qd = dims.qd(), kvd = dims.kvd(), ld = dims.qkv();
  const int32_t* pos = batch.layout->pos.data();
  cpu::rope_bf16_heads(a.q16, t, a.qkv, ld, pos, t, dims.n_heads, hd, batch.rope_table);
  if (batch.caches.empty()) {
    cpu::rope_bf16_heads(a.k16, t, a.qkv + qd, ld, pos, t, dims.n_kv_heads, hd, batch.rope_table);
    cpu::to_bf16_heads(a.v16, t, a.qkv + qd + kvd, ld, t, dims.n_kv_heads, hd);
  } else {
    // Fresh rows into each sequence's cache, then every cached row into the batch's operands.
    const auto& cu = batch.layout->cu;
    for (int64_t b = 0; b < batch.layout->n_seqs(); ++b) {
      KVCache& kc = *batch.caches[b].cache;
      const int64_t rows = cu[b + 1] - cu[b], first = batch.caches[b].first_pos, cap = kc.capacity;
      const bf16* src = a.qkv + cu[b] * ld;
      cpu::rope_bf16_heads(kc.k16_layer(layer) + first * hd, cap, src + qd, ld, pos + cu[b], rows, dims.n_kv_heads,
                           hd, batch.rope_table);
      cpu::to_bf16_heads(kc.v16_layer(layer) + first * hd, cap, src + qd + kvd, ld, rows, dims.n_kv_heads, hd);
      const int64_t k0 = batch.cu_kv[b], kv_len = batch.cu_kv[b + 1] - k0;
      for (int64_t h = 0; h < dims.n_kv_heads; ++h) {
        const size_t bytes = static_cast<size_t>(kv_len * hd) * sizeof(bf16);
        std::memcpy(a.k16 + (h * batch.t_kv + k0) * hd, kc.k16_layer(layer) + h * cap * hd, bytes);
        std::memcpy(a.v16 + (h * batch.t_kv + k0) * hd, kc.v16_layer(layer) + h * cap * hd, bytes);
      }
    }
  }
  cpu::attention_bf16_heads(att, a.q16, t, a.k16, a.v16, batch.caches.empty() ? t : batch.t_kv,
                            attention_shape(dims, batch, true), ws.attn_bf16);
}

}  // namespace

BlockDims BlockDims::of(const ModelConfig& c) {
  return {.d = c.d_model, .hd = c.head_dim(), .n_heads = c.n_heads, .n_kv_heads = c.n_kv_heads,
          .mlp = c.mlp_hidden_size, .eps = static_cast<float>(c.rms_norm_eps)};
}

void validate_packed(PackedLayout& out, std::span<const int32_t> ids, std::span<const int32_t> cu_seqlens,
                     int64_t vocab, int64_t max_len, std::span<const int32_t> first_pos, const char* who) {
  const int64_t t = static_cast<int64_t>(ids.size());
  if (t == 0) fail(who, ": empty input (no token ids)");
  out.cu.assign(cu_seqlens.begin(), cu_seqlens.end());
  if (out.cu.empty()) out.cu = {0, static_cast<int32_t>(t)};
  if (out.cu.size() < 2 || out.cu.front() != 0 || out.cu.back() != t) {
    fail(who, ": cu_seqlens must start at 0 and end at the number of ids (", t, ")");
  }
  const int64_t n = out.n_seqs();
  if (!first_pos.empty() && static_cast<int64_t>(first_pos.size()) != n) {
    fail(who, ": ", first_pos.size(), " cache positions for ", n, " sequences");
  }
  out.pos.resize(static_cast<size_t>(t));
  out.longest = 0;
  for (int64_t b = 0; b < n; ++b) {
    const int64_t len = out.cu[b + 1] - out.cu[b];
    if (len < 0) fail(who, ": cu_seqlens must be non-decreasing (at sequence ", b, ")");
    const int64_t first = first_pos.empty() ? 0 : first_pos[b];
    if (first < 0) fail(who, ": sequence ", b, " starts at position ", first);
    if (first + len > max_len) {
      fail(who, ": sequence ", b, " reaches position ", first + len, ", more than max_sequence_length ", max_len);
    }
    out.longest = std::max(out.longest, first + len);
    for (int64_t i = 0; i < len; ++i) out.pos[out.cu[b] + i] = static_cast<int32_t>(first + i);
  }
  if (vocab >= 0) {
    for (int64_t i = 0; i < t; ++i) {
      if (ids[i] < 0 || ids[i] >= vocab) {
        fail(who, ": token id ", ids[i], " at position ", i, " is outside the vocabulary [0, ", vocab, ")");
      }
    }
  }
}

void KVCache::reset(const ModelConfig& c, int64_t positions, ComputeType type) {
  capacity = positions;
  n_kv_heads = c.n_kv_heads;
  head_dim = c.head_dim();
  dtype = type;
  const auto n = static_cast<size_t>(c.n_layers * capacity * kv_dim());
  if (dtype == ComputeType::kF32) {
    k.assign(n, 0.0f);
    v.assign(n, 0.0f);
  } else {
    k16.resize(n);
    v16.resize(n);
  }
}

template <class T>
void block_forward(const LayerWeights& w, int64_t layer, const BlockDims& dims, const BlockBatch& batch,
                   const float* x_in, float* x_out, BlockActs<T>& a, BlockWorkspace& ws) {
  const int64_t t = batch.t, d = dims.d, qd = dims.qd(), kvd = dims.kvd(), mlp = dims.mlp;
  // Attention sub-block.
  rmsnorm_op(a.n1, x_in, w.attn_norm, t, d, dims.eps);
  if constexpr (kBf16<T>) {
    const int64_t ld = dims.qkv();
    if (w.qkv.rows > 0) {
      product(a.qkv, ld, a.n1, w.qkv, t, false);
    } else {
      product(a.qkv, ld, a.n1, w.q_proj, t, false);
      product(a.qkv + qd, ld, a.n1, w.k_proj, t, false);
      product(a.qkv + qd + kvd, ld, a.n1, w.v_proj, t, false);
    }
    {
      ProfileScope prof("attention");
      attend_bf16(a.att, a, layer, dims, batch, ws);
    }
  } else {
    product(a.q, qd, a.n1, w.q_proj, t, false);
    product(a.k, kvd, a.n1, w.k_proj, t, false);
    product(a.v, kvd, a.n1, w.v_proj, t, false);
    cpu::rope(a.q, qd, batch.layout->pos.data(), t, dims.n_heads, dims.hd, batch.rope_table);
    cpu::rope(a.k, kvd, batch.layout->pos.data(), t, dims.n_kv_heads, dims.hd, batch.rope_table);
    attend_f32(a.att, a.q, a.k, a.v, layer, dims, batch, ws);
  }
  residual_product(a.x_mid, static_cast<const T*>(a.att), w.attn_out, x_in, t);

  // Feed-forward sub-block.
  rmsnorm_op(a.n2, a.x_mid, w.ff_norm, t, d, dims.eps);
  if constexpr (kBf16<T>) {
    if (w.gate_up.rows > 0) {
      product(a.gate_up, 2 * mlp, a.n2, w.gate_up, t, false);
    } else {
      product(a.gate_up, 2 * mlp, a.n2, w.ff_proj, t, false);
      product(a.gate_up + mlp, 2 * mlp, a.n2, w.up_proj, t, false);
    }
    cpu::swiglu_bf16_rows(a.hidden, a.gate_up, t, mlp);
  } else {
    product(a.gate, mlp, a.n2, w.ff_proj, t, false);
    product(a.up, mlp, a.n2, w.up_proj, t, false);
    cpu::swiglu(a.hidden, a.gate, a.up, t * mlp);
  }
  residual_product(x_out, static_cast<const T*>(a.hidden), w.ff_out, a.x_mid, t);
}

template void block_forward<float>(const LayerWeights&, int64_t, const BlockDims&, const BlockBatch&, const float*,
                                   float*, BlockActs<float>&, BlockWorkspace&);
template void block_forward<bf16>(const LayerWeights&, int64_t, const BlockDims&, const BlockBatch&, const float*,
                                  float*, BlockActs<bf16>&, BlockWorkspace&);

void embed(float* x, std::span<const int32_t> ids, const Matrix& wte, bool wte_bf16, int64_t d) {
  const int64_t t = static_cast<int64_t>(ids.size());
#pragma omp parallel for schedule(static) if (t * d >= (1 << 15))
  for (int64_t i = 0; i < t; ++i) {
    float* dst = x + i * d;
    const int64_t row = static_cast<int64_t>(ids[i]) * d;
    if (wte.quantised()) {  // the one row, dequantised from its blocks
      const uint64_t row_bytes = ggml_row_bytes(wte.quant, d);
      dequantize_rows(wte.quant, static_cast<const std::byte*>(wte.data) + ids[i] * row_bytes, dst, 1, d);
    } else if (wte_bf16) {
      to_float(dst, wte.b16() + row, d);
    } else {
      std::memcpy(dst, wte.f32() + row, static_cast<size_t>(d) * sizeof(float));
    }
  }
}

template <class T>
void head_forward(float* logits, float* gathered, T* normed, const float* x, std::span<const int32_t> rows,
                  int64_t rows_pad, const float* ln_f, const Matrix& head, int64_t d, float eps) {
  const int64_t m = static_cast<int64_t>(rows.size());
  ILLADA_CHECK(rows_pad >= m);
  for (int64_t i = 0; i < m; ++i) {
    std::memcpy(gathered + i * d, x + static_cast<int64_t>(rows[i]) * d, static_cast<size_t>(d) * sizeof(float));
  }
  rmsnorm_op(normed, gathered, ln_f, m, d, eps);
  std::fill(normed + m * d, normed + rows_pad * d, T{});
  product(logits, head.rows, static_cast<const T*>(normed), head, rows_pad, false);
}

template void head_forward<float>(float*, float*, float*, const float*, std::span<const int32_t>, int64_t,
                                  const float*, const Matrix&, int64_t, float);
template void head_forward<bf16>(float*, float*, bf16*, const float*, std::span<const int32_t>, int64_t,
                                 const float*, const Matrix&, int64_t, float);

}  // namespace illada

// Forward pass: embedding, n_layers x (RMSNorm, GQA attention with RoPE, residual, RMSNorm,
// SwiGLU, residual), final RMSNorm and head. bf16 mode rounds every matmul input to bf16 and
// accumulates in fp32; norms, RoPE and softmax stay fp32 as in the reference.
#include "model/transformer.h"

#include <algorithm>
#include <cstring>

#include "io/safetensors.h"
#include "kernels/cpu/attention_bf16.h"
#include "kernels/cpu/bf16_ops.h"
#include "kernels/cpu/ops.h"
#include "kernels/gemm.h"
#include "model/tensor_check.h"
#include "util/check.h"
#include "util/memory.h"
#include "util/profile.h"

namespace illada {
namespace {

// y[T, n] (+)= x[T, k] · W^T in fp32.
void linear(float* y, const float* x, const Matrix& w, int64_t t, bool accumulate) {
  ProfileScope prof("linear");
  gemm(y, x, w.f32(), linear_shape(t, w.rows, w.cols, accumulate));
}

// y[T, n] (+)= x16[T, k] · W^T with x16 already in bf16.
void linear16(float* y, const bf16* x16, const Matrix& w, int64_t t, bool accumulate) {
  ProfileScope prof("linear");
  const GemmShape s = linear_shape(t, w.rows, w.cols, accumulate);
  if (w.packed) {
    gemm(y, x16, *w.packed, s);
  } else {
    gemm(y, x16, w.b16(), s);
  }
}

}  // namespace

void KVCache::reset(const ModelConfig& c, int64_t positions) {
  capacity = positions;
  kv_dim = c.n_kv_heads * c.head_dim();
  const auto n = static_cast<size_t>(c.n_layers * capacity * kv_dim);
  k.assign(n, 0.0f);
  v.assign(n, 0.0f);
}

Model::Model(ModelConfig config, ModelWeights weights)
    : config_(std::move(config)), weights_(std::move(weights)) {}

Model Model::load(const std::string& dir, ComputeType dtype, bool pack, bool check_tensors) {
  ModelSource src = open_model_source(dir);  // a model directory or a GGUF file
  // f32 compute converts every weight into memory of its own (bf16 maps the file instead).
  if (dtype == ComputeType::kF32) require_memory(4.0 * static_cast<double>(src.config.n_params()), dir + ": the f32 weights");
  if (check_tensors) check_tensors_finite(*src.store, dir);
  ModelWeights weights = load_weights(src.store, src.config, dtype, dir);
  if (pack) pack_matrices(weights);
  return Model(std::move(src.config), std::move(weights));
}

void Model::forward(const ForwardInput& in, ForwardState& st, std::span<float> logits) const {
  const ModelConfig& c = config_;
  const ModelWeights& w = weights_;
  const int64_t t = static_cast<int64_t>(in.ids.size());
  const int64_t d = c.d_model, hd = c.head_dim(), qd = c.n_heads * hd, kvd = c.n_kv_heads * hd;
  const int64_t mlp = c.mlp_hidden_size, vocab = c.embedding_size;
  if (t == 0) fail("forward: empty input (no token ids)");

  // Validate the batch layout and the ids before touching memory.
  st.cu.assign(in.cu_seqlens.begin(), in.cu_seqlens.end());
  if (st.cu.empty()) st.cu = {0, static_cast<int32_t>(t)};
  if (st.cu.front() != 0 || st.cu.back() != t) {
    fail("forward: cu_seqlens must start at 0 and end at the number of ids (", t, ")");
  }
  sized(st.pos, t);
  const int64_t n_seqs = static_cast<int64_t>(st.cu.size()) - 1;
  const bool cached = !in.caches.empty();
  if (cached && static_cast<int64_t>(in.caches.size()) != n_seqs) {
    fail("forward: ", in.caches.size(), " caches given for ", n_seqs, " sequences");
  }
  int64_t longest = 0;  // largest position + 1
  for (int64_t b = 0; b < n_seqs; ++b) {
    const int64_t len = st.cu[b + 1] - st.cu[b];
    if (len < 0) fail("forward: cu_seqlens must be non-decreasing (at sequence ", b, ")");
    const int64_t first = cached ? in.caches[b].first_pos : 0;
    if (cached) {
      const SeqCache& sc = in.caches[b];
      ILLADA_CHECK(sc.cache && sc.cache->kv_dim == kvd, "sequence ", b, ": cache not reset");
      ILLADA_CHECK(first >= 0 && first + len <= sc.kv_len && sc.kv_len <= sc.cache->capacity,
                   "sequence ", b, ": positions [", first, ", ", first + len, ") keys ",
                   sc.kv_len, " capacity ", sc.cache->capacity);
    }
    if (first + len > c.max_sequence_length) {
      fail("forward: sequence ", b, " reaches position ", first + len,
           ", more than max_sequence_length ", c.max_sequence_length);
    }
    longest = std::max(longest, first + len);
    for (int64_t i = 0; i < len; ++i) st.pos[st.cu[b] + i] = static_cast<int32_t>(first + i);
  }
  if (cached) {
    st.cu_kv.assign(1, 0);
    for (const SeqCache& sc : in.caches) st.cu_kv.push_back(st.cu_kv.back() + sc.kv_len);
    st.k_seq.resize(n_seqs);
    st.v_seq.resize(n_seqs);
  }
  for (int64_t i = 0; i < t; ++i) {
    if (in.ids[i] < 0 || in.ids[i] >= vocab) {
      fail("forward: token id ", in.ids[i], " at position ", i, " is outside the vocabulary [0, ",
           vocab, ")");
    }
  }
  const int64_t rows = logit_row_count(in);
  for (int32_t r : in.logit_rows) {
    if (r < 0 || r >= t) fail("forward: logit row ", r, " is outside [0, ", t, ")");
  }
  ILLADA_CHECK(static_cast<int64_t>(logits.size()) == rows * vocab, "logits buffer has ",
               logits.size(), " floats, expected ", rows * vocab);

  if (st.rope_len < longest) {
    st.rope_len = std::max<int64_t>(longest, 64);
    st.rope_table.resize(static_cast<size_t>(st.rope_len * hd));
    cpu::rope_table(st.rope_table.data(), st.rope_len, hd, static_cast<float>(c.rope_theta));
  }
  sized(st.x, t * d);
  sized(st.q, t * qd);
  if (w.dtype == ComputeType::kF32) {  // the bf16 path keeps these in bf16 only
    sized(st.normed, t * d);
    sized(st.attn, t * qd);
  }
  for (auto* v : {&st.k, &st.v}) sized(*v, t * kvd);
  for (auto* v : {&st.gate, &st.up}) sized(*v, t * mlp);

  // Embedding.
#pragma omp parallel for schedule(static) if (t * d >= (1 << 15))
  for (int64_t i = 0; i < t; ++i) {
    float* dst = st.x.data() + i * d;
    if (w.dtype == ComputeType::kF32) {
      std::memcpy(dst, w.wte.f32() + static_cast<int64_t>(in.ids[i]) * d, d * sizeof(float));
    } else {
      const bf16* src = w.wte.b16() + static_cast<int64_t>(in.ids[i]) * d;
      for (int64_t j = 0; j < d; ++j) dst[j] = to_float(src[j]);
    }
  }

  const float eps = static_cast<float>(c.rms_norm_eps);
  const cpu::AttentionShape ashape{.n_heads = c.n_heads, .n_kv_heads = c.n_kv_heads,
                                   .head_dim = hd,
                                   .n_seqs = n_seqs,
                                   .cu_seqlens = st.cu.data(),
                                   .cu_seqlens_kv = cached ? st.cu_kv.data() : nullptr,
                                   .k_seq = cached ? st.k_seq.data() : nullptr,
                                   .v_seq = cached ? st.v_seq.data() : nullptr,
                                   .bf16 = w.dtype == ComputeType::kBF16};
  if (w.dtype == ComputeType::kBF16) {
    bf16_layers(in, st, t, cached, n_seqs, ashape);
  } else {
    f32_layers(in, st, t, cached, n_seqs, ashape);
  }

  // Head on the requested rows only.
  const float* head_src = st.x.data();
  if (!in.logit_rows.empty()) {
    sized(st.head_in, rows * d);
    for (int64_t r = 0; r < rows; ++r) {
      std::memcpy(st.head_in.data() + r * d, st.x.data() + in.logit_rows[r] * d, d * sizeof(float));
    }
    head_src = st.head_in.data();
  }
  if (w.dtype == ComputeType::kBF16) {
    sized(st.normed16, rows * d);
    cpu::rmsnorm_bf16(st.normed16.data(), head_src, w.ln_f, rows, d, eps);
    linear16(logits.data(), st.normed16.data(), w.head, rows, false);
  } else {
    cpu::rmsnorm(st.normed.data(), head_src, w.ln_f, rows, d, eps);
    linear(logits.data(), st.normed.data(), w.head, rows, false);
  }
  // NaN/Inf weights (or activations that overflow) poison every logit after them; argmax would
  // then pick token 0 forever and a score would print nan. A bit test over what the head just
  // wrote costs well under 1% of the head product.
  if (const int64_t bad = first_non_finite(logits.subspan(0, rows * vocab)); bad >= 0) {
    fail("the model produced a non-finite logit (", logits[bad], ") at row ", bad / vocab, ", token ", bad % vocab,
         ": its weights hold NaN/Inf or overflow in ", compute_type_name(w.dtype),
         " (scan them with --check-tensors)");
  }
}

// The blocks in fp32, the reference numerics (the training forward mirrors this layout).
void Model::f32_layers(const ForwardInput& in, ForwardState& st, int64_t t, bool cached,
                       int64_t n_seqs, const cpu::AttentionShape& ashape) const {
  const ModelConfig& c = config_;
  const ModelWeights& w = weights_;
  const int64_t d = c.d_model, hd = c.head_dim(), qd = c.n_heads * hd, kvd = c.n_kv_heads * hd;
  const int64_t mlp = c.mlp_hidden_size;
  const float eps = static_cast<float>(c.rms_norm_eps);
  for (int64_t li = 0; li < c.n_layers; ++li) {
    const LayerWeights& l = w.layers[li];
    // Attention sub-block.
    cpu::rmsnorm(st.normed.data(), st.x.data(), l.attn_norm, t, d, eps);
    linear(st.q.data(), st.normed.data(), l.q_proj, t, false);
    linear(st.k.data(), st.normed.data(), l.k_proj, t, false);
    linear(st.v.data(), st.normed.data(), l.v_proj, t, false);
    cpu::rope(st.q.data(), qd, st.pos.data(), t, c.n_heads, hd, st.rope_table.data());
    cpu::rope(st.k.data(), kvd, st.pos.data(), t, c.n_kv_heads, hd, st.rope_table.data());
    if (cached) {  // fresh keys/values into the cache; attention then reads the cache
      for (int64_t b = 0; b < n_seqs; ++b) {
        KVCache& kc = *in.caches[b].cache;
        const int64_t rows = st.cu[b + 1] - st.cu[b], first = in.caches[b].first_pos;
        std::memcpy(kc.k_layer(li) + first * kvd, st.k.data() + st.cu[b] * kvd, rows * kvd * 4);
        std::memcpy(kc.v_layer(li) + first * kvd, st.v.data() + st.cu[b] * kvd, rows * kvd * 4);
        st.k_seq[b] = kc.k_layer(li);
        st.v_seq[b] = kc.v_layer(li);
      }
    }
    {
      ProfileScope prof_attn("attention");
      cpu::attention(st.attn.data(), st.q.data(), st.k.data(), st.v.data(), ashape, st.attn_ws);
    }
    linear(st.x.data(), st.attn.data(), l.attn_out, t, true);

    // Feed-forward sub-block: x += ff_out(silu(ff_proj(n)) * up_proj(n)).
    cpu::rmsnorm(st.normed.data(), st.x.data(), l.ff_norm, t, d, eps);
    linear(st.gate.data(), st.normed.data(), l.ff_proj, t, false);
    linear(st.up.data(), st.normed.data(), l.up_proj, t, false);
    cpu::swiglu(st.gate.data(), st.gate.data(), st.up.data(), t * mlp);
    linear(st.x.data(), st.gate.data(), l.ff_out, t, true);
  }
}

// The blocks in bf16: every op that feeds a matrix product writes its bf16 input directly
// (bf16_ops.h; RoPE writes the head-major q/k that attention_bf16.h reads), so no pass only
// converts or regathers. Same roundings as f32_layers() with bf16 products: each product's
// inputs rounded to bf16, accumulation, norms, RoPE and softmax in fp32.
void Model::bf16_layers(const ForwardInput& in, ForwardState& st, int64_t t, bool cached,
                        int64_t n_seqs, const cpu::AttentionShape& ashape) const {
  const ModelConfig& c = config_;
  const int64_t d = c.d_model, hd = c.head_dim(), qd = c.n_heads * hd, kvd = c.n_kv_heads * hd;
  const int64_t mlp = c.mlp_hidden_size;
  const float eps = static_cast<float>(c.rms_norm_eps);
  sized(st.normed16, t * d);
  sized(st.attn16, t * qd);
  sized(st.hidden16, t * mlp);
  sized(st.q16, t * qd);
  // Keys and values of every sequence: the fresh rows, or the whole cache with a cache.
  const int64_t t_kv = cached ? st.cu_kv.back() : t;
  sized(st.k16, t_kv * kvd);
  sized(st.v16, t_kv * kvd);
  cpu::AttentionShape heads_shape = ashape;  // keys come from k16/v16, not the cache
  heads_shape.k_seq = heads_shape.v_seq = nullptr;
  for (int64_t li = 0; li < c.n_layers; ++li) {
    const LayerWeights& l = weights_.layers[li];
    // Attention sub-block.
    cpu::rmsnorm_bf16(st.normed16.data(), st.x.data(), l.attn_norm, t, d, eps);
    linear16(st.q.data(), st.normed16.data(), l.q_proj, t, false);
    linear16(st.k.data(), st.normed16.data(), l.k_proj, t, false);
    linear16(st.v.data(), st.normed16.data(), l.v_proj, t, false);
    cpu::rope_bf16_heads(st.q16.data(), t, st.q.data(), qd, st.pos.data(), t, c.n_heads, hd,
                         st.rope_table.data());
    if (!cached) {
      cpu::rope_bf16_heads(st.k16.data(), t, st.k.data(), kvd, st.pos.data(), t, c.n_kv_heads,
                           hd, st.rope_table.data());
      cpu::to_bf16_heads(st.v16.data(), t, st.v.data(), kvd, t, c.n_kv_heads, hd);
    } else {  // the cache keeps fp32 keys after RoPE; attention reads all its rows in bf16
      cpu::rope(st.k.data(), kvd, st.pos.data(), t, c.n_kv_heads, hd, st.rope_table.data());
      for (int64_t b = 0; b < n_seqs; ++b) {
        KVCache& kc = *in.caches[b].cache;
        const int64_t rows = st.cu[b + 1] - st.cu[b], first = in.caches[b].first_pos;
        std::memcpy(kc.k_layer(li) + first * kvd, st.k.data() + st.cu[b] * kvd, rows * kvd * 4);
        std::memcpy(kc.v_layer(li) + first * kvd, st.v.data() + st.cu[b] * kvd, rows * kvd * 4);
        const int64_t k0 = st.cu_kv[b], kv_len = st.cu_kv[b + 1] - k0;
        cpu::to_bf16_heads(st.k16.data() + k0 * hd, t_kv, kc.k_layer(li), kvd, kv_len,
                           c.n_kv_heads, hd);
        cpu::to_bf16_heads(st.v16.data() + k0 * hd, t_kv, kc.v_layer(li), kvd, kv_len,
                           c.n_kv_heads, hd);
      }
    }
    cpu::attention_bf16_heads(st.attn16.data(), st.q16.data(), t, st.k16.data(), st.v16.data(),
                              t_kv, heads_shape, st.attn_bf16_ws);
    linear16(st.x.data(), st.attn16.data(), l.attn_out, t, true);

    // Feed-forward sub-block: x += ff_out(silu(ff_proj(n)) * up_proj(n)).
    cpu::rmsnorm_bf16(st.normed16.data(), st.x.data(), l.ff_norm, t, d, eps);
    linear16(st.gate.data(), st.normed16.data(), l.ff_proj, t, false);
    linear16(st.up.data(), st.normed16.data(), l.up_proj, t, false);
    cpu::swiglu_bf16(st.hidden16.data(), st.gate.data(), st.up.data(), t * mlp);
    linear16(st.x.data(), st.hidden16.data(), l.ff_out, t, true);
  }
}

}  // namespace illada

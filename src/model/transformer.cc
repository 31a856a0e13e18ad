// Inference forward: the batch validated, the embedding, every layer through the one block
// (model/block.h) on buffers reused from layer to layer, and the head on the wanted rows.
#include "model/transformer.h"

#include <algorithm>
#include <cstring>

#include "io/safetensors.h"
#include "kernels/cpu/bf16_ops.h"
#include "kernels/cpu/ops.h"
#include "kernels/gemm.h"
#include "model/tensor_check.h"
#include "util/check.h"
#include "util/memory.h"
#include "util/profile.h"

namespace illada {

Model::Model(ModelConfig config, ModelWeights weights)
    : config_(std::move(config)), weights_(std::move(weights)) {}

Model Model::load(const std::string& dir, ComputeType dtype, bool pack, bool check_tensors, WeightsLayout layout) {
  ModelSource src = open_model_source(dir);  // a model directory or a GGUF file
  // f32 compute converts every float weight into memory of its own (bf16 maps the file
  // instead; block-quantised matrices stay the file's blocks in both).
  if (dtype == ComputeType::kF32) {
    double floats = 0;
    for (const std::string& name : src.store->names()) {
      const TensorInfo* info = src.store->find(name);
      if (info->block_type) continue;
      double n = 1;
      for (int64_t d : info->shape) n *= static_cast<double>(d);
      floats += n;
    }
    require_memory(4.0 * floats, dir + ": the f32 weights");
  }
  if (check_tensors) check_tensors_finite(*src.store, dir);
  ModelWeights weights = load_weights(src.store, src.config, dtype, dir, /*keep_blocks=*/true);
  if (pack) pack_matrices(weights, layout);
  return Model(std::move(src.config), std::move(weights));
}

void Model::forward(const ForwardInput& in, ForwardState& st, std::span<float> logits) const {
  const ModelConfig& c = config_;
  const ModelWeights& w = weights_;
  const int64_t t = static_cast<int64_t>(in.ids.size());
  const int64_t d = c.d_model, hd = c.head_dim(), vocab = c.embedding_size;

  // Validate the batch layout and the ids before touching memory.
  std::vector<int32_t> first_pos;
  const bool cached = !in.caches.empty();
  if (cached) {
    const int64_t n_seqs = in.cu_seqlens.empty() ? 1 : static_cast<int64_t>(in.cu_seqlens.size()) - 1;
    if (static_cast<int64_t>(in.caches.size()) != n_seqs) {
      fail("forward: ", in.caches.size(), " caches given for ", n_seqs, " sequences");
    }
    for (const SeqCache& sc : in.caches) first_pos.push_back(sc.first_pos);
  }
  validate_packed(st.layout, in.ids, in.cu_seqlens, vocab, c.max_sequence_length, first_pos, "forward");
  BlockBatch batch{.t = t, .layout = &st.layout, .caches = in.caches, .t_kv = t};
  if (cached) {
    batch.cu_kv.assign(1, 0);
    for (int64_t b = 0; b < st.layout.n_seqs(); ++b) {
      const SeqCache& sc = in.caches[b];
      const int64_t len = st.layout.cu[b + 1] - st.layout.cu[b];
      ILLADA_CHECK(sc.cache && sc.cache->kv_dim() == c.n_kv_heads * hd && sc.cache->dtype == w.dtype,
                   "sequence ", b, ": cache not reset for this model");
      ILLADA_CHECK(sc.first_pos + len <= sc.kv_len && sc.kv_len <= sc.cache->capacity, "sequence ", b,
                   ": positions [", sc.first_pos, ", ", sc.first_pos + len, ") keys ", sc.kv_len, " capacity ",
                   sc.cache->capacity);
      batch.cu_kv.push_back(batch.cu_kv.back() + sc.kv_len);
    }
    batch.t_kv = batch.cu_kv.back();
  }
  const int64_t rows = logit_row_count(in);
  for (int32_t r : in.logit_rows) {
    if (r < 0 || r >= t) fail("forward: logit row ", r, " is outside [0, ", t, ")");
  }
  ILLADA_CHECK(static_cast<int64_t>(logits.size()) == rows * vocab, "logits buffer has ",
               logits.size(), " floats, expected ", rows * vocab);

  if (st.rope_len < st.layout.longest) {
    st.rope_len = std::max<int64_t>(st.layout.longest, 64);
    st.rope_table.resize(static_cast<size_t>(st.rope_len * hd));
    cpu::rope_table(st.rope_table.data(), st.rope_len, hd, static_cast<float>(c.rope_theta));
  }
  batch.rope_table = st.rope_table.data();

  sized(st.x, t * d);
  embed(st.x.data(), in.ids, w.wte, w.dtype == ComputeType::kBF16, d);
  std::span<const int32_t> head_rows = in.logit_rows;
  if (head_rows.empty()) {
    st.all_rows.resize(static_cast<size_t>(t));
    for (int64_t i = 0; i < t; ++i) st.all_rows[i] = static_cast<int32_t>(i);
    head_rows = st.all_rows;
  }
  sized(st.head_in, rows * d);
  const float eps = static_cast<float>(c.rms_norm_eps);
  if (w.dtype == ComputeType::kBF16) {
    run_layers<bf16>(batch, st);
    head_forward(logits.data(), st.head_in.data(), sized(st.normed16, std::max(t, rows) * d), st.x.data(),
                 head_rows, rows, w.ln_f, w.head, d, eps);
  } else {
    run_layers<float>(batch, st);
    head_forward(logits.data(), st.head_in.data(), sized(st.normed, std::max(t, rows) * d), st.x.data(),
                 head_rows, rows, w.ln_f, w.head, d, eps);
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

// Every layer through the one block, on buffers reused from layer to layer: the residual
// stream is updated in place.
template <class T>
void Model::run_layers(const BlockBatch& batch, ForwardState& st) const {
  const BlockDims dims = BlockDims::of(config_);
  const int64_t t = batch.t, d = dims.d, mlp = dims.mlp;
  BlockActs<T> a;
  if constexpr (std::is_same_v<T, bf16>) {
    a.n1 = a.n2 = sized(st.normed16, t * d);
    a.qkv = sized(st.qkv16, t * dims.qkv());
    a.q16 = sized(st.q16, t * dims.qd());
    a.k16 = sized(st.k16, batch.t_kv * dims.kvd());
    a.v16 = sized(st.v16, batch.t_kv * dims.kvd());
    a.att = sized(st.attn16, t * dims.qd());
    a.gate_up = sized(st.gate_up16, t * 2 * mlp);
    a.hidden = sized(st.hidden16, t * mlp);
  } else {
    a.n1 = a.n2 = sized(st.normed, t * d);
    a.q = sized(st.q, t * dims.qd());
    a.k = sized(st.k, t * dims.kvd());
    a.v = sized(st.v, t * dims.kvd());
    a.att = sized(st.attn, t * dims.qd());
    a.gate = a.hidden = sized(st.gate, t * mlp);
    a.up = sized(st.up, t * mlp);
  }
  float* x = st.x.data();
  a.x_mid = x;
  for (int64_t l = 0; l < config_.n_layers; ++l) {
    block_forward<T>(weights_.layers[l], l, dims, batch, x, x, a, st.ws);
  }
}

}  // namespace illada

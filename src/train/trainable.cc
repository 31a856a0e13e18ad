// Training forward/backward of the LLaDA block stack. The forward keeps per layer the residual
// stream, q/k (after RoPE), v, the attention output and the SwiGLU inputs; the backward
// recomputes the RMSNorm outputs and the SwiGLU product. The head runs only on rows that carry
// a loss (masked positions). Weight gradients are dW += dY^T X with dY transposed explicitly
// (gemm() has no transposed-A layout), input gradients dX = dY W.
#include "train/trainable.h"

#include <algorithm>
#include <cstring>

#include "kernels/cpu/ops.h"
#include "kernels/gemm.h"
#include "util/check.h"
#include "util/profile.h"

namespace illada::train {
namespace {

template <class T>
T* sized(std::vector<T>& v, int64_t n) {
  if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
  return v.data();
}

// A matmul operand in the compute precision.
struct Op {
  const float* f = nullptr;
  const bf16* b = nullptr;
};

void mm(float* c, Op a, Op b, const GemmShape& s) {
  if (a.b) {
    ILLADA_DCHECK(b.b, "mixed precision operands");
    gemm(c, a.b, b.b, s);
  } else {
    gemm(c, a.f, b.f, s);
  }
}

// x [n] as an operand: itself (fp32) or its bf16 rounding in buf.
Op operand(const float* x, int64_t n, bool bf, std::vector<bf16>& buf) {
  if (!bf) return {x, nullptr};
  bf16* d = sized(buf, n);
  to_bf16(d, x, n);
  return {nullptr, d};
}

// y [t, n] (+)= x [t, k] · W^T, W [n, k].
void linear_fwd(float* y, Op x, Op w, int64_t t, int64_t n, int64_t k, bool acc) {
  ProfileScope prof("train_linear_fwd");
  mm(y, x, w, linear_shape(t, n, k, acc));
}

// dx [t, k] (+)= dy [t, n] · W [n, k].
void linear_dx(float* dx, Op dy, Op w, int64_t t, int64_t n, int64_t k, bool acc) {
  ProfileScope prof("train_linear_dx");
  mm(dx, dy, w,
     GemmShape{.m = t, .n = k, .k = n, .lda = n, .ldb = k, .ldc = k, .b_is_nk = false,
               .accumulate = acc});
}

// dW [n, k] += dy [t, n]^T · x [t, k]; dy is transposed into scratch first.
void linear_dw(float* dw, const float* dy, Op x, int64_t t, int64_t n, int64_t k, bool bf,
               std::vector<bf16>& t16, std::vector<float>& t32) {
  ProfileScope prof("train_linear_dw");
  const GemmShape s{.m = n, .n = k, .k = t, .lda = t, .ldb = k, .ldc = k, .b_is_nk = false,
                    .accumulate = true};
  if (bf) {
    bf16* dyt = sized(t16, n * t);
    cpu::transpose(dyt, t, dy, n, t, n);
    gemm(dw, dyt, x.b, s);
  } else {
    float* dyt = sized(t32, n * t);
    cpu::transpose(dyt, t, dy, n, t, n);
    gemm(dw, dyt, x.f, s);
  }
}

}  // namespace

ParamLayout::ParamLayout(const ModelConfig& c) : specs(tensor_specs(c)) {
  for (const auto& s : specs) {
    int64_t n = 1;
    for (int64_t v : s.shape) n *= v;
    offset.push_back(total);
    numel.push_back(n);
    total += n;
  }
}

int64_t ParamLayout::find(const std::string& name) const {
  for (size_t i = 0; i < specs.size(); ++i) {
    if (specs[i].name == name) return static_cast<int64_t>(i);
  }
  return -1;
}

TrainableModel::TrainableModel(const ModelConfig& c, ComputeType compute)
    : config_(c), compute_(compute), layout_(c) {
  params_.assign(static_cast<size_t>(layout_.total), 0.0f);
  grads_.assign(static_cast<size_t>(layout_.total), 0.0f);
  if (compute_ == ComputeType::kBF16) params16_.resize(static_cast<size_t>(layout_.total));
  layer_off_.resize(static_cast<size_t>(c.n_layers));
  for (size_t i = 0; i < layout_.specs.size(); ++i) {
    const TensorSpec& s = layout_.specs[i];
    const int64_t off = layout_.offset[i];
    switch (s.role) {
      case TensorRole::kEmbedding: wte_off_ = off; break;
      case TensorRole::kHead: head_off_ = off; break;
      case TensorRole::kNorm:
        if (s.layer < 0) {
          ln_f_off_ = off;
        } else {
          layer_off_[s.layer][s.slot] = off;
        }
        break;
      case TensorRole::kMatrix: layer_off_[s.layer][s.slot] = off; break;
    }
  }
  if (c.weight_tying) head_off_ = wte_off_;  // one tensor, both gradients add into it
}

void TrainableModel::load(const ModelWeights& w) {
  size_t i = 0;
  for_each_tensor(w, config_, [&](const TensorSpec& spec, const void* data) {
    ILLADA_CHECK(spec.name == layout_.specs[i].name, "tensor order changed: ", spec.name);
    float* dst = params_.data() + layout_.offset[i];
    const int64_t n = layout_.numel[i];
    if (spec.role == TensorRole::kNorm || w.dtype == ComputeType::kF32) {
      std::memcpy(dst, data, static_cast<size_t>(n) * sizeof(float));
    } else {
      to_float(dst, static_cast<const bf16*>(data), n);
    }
    ++i;
  });
  ILLADA_CHECK(i == layout_.specs.size());
  refresh_compute_weights();
}

ModelWeights TrainableModel::weights_view() const {
  ModelWeights w;
  w.dtype = ComputeType::kF32;
  w.layers.resize(static_cast<size_t>(config_.n_layers));
  const float* p = params_.data();
  auto mat = [&](int64_t off, int64_t rows, int64_t cols) { return Matrix{rows, cols, p + off}; };
  const int64_t d = config_.d_model, hd = config_.head_dim(), qd = config_.n_heads * hd;
  const int64_t kvd = config_.n_kv_heads * hd, mlp = config_.mlp_hidden_size;
  const int64_t vocab = config_.embedding_size;
  w.wte = mat(wte_off_, vocab, d);
  w.head = mat(head_off_, vocab, d);
  w.ln_f = p + ln_f_off_;
  for (int64_t l = 0; l < config_.n_layers; ++l) {
    const auto& o = layer_off_[l];
    LayerWeights& lw = w.layers[l];
    lw.attn_norm = p + o[0];
    lw.ff_norm = p + o[1];
    lw.q_proj = mat(o[2], qd, d);
    lw.k_proj = mat(o[3], kvd, d);
    lw.v_proj = mat(o[4], kvd, d);
    lw.attn_out = mat(o[5], d, qd);
    lw.ff_proj = mat(o[6], mlp, d);
    lw.up_proj = mat(o[7], mlp, d);
    lw.ff_out = mat(o[8], d, mlp);
  }
  return w;
}

void TrainableModel::for_each_param(
    const std::function<void(const TensorSpec&, std::span<float>, std::span<float>)>& fn) {
  for (size_t i = 0; i < layout_.specs.size(); ++i) {
    const auto off = static_cast<size_t>(layout_.offset[i]);
    const auto n = static_cast<size_t>(layout_.numel[i]);
    fn(layout_.specs[i], std::span<float>(params_).subspan(off, n),
       std::span<float>(grads_).subspan(off, n));
  }
}

void TrainableModel::zero_grad() {
  const int64_t n = layout_.total;
  float* g = grads_.data();
#pragma omp parallel for simd schedule(static) if (n >= (1 << 15))
  for (int64_t i = 0; i < n; ++i) g[i] = 0.0f;
}

void TrainableModel::refresh_compute_weights() {
  if (compute_ == ComputeType::kBF16) to_bf16(params16_.data(), params_.data(), layout_.total);
}

double TrainableModel::forward(const LossBatch& b, TrainActivations& a) {
  ProfileScope prof("train_forward");
  const ModelConfig& c = config_;
  const int64_t t = static_cast<int64_t>(b.input_ids.size());
  const int64_t m = static_cast<int64_t>(b.target_rows.size());
  const int64_t d = c.d_model, hd = c.head_dim(), qd = c.n_heads * hd, kvd = c.n_kv_heads * hd;
  const int64_t mlp = c.mlp_hidden_size, vocab = c.embedding_size, nl = c.n_layers;
  const bool bf = compute_ == ComputeType::kBF16;
  const float eps = static_cast<float>(c.rms_norm_eps);
  if (t == 0) fail("train: empty micro-batch");
  if (static_cast<int64_t>(b.targets.size()) != m ||
      static_cast<int64_t>(b.target_weights.size()) != m) {
    fail("train: ", m, " target rows but ", b.targets.size(), " targets and ",
         b.target_weights.size(), " weights");
  }
  a.cu.assign(b.cu_seqlens.begin(), b.cu_seqlens.end());
  if (a.cu.empty()) a.cu = {0, static_cast<int32_t>(t)};
  if (a.cu.front() != 0 || a.cu.back() != t) {
    fail("train: cu_seqlens must start at 0 and end at the number of ids (", t, ")");
  }
  const int64_t n_seqs = static_cast<int64_t>(a.cu.size()) - 1;
  a.pos.resize(static_cast<size_t>(t));
  int64_t longest = 0;
  for (int64_t s = 0; s < n_seqs; ++s) {
    const int64_t len = a.cu[s + 1] - a.cu[s];
    if (len < 0) fail("train: cu_seqlens must be non-decreasing (at sequence ", s, ")");
    if (len > c.max_sequence_length) {
      fail("train: sequence ", s, " has ", len, " tokens, more than max_sequence_length ",
           c.max_sequence_length);
    }
    longest = std::max(longest, len);
    for (int64_t i = 0; i < len; ++i) a.pos[a.cu[s] + i] = static_cast<int32_t>(i);
  }
  for (int64_t i = 0; i < t; ++i) {
    if (b.input_ids[i] < 0 || b.input_ids[i] >= vocab) {
      fail("train: token id ", b.input_ids[i], " at row ", i, " outside [0, ", vocab, ")");
    }
  }
  for (int64_t i = 0; i < m; ++i) {
    if (b.target_rows[i] < 0 || b.target_rows[i] >= t) {
      fail("train: target row ", b.target_rows[i], " outside [0, ", t, ")");
    }
    if (b.targets[i] < 0 || b.targets[i] >= vocab) {
      fail("train: target ", b.targets[i], " outside [0, ", vocab, ")");
    }
  }
  if (a.rope_len < longest) {
    a.rope_len = std::max<int64_t>(longest, 64);
    a.rope_table.resize(static_cast<size_t>(a.rope_len * hd));
    cpu::rope_table(a.rope_table.data(), a.rope_len, hd, static_cast<float>(c.rope_theta));
  }
  a.t = t;
  a.m = m;
  float* xs = sized(a.xs, (nl + 1) * t * d);
  float* xmid = sized(a.x_mid, nl * t * d);
  float* qa = sized(a.q, nl * t * qd);
  float* ka = sized(a.k, nl * t * kvd);
  float* va = sized(a.v, nl * t * kvd);
  float* att = sized(a.att, nl * t * qd);
  float* gate = sized(a.gate, nl * t * mlp);
  float* up = sized(a.up, nl * t * mlp);
  float* normed = sized(a.normed, t * d);
  float* hidden = sized(a.hidden, t * mlp);
  const float* p = params_.data();
  const bf16* p16 = params16_.data();
  auto W = [&](int64_t off) { return Op{bf ? nullptr : p + off, bf ? p16 + off : nullptr}; };

  // Embedding in fp32 from the master weights.
#pragma omp parallel for schedule(static) if (t * d >= (1 << 15))
  for (int64_t i = 0; i < t; ++i) {
    std::memcpy(xs + i * d, p + wte_off_ + static_cast<int64_t>(b.input_ids[i]) * d,
                static_cast<size_t>(d) * sizeof(float));
  }
  const cpu::AttentionShape ashape{.n_heads = c.n_heads, .n_kv_heads = c.n_kv_heads,
                                   .head_dim = hd, .n_seqs = n_seqs, .cu_seqlens = a.cu.data(),
                                   .bf16 = bf};
  for (int64_t l = 0; l < nl; ++l) {
    const auto& o = layer_off_[l];
    const float* x = xs + l * t * d;
    float* xm = xmid + l * t * d;
    float* q = qa + l * t * qd;
    float* k = ka + l * t * kvd;
    float* v = va + l * t * kvd;
    float* at = att + l * t * qd;
    float* g = gate + l * t * mlp;
    float* u = up + l * t * mlp;
    cpu::rmsnorm(normed, x, p + o[0], t, d, eps);
    Op n1 = operand(normed, t * d, bf, a.a16);
    linear_fwd(q, n1, W(o[2]), t, qd, d, false);
    linear_fwd(k, n1, W(o[3]), t, kvd, d, false);
    linear_fwd(v, n1, W(o[4]), t, kvd, d, false);
    cpu::rope(q, qd, a.pos.data(), t, c.n_heads, hd, a.rope_table.data());
    cpu::rope(k, kvd, a.pos.data(), t, c.n_kv_heads, hd, a.rope_table.data());
    cpu::attention(at, q, k, v, ashape, a.attn_ws);
    std::memcpy(xm, x, static_cast<size_t>(t * d) * sizeof(float));
    linear_fwd(xm, operand(at, t * qd, bf, a.b16), W(o[5]), t, d, qd, true);
    cpu::rmsnorm(normed, xm, p + o[1], t, d, eps);
    Op n2 = operand(normed, t * d, bf, a.a16);
    linear_fwd(g, n2, W(o[6]), t, mlp, d, false);
    linear_fwd(u, n2, W(o[7]), t, mlp, d, false);
    cpu::swiglu(hidden, g, u, t * mlp);
    float* xn = xs + (l + 1) * t * d;
    std::memcpy(xn, xm, static_cast<size_t>(t * d) * sizeof(float));
    linear_fwd(xn, operand(hidden, t * mlp, bf, a.b16), W(o[8]), t, d, mlp, true);
  }
  if (m == 0) return 0.0;
  // Head and loss on the target rows only; the logits buffer becomes their gradient.
  const float* xl = xs + nl * t * d;
  float* hx = sized(a.head_x, m * d);
  float* hn = sized(a.head_n, m * d);
  for (int64_t i = 0; i < m; ++i) {
    std::memcpy(hx + i * d, xl + static_cast<int64_t>(b.target_rows[i]) * d,
                static_cast<size_t>(d) * sizeof(float));
  }
  cpu::rmsnorm(hn, hx, p + ln_f_off_, m, d, eps);
  float* logits = sized(a.logits, m * vocab);
  linear_fwd(logits, operand(hn, m * d, bf, a.a16), W(head_off_), m, vocab, d, false);
  return cpu::cross_entropy_backward(logits, nullptr, logits, b.targets.data(),
                                     b.target_weights.data(), m, vocab);
}

void TrainableModel::backward(const LossBatch& b, TrainActivations& a) {
  ProfileScope prof("train_backward");
  const ModelConfig& c = config_;
  const int64_t t = a.t, m = a.m;
  const int64_t d = c.d_model, hd = c.head_dim(), qd = c.n_heads * hd, kvd = c.n_kv_heads * hd;
  const int64_t mlp = c.mlp_hidden_size, vocab = c.embedding_size, nl = c.n_layers;
  const bool bf = compute_ == ComputeType::kBF16;
  const float eps = static_cast<float>(c.rms_norm_eps);
  const float* p = params_.data();
  const bf16* p16 = params16_.data();
  float* gr = grads_.data();
  auto W = [&](int64_t off) { return Op{bf ? nullptr : p + off, bf ? p16 + off : nullptr}; };
  const int64_t n_seqs = static_cast<int64_t>(a.cu.size()) - 1;

  float* dx = sized(a.dx, t * d);
  std::fill(dx, dx + t * d, 0.0f);
  float* dn = sized(a.dn, std::max(t, m) * d);
  if (m > 0) {
    // Head: dW_head += dlogits^T hn; dhn = dlogits W_head; through ln_f into the target rows.
    const float* dlogits = a.logits.data();
    linear_dw(gr + head_off_, dlogits, operand(a.head_n.data(), m * d, bf, a.a16), m, vocab, d,
              bf, a.c16, a.f32t);
    linear_dx(dn, operand(dlogits, m * vocab, bf, a.b16), W(head_off_), m, vocab, d, false);
    float* dhx = sized(a.dh, m * d);
    cpu::rmsnorm_backward(dhx, gr + ln_f_off_, dn, a.head_x.data(), p + ln_f_off_, m, d, eps,
                          false);
    for (int64_t i = 0; i < m; ++i) {
      float* dst = dx + static_cast<int64_t>(b.target_rows[i]) * d;
      const float* src = dhx + i * d;
      for (int64_t j = 0; j < d; ++j) dst[j] += src[j];
    }
  }
  float* normed = sized(a.normed, t * d);
  float* hidden = sized(a.hidden, t * mlp);
  float* dgate = sized(a.dbig, t * mlp);
  float* dup = sized(a.dbig2, t * mlp);
  float* dq = sized(a.dq, t * qd);
  float* dk = sized(a.dk, t * kvd);
  float* dv = sized(a.dv, t * kvd);
  const cpu::AttentionBackwardShape bshape{.n_heads = c.n_heads, .n_kv_heads = c.n_kv_heads,
                                           .head_dim = hd, .n_seqs = n_seqs,
                                           .cu_seqlens = a.cu.data(), .bf16 = bf};
  for (int64_t l = nl - 1; l >= 0; --l) {
    const auto& o = layer_off_[l];
    const float* x = a.xs.data() + l * t * d;
    const float* xm = a.x_mid.data() + l * t * d;
    const float* q = a.q.data() + l * t * qd;
    const float* k = a.k.data() + l * t * kvd;
    const float* v = a.v.data() + l * t * kvd;
    const float* at = a.att.data() + l * t * qd;
    const float* g = a.gate.data() + l * t * mlp;
    const float* u = a.up.data() + l * t * mlp;

    // Feed-forward sub-block; dx is the gradient of the block's output.
    cpu::swiglu(hidden, g, u, t * mlp);
    linear_dw(gr + o[8], dx, operand(hidden, t * mlp, bf, a.a16), t, d, mlp, bf, a.c16, a.f32t);
    float* dh = sized(a.dh, t * mlp);
    linear_dx(dh, operand(dx, t * d, bf, a.b16), W(o[8]), t, d, mlp, false);
    cpu::swiglu_backward(dgate, dup, dh, g, u, t * mlp);
    cpu::rmsnorm(normed, xm, p + o[1], t, d, eps);
    Op n2 = operand(normed, t * d, bf, a.a16);
    linear_dw(gr + o[6], dgate, n2, t, mlp, d, bf, a.c16, a.f32t);
    linear_dw(gr + o[7], dup, n2, t, mlp, d, bf, a.c16, a.f32t);
    linear_dx(dn, operand(dgate, t * mlp, bf, a.b16), W(o[6]), t, mlp, d, false);
    linear_dx(dn, operand(dup, t * mlp, bf, a.b16), W(o[7]), t, mlp, d, true);
    cpu::rmsnorm_backward(dx, gr + o[1], dn, xm, p + o[1], t, d, eps, true);

    // Attention sub-block; dx is now the gradient of x_mid.
    linear_dw(gr + o[5], dx, operand(at, t * qd, bf, a.a16), t, d, qd, bf, a.c16, a.f32t);
    float* datt = sized(a.dh, t * qd);
    linear_dx(datt, operand(dx, t * d, bf, a.b16), W(o[5]), t, d, qd, false);
    cpu::attention_backward(dq, dk, dv, datt, q, k, v, at, bshape, a.attn_bwd_ws);
    cpu::rope_backward(dq, qd, a.pos.data(), t, c.n_heads, hd, a.rope_table.data());
    cpu::rope_backward(dk, kvd, a.pos.data(), t, c.n_kv_heads, hd, a.rope_table.data());
    cpu::rmsnorm(normed, x, p + o[0], t, d, eps);
    Op n1 = operand(normed, t * d, bf, a.a16);
    linear_dw(gr + o[2], dq, n1, t, qd, d, bf, a.c16, a.f32t);
    linear_dw(gr + o[3], dk, n1, t, kvd, d, bf, a.c16, a.f32t);
    linear_dw(gr + o[4], dv, n1, t, kvd, d, bf, a.c16, a.f32t);
    linear_dx(dn, operand(dq, t * qd, bf, a.b16), W(o[2]), t, qd, d, false);
    linear_dx(dn, operand(dk, t * kvd, bf, a.b16), W(o[3]), t, kvd, d, true);
    linear_dx(dn, operand(dv, t * kvd, bf, a.b16), W(o[4]), t, kvd, d, true);
    cpu::rmsnorm_backward(dx, gr + o[0], dn, x, p + o[0], t, d, eps, true);
  }
  cpu::embedding_backward(gr + wte_off_, dx, b.input_ids.data(), t, d);
}

double TrainableModel::forward_backward(const LossBatch& b, TrainActivations& a) {
  const double l = forward(b, a);
  backward(b, a);
  return l;
}

double TrainableModel::loss(const LossBatch& b, TrainActivations& a) { return forward(b, a); }

}  // namespace illada::train

// Training forward/backward of the LLaDA block stack. The forward keeps per layer the residual
// stream, the SwiGLU inputs and the matmul operands in the compute precision (RMSNorm outputs,
// SwiGLU product, attention output), so the backward recomputes only attention's scores.
// Attention: fp32 mode keeps row-major q/k (after RoPE)/v for cpu::attention_backward; bf16
// mode runs the inference forward's head-major bf16 attention and keeps its bf16 q/k/v for
// cpu::attention_backward_heads. The head runs only on rows that carry a loss (masked
// positions). Weight gradients are dW (+)= dY^T X with dY read transposed by the matmul (no
// copy; the first write after zero_grad() overwrites), input gradients dX = dY W. In bf16
// mode each gradient dY is rounded once, by the kernel that produces it where possible, and
// that copy feeds both products; q/k/v and gate/up run as one product each (their weights are
// adjacent rows of the layout) and write bf16, as does the MLP hidden's gradient product.
#include "train/trainable.h"

#include <algorithm>
#include <cstring>

#include "kernels/cpu/ops.h"
#include "kernels/cpu/bf16_ops.h"
#include "kernels/gemm.h"
#include "util/check.h"
#include "util/profile.h"

namespace illada::train {
namespace {

template <class T>
constexpr bool kIsBf16 = std::is_same_v<T, bf16>;

// The head's products run on the target rows rounded up to a multiple of this (see forward).
constexpr int64_t kHeadRowGranule = 64;

// y [t, n] (+)= x [t, k] · W^T, W [n, k]. A bf16 y gets the fp32 sum rounded once on the
// store (no accumulation).
template <class C, class T>
void linear_fwd(C* y, const T* x, const T* w, int64_t t, int64_t n, int64_t k, bool acc) {
  ProfileScope prof("train_linear_fwd");
  gemm(y, x, w, linear_shape(t, n, k, acc));
}

// y [t, n] = r [t, n] + x [t, k] · W^T (a residual connection).
void linear_fwd_add(float* y, const bf16* x, const bf16* w, const float* r, int64_t t, int64_t n,
                    int64_t k) {
  ProfileScope prof("train_linear_fwd");
  gemm_add(y, x, w, r, linear_shape(t, n, k, false));
}

// dx [t, k] (+)= dy [t, n] · W [n, k] (a bf16 dx: rounded once, no accumulation).
template <class C, class T>
void linear_dx(C* dx, const T* dy, const T* w, int64_t t, int64_t n, int64_t k, bool acc) {
  ProfileScope prof("train_linear_dx");
  gemm(dx, dy, w,
       GemmShape{.m = t, .n = k, .k = n, .lda = n, .ldb = k, .ldc = k, .b_is_nk = false,
                 .accumulate = acc});
}

// dW [n, k] (+)= dy [t, n]^T · x [t, k].
template <class T>
void linear_dw(float* dw, const T* dy, const T* x, int64_t t, int64_t n, int64_t k, bool acc) {
  ProfileScope prof("train_linear_dw");
  gemm_at(dw, dy, x,
          GemmShape{.m = n, .n = k, .k = t, .lda = n, .ldb = k, .ldc = k, .b_is_nk = false,
                    .accumulate = acc});
}

// Kernels whose output is a matmul operand, by operand type: the fp32 op itself, or its fused
// variant that writes bf16.
void rmsnorm_op(float* out, const float* x, const float* w, int64_t rows, int64_t d, float eps) {
  cpu::rmsnorm(out, x, w, rows, d, eps);
}
void rmsnorm_op(bf16* out, const float* x, const float* w, int64_t rows, int64_t d, float eps) {
  cpu::rmsnorm_bf16(out, x, w, rows, d, eps);
}

// The operand form of an fp32 buffer: the buffer itself in fp32 mode, else its bf16 copy.
template <class T>
const T* op(const float* f32, const bf16* copy) {
  if constexpr (kIsBf16<T>) {
    return copy;
  } else {
    return f32;
  }
}

// bf16 mode: copy16 = bf16(x); fp32 mode reads x itself and copies nothing.
template <class T>
void round_op(bf16* copy16, const float* x, int64_t n) {
  if constexpr (kIsBf16<T>) to_bf16(copy16, x, n);
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
  grad_fresh_.assign(layout_.specs.size(), 0);
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
  // bf16 mode runs q/k/v and gate/up as one product each over their adjacent weight rows.
  const int64_t d = c.d_model, hd = c.head_dim();
  for (const auto& o : layer_off_) {
    ILLADA_CHECK(o[3] == o[2] + c.n_heads * hd * d && o[4] == o[3] + c.n_kv_heads * hd * d &&
                     o[7] == o[6] + c.mlp_hidden_size * d,
                 "q/k/v or gate/up weights not adjacent in the parameter layout");
  }
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
    if (grad_fresh_[i]) claim_grad_zeroed(layout_.offset[i], layout_.numel[i]);
    fn(layout_.specs[i], std::span<float>(params_).subspan(off, n),
       std::span<float>(grads_).subspan(off, n));
  }
}

void TrainableModel::zero_grad() { std::fill(grad_fresh_.begin(), grad_fresh_.end(), 1); }

bool TrainableModel::claim_grad(int64_t off, int64_t n) {
  const auto& offs = layout_.offset;
  size_t i = static_cast<size_t>(std::upper_bound(offs.begin(), offs.end(), off) - offs.begin()) - 1;
  ILLADA_CHECK(offs[i] == off, "gradient write not at a tensor start");
  const bool fresh = grad_fresh_[i] != 0;
  for (; i < offs.size() && offs[i] < off + n; ++i) {
    ILLADA_CHECK((grad_fresh_[i] != 0) == fresh, "gradient write spans fresh and written tensors");
    grad_fresh_[i] = 0;
  }
  return fresh;
}

void TrainableModel::claim_grad_zeroed(int64_t off, int64_t n) {
  if (claim_grad(off, n)) std::fill(grads_.begin() + off, grads_.begin() + off + n, 0.0f);
}

void TrainableModel::zero_fresh_grads() {
  for (size_t i = 0; i < grad_fresh_.size(); ++i) {
    if (grad_fresh_[i]) claim_grad_zeroed(layout_.offset[i], layout_.numel[i]);
  }
}

void TrainableModel::refresh_compute_weights() {
  if (compute_ == ComputeType::kBF16) to_bf16(params16_.data(), params_.data(), layout_.total);
}

void TrainableModel::check_batch(const LossBatch& b, TrainActivations& a) {
  const ModelConfig& c = config_;
  const int64_t t = static_cast<int64_t>(b.input_ids.size());
  const int64_t m = static_cast<int64_t>(b.target_rows.size());
  const int64_t vocab = c.embedding_size, hd = c.head_dim();
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
  a.m_pad = (m + kHeadRowGranule - 1) / kHeadRowGranule * kHeadRowGranule;
}

template <class T>
double TrainableModel::forward(const LossBatch& b, TrainActivations& a) {
  ProfileScope prof("train_forward");
  check_batch(b, a);
  const ModelConfig& c = config_;
  const int64_t t = a.t, m = a.m;
  const int64_t d = c.d_model, hd = c.head_dim(), qd = c.n_heads * hd, kvd = c.n_kv_heads * hd;
  const int64_t mlp = c.mlp_hidden_size, vocab = c.embedding_size, nl = c.n_layers;
  const float eps = static_cast<float>(c.rms_norm_eps);
  const int64_t n_seqs = static_cast<int64_t>(a.cu.size()) - 1;
  TrainOperands<T>& ops = a.ops<T>();
  constexpr bool bf = kIsBf16<T>;
  float* xs = sized(a.xs, (nl + 1) * t * d);
  float* xmid = sized(a.x_mid, nl * t * d);
  // fp32 mode keeps every layer's q, k, v; bf16 mode keeps its bf16 operands instead.
  const int64_t nqkv = qd + 2 * kvd;
  float* qa = bf ? nullptr : sized(a.q, nl * t * qd);
  float* ka = bf ? nullptr : sized(a.k, nl * t * kvd);
  float* va = bf ? nullptr : sized(a.v, nl * t * kvd);
  float* att = bf ? nullptr : sized(a.att, nl * t * qd);
  bf16* q16a = bf ? sized(a.q16, nl * t * qd) : nullptr;
  bf16* k16a = bf ? sized(a.k16, nl * t * kvd) : nullptr;
  bf16* v16a = bf ? sized(a.v16, nl * t * kvd) : nullptr;
  // bf16 mode: gate16 holds gate and up side by side [n_layers, t, 2*mlp] (one product).
  float* gate = bf ? nullptr : sized(a.gate, nl * t * mlp);
  float* up = bf ? nullptr : sized(a.up, nl * t * mlp);
  bf16* gate16 = bf ? sized(a.gate16, nl * t * 2 * mlp) : nullptr;
  T* n1a = sized(ops.n1, nl * t * d);
  T* n2a = sized(ops.n2, nl * t * d);
  T* hida = sized(ops.hidden, nl * t * mlp);
  bf16* att16 = bf ? sized(a.att16, nl * t * qd) : nullptr;
  const float* p = params_.data();
  auto W = [&](int64_t off) { return op<T>(p + off, params16_.data() + off); };

  // Embedding in fp32 from the master weights.
#pragma omp parallel for schedule(static) if (t * d >= (1 << 15))
  for (int64_t i = 0; i < t; ++i) {
    std::memcpy(xs + i * d, p + wte_off_ + static_cast<int64_t>(b.input_ids[i]) * d,
                static_cast<size_t>(d) * sizeof(float));
  }
  const cpu::AttentionShape ashape{.n_heads = c.n_heads, .n_kv_heads = c.n_kv_heads,
                                   .head_dim = hd, .n_seqs = n_seqs, .cu_seqlens = a.cu.data(),
                                   .bf16 = kIsBf16<T>};
  for (int64_t l = 0; l < nl; ++l) {
    const auto& o = layer_off_[l];
    const float* x = xs + l * t * d;
    float* xm = xmid + l * t * d;
    float* q = bf ? nullptr : qa + l * t * qd;
    float* k = bf ? nullptr : ka + l * t * kvd;
    float* v = bf ? nullptr : va + l * t * kvd;
    float* at = bf ? nullptr : att + l * t * qd;
    float* g = bf ? nullptr : gate + l * t * mlp;
    float* u = bf ? nullptr : up + l * t * mlp;
    bf16* gu16 = bf ? gate16 + l * t * 2 * mlp : nullptr;
    T* n1 = n1a + l * t * d;
    T* n2 = n2a + l * t * d;
    T* hidden = hida + l * t * mlp;
    bf16* at16 = att16 ? att16 + l * t * qd : nullptr;
    rmsnorm_op(n1, x, p + o[0], t, d, eps);
    if constexpr (bf) {
      // q, k, v in one product: their weights are adjacent rows [qd + 2*kvd, d] of the
      // layout, and qkv [t, qd + 2*kvd] is one layer's scratch.
      bf16* qkv = sized(a.qkv16, t * nqkv);
      linear_fwd(qkv, n1, W(o[2]), t, nqkv, d, false);
      // RoPE writes the head-major bf16 operands attention reads; the backward keeps them.
      bf16* q16 = q16a + l * t * qd;
      bf16* k16 = k16a + l * t * kvd;
      bf16* v16 = v16a + l * t * kvd;
      cpu::rope_bf16_heads(q16, t, qkv, nqkv, a.pos.data(), t, c.n_heads, hd,
                           a.rope_table.data());
      cpu::rope_bf16_heads(k16, t, qkv + qd, nqkv, a.pos.data(), t, c.n_kv_heads, hd,
                           a.rope_table.data());
      cpu::to_bf16_heads(v16, t, qkv + qd + kvd, nqkv, t, c.n_kv_heads, hd);
      cpu::attention_bf16_heads(at16, q16, t, k16, v16, t, ashape, a.attn16_ws);
    } else {
      linear_fwd(q, n1, W(o[2]), t, qd, d, false);
      linear_fwd(k, n1, W(o[3]), t, kvd, d, false);
      linear_fwd(v, n1, W(o[4]), t, kvd, d, false);
      cpu::rope(q, qd, a.pos.data(), t, c.n_heads, hd, a.rope_table.data());
      cpu::rope(k, kvd, a.pos.data(), t, c.n_kv_heads, hd, a.rope_table.data());
      cpu::attention(at, q, k, v, ashape, a.attn_ws);
    }
    if constexpr (bf) {
      linear_fwd_add(xm, at16, W(o[5]), x, t, d, qd);
    } else {
      std::memcpy(xm, x, static_cast<size_t>(t * d) * sizeof(float));
      linear_fwd(xm, at, W(o[5]), t, d, qd, true);
    }
    rmsnorm_op(n2, xm, p + o[1], t, d, eps);
    if constexpr (bf) {
      // gate and up in one product: their weights are adjacent rows [2*mlp, d] of the layout.
      linear_fwd(gu16, n2, W(o[6]), t, 2 * mlp, d, false);
      cpu::swiglu_bf16_rows(hidden, gu16, t, mlp);
    } else {
      linear_fwd(g, n2, W(o[6]), t, mlp, d, false);
      linear_fwd(u, n2, W(o[7]), t, mlp, d, false);
      cpu::swiglu(hidden, g, u, t * mlp);
    }
    float* xn = xs + (l + 1) * t * d;
    if constexpr (bf) {
      linear_fwd_add(xn, hidden, W(o[8]), xm, t, d, mlp);
    } else {
      std::memcpy(xn, xm, static_cast<size_t>(t * d) * sizeof(float));
      linear_fwd(xn, hidden, W(o[8]), t, d, mlp, true);
    }
  }
  if (m == 0) return 0.0;
  // Head and loss on the target rows only; the logits buffer becomes their gradient. The head's
  // products run on m_pad rows, the rows past m being zeros with a zero gradient: the number
  // of masked rows changes every step, and each new product shape costs oneDNN a primitive
  // creation of 1-9 ms, more than the padded rows' arithmetic.
  const int64_t mp = a.m_pad;
  const float* xl = xs + nl * t * d;
  float* hx = sized(a.head_x, m * d);
  T* hn = sized(ops.head_n, mp * d);
  for (int64_t i = 0; i < m; ++i) {
    std::memcpy(hx + i * d, xl + static_cast<int64_t>(b.target_rows[i]) * d,
                static_cast<size_t>(d) * sizeof(float));
  }
  rmsnorm_op(hn, hx, p + ln_f_off_, m, d, eps);
  std::fill(hn + m * d, hn + mp * d, T{});
  float* logits = sized(a.logits, mp * vocab);
  linear_fwd(logits, static_cast<const T*>(hn), W(head_off_), mp, vocab, d, false);
  // The padded rows' logits are exactly zero (zero inputs), and so is their gradient.
  return cpu::cross_entropy_backward(logits, nullptr, logits, b.targets.data(),
                                     b.target_weights.data(), m, vocab);
}

template <class T>
void TrainableModel::backward(const LossBatch& b, TrainActivations& a) {
  ProfileScope prof("train_backward");
  const ModelConfig& c = config_;
  const int64_t t = a.t, m = a.m;
  const int64_t d = c.d_model, hd = c.head_dim(), qd = c.n_heads * hd, kvd = c.n_kv_heads * hd;
  const int64_t mlp = c.mlp_hidden_size, vocab = c.embedding_size, nl = c.n_layers;
  constexpr bool bf = kIsBf16<T>;
  const float eps = static_cast<float>(c.rms_norm_eps);
  const float* p = params_.data();
  float* gr = grads_.data();
  auto W = [&](int64_t off) { return op<T>(p + off, params16_.data() + off); };
  const int64_t n_seqs = static_cast<int64_t>(a.cu.size()) - 1;
  TrainOperands<T>& ops = a.ops<T>();

  float* dx = sized(a.dx, t * d);
  bf16* dx16 = bf ? sized(a.dx16, t * d) : nullptr;
  std::fill(dx, dx + t * d, 0.0f);
  const int64_t mp = a.m_pad;
  float* dn = sized(a.dn, std::max(t, mp) * d);
  if (m > 0) {
    // Head: dW_head += dlogits^T hn; dhn = dlogits W_head; through ln_f into the target rows
    // (the products on the m_pad rows of the forward; the padding's gradient is zero).
    const float* dlogits = a.logits.data();
    bf16* dl16 = bf ? sized(a.dlogits16, mp * vocab) : nullptr;
    round_op<T>(dl16, dlogits, mp * vocab);
    const T* dl = op<T>(dlogits, dl16);
    linear_dw(gr + head_off_, dl, static_cast<const T*>(ops.head_n.data()), mp, vocab, d,
              !claim_grad(head_off_, vocab * d));
    linear_dx(dn, dl, W(head_off_), mp, vocab, d, false);
    float* dhx = sized(a.dh, m * d);
    claim_grad_zeroed(ln_f_off_, d);
    cpu::rmsnorm_backward(dhx, gr + ln_f_off_, dn, a.head_x.data(), p + ln_f_off_, m, d, eps,
                          false);
    for (int64_t i = 0; i < m; ++i) {
      float* dst = dx + static_cast<int64_t>(b.target_rows[i]) * d;
      const float* src = dhx + i * d;
      for (int64_t j = 0; j < d; ++j) dst[j] += src[j];
    }
  }
  round_op<T>(dx16, dx, t * d);
  // bf16 mode: dgate holds dgate and dup side by side [t, 2*mlp] (the fused products' operand).
  T* dgate = sized(ops.dgate, t * (bf ? 2 * mlp : mlp));
  T* dup = bf ? nullptr : sized(ops.dup, t * mlp);
  float* dq = sized(a.dq, t * qd);
  float* dk = sized(a.dk, t * kvd);
  float* dv = sized(a.dv, t * kvd);
  // bf16 mode: the gradients of q, k and v side by side [t, qd + 2*kvd], one operand of the
  // fused q/k/v weight products (their weights are adjacent in the layout).
  const int64_t nqkv = qd + 2 * kvd;
  bf16* dqkv16 = bf ? sized(a.dqkv16, t * nqkv) : nullptr;
  // The residual gradient as an operand; rmsnorm_backward refreshes dx16 as it updates dx.
  const T* dxo = op<T>(dx, dx16);
  auto norm_backward = [&](int64_t w_off, const float* x) {
    claim_grad_zeroed(w_off, d);
    float* dw = gr + w_off;
    const float* w = p + w_off;
    if constexpr (bf) {
      cpu::rmsnorm_backward(dx, dx16, dw, dn, x, w, t, d, eps, true);
    } else {
      cpu::rmsnorm_backward(dx, dw, dn, x, w, t, d, eps, true);
    }
  };
  // dW (+)= dy^T x for the weight rows [n, k] at offset off (overwrites a fresh gradient).
  auto weight_grad = [&](int64_t off, const auto* dy, const T* xin, int64_t n, int64_t k) {
    linear_dw(gr + off, static_cast<const T*>(dy), xin, t, n, k, !claim_grad(off, n * k));
  };
  const cpu::AttentionBackwardShape bshape{.n_heads = c.n_heads, .n_kv_heads = c.n_kv_heads,
                                           .head_dim = hd, .n_seqs = n_seqs,
                                           .cu_seqlens = a.cu.data(), .bf16 = bf};
  for (int64_t l = nl - 1; l >= 0; --l) {
    const auto& o = layer_off_[l];
    const float* x = a.xs.data() + l * t * d;
    const float* xm = a.x_mid.data() + l * t * d;
    const float* g = bf ? nullptr : a.gate.data() + l * t * mlp;
    const float* u = bf ? nullptr : a.up.data() + l * t * mlp;
    const bf16* gu16 = bf ? a.gate16.data() + l * t * 2 * mlp : nullptr;
    const T* n1 = ops.n1.data() + l * t * d;
    const T* n2 = ops.n2.data() + l * t * d;
    const T* hidden = ops.hidden.data() + l * t * mlp;
    const T* at_op = op<T>(bf ? nullptr : a.att.data() + l * t * qd,
                           bf ? a.att16.data() + l * t * qd : nullptr);

    // Feed-forward sub-block; dx is the gradient of the block's output.
    weight_grad(o[8], dxo, hidden, d, mlp);
    if constexpr (bf) {
      bf16* dh16 = sized(a.dh16, t * mlp);
      linear_dx(dh16, dxo, W(o[8]), t, d, mlp, false);
      cpu::swiglu_backward_rows(dgate, dh16, gu16, t, mlp);
      weight_grad(o[6], dgate, n2, 2 * mlp, d);
      linear_dx(dn, static_cast<const T*>(dgate), W(o[6]), t, 2 * mlp, d, false);
    } else {
      float* dh = sized(a.dh, t * mlp);
      linear_dx(dh, dxo, W(o[8]), t, d, mlp, false);
      cpu::swiglu_backward(dgate, dup, dh, g, u, t * mlp);
      weight_grad(o[6], dgate, n2, mlp, d);
      weight_grad(o[7], dup, n2, mlp, d);
      linear_dx(dn, static_cast<const T*>(dgate), W(o[6]), t, mlp, d, false);
      linear_dx(dn, static_cast<const T*>(dup), W(o[7]), t, mlp, d, true);
    }
    norm_backward(o[1], xm);

    // Attention sub-block; dx is now the gradient of x_mid.
    weight_grad(o[5], dxo, at_op, d, qd);
    float* datt = sized(a.dh, t * qd);
    linear_dx(datt, dxo, W(o[5]), t, d, qd, false);
    if constexpr (bf) {
      // Head-major fp32 gradients of the roped q, k and of v, back to bf16 rows.
      cpu::attention_backward_heads(dq, dk, dv, datt, a.q16.data() + l * t * qd,
                                    a.k16.data() + l * t * kvd, a.v16.data() + l * t * kvd,
                                    a.att16.data() + l * t * qd, t, bshape, a.attn_bwd_ws);
      cpu::rope_backward_heads(dqkv16, nqkv, dq, t, a.pos.data(), t, c.n_heads, hd,
                               a.rope_table.data());
      cpu::rope_backward_heads(dqkv16 + qd, nqkv, dk, t, a.pos.data(), t, c.n_kv_heads, hd,
                               a.rope_table.data());
      cpu::rope_backward_heads(dqkv16 + qd + kvd, nqkv, dv, t, a.pos.data(), t, c.n_kv_heads,
                               hd, nullptr);
      weight_grad(o[2], dqkv16, n1, nqkv, d);
      linear_dx(dn, static_cast<const bf16*>(dqkv16), W(o[2]), t, nqkv, d, false);
    } else {
      const float* q = a.q.data() + l * t * qd;
      const float* k = a.k.data() + l * t * kvd;
      const float* v = a.v.data() + l * t * kvd;
      const float* at = a.att.data() + l * t * qd;
      cpu::attention_backward(dq, dk, dv, datt, q, k, v, at, bshape, a.attn_bwd_ws);
      cpu::rope_backward(dq, qd, a.pos.data(), t, c.n_heads, hd, a.rope_table.data());
      cpu::rope_backward(dk, kvd, a.pos.data(), t, c.n_kv_heads, hd, a.rope_table.data());
      weight_grad(o[2], dq, n1, qd, d);
      weight_grad(o[3], dk, n1, kvd, d);
      weight_grad(o[4], dv, n1, kvd, d);
      linear_dx(dn, dq, W(o[2]), t, qd, d, false);
      linear_dx(dn, dk, W(o[3]), t, kvd, d, true);
      linear_dx(dn, dv, W(o[4]), t, kvd, d, true);
    }
    norm_backward(o[0], x);
  }
  claim_grad_zeroed(wte_off_, vocab * d);
  cpu::embedding_backward(gr + wte_off_, dx, b.input_ids.data(), t, d);
}

double TrainableModel::forward_backward(const LossBatch& b, TrainActivations& a) {
  if (compute_ == ComputeType::kBF16) {
    const double l = forward<bf16>(b, a);
    backward<bf16>(b, a);
    return l;
  }
  const double l = forward<float>(b, a);
  backward<float>(b, a);
  return l;
}

double TrainableModel::loss(const LossBatch& b, TrainActivations& a) {
  return compute_ == ComputeType::kBF16 ? forward<bf16>(b, a) : forward<float>(b, a);
}

}  // namespace illada::train

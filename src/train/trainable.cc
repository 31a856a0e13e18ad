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
          layer_off_[s.layer][s.tensor] = off;
        }
        break;
      case TensorRole::kMatrix: layer_off_[s.layer][s.tensor] = off; break;
    }
  }
  if (c.weight_tying) head_off_ = wte_off_;  // one tensor, both gradients add into it
  // bf16 mode runs q/k/v and gate/up as one product each over their adjacent weight rows.
  const int64_t d = c.d_model, hd = c.head_dim(), qd = c.n_heads * hd, kvd = c.n_kv_heads * hd;
  const int64_t mlp = c.mlp_hidden_size, vocab = c.embedding_size;
  using LT = LayerTensor;
  for (const auto& o : layer_off_) {
    ILLADA_CHECK(o[LT::kKProj] == o[LT::kQProj] + qd * d && o[LT::kVProj] == o[LT::kKProj] + kvd * d &&
                     o[LT::kUpProj] == o[LT::kFfProj] + mlp * d,
                 "q/k/v or gate/up weights not adjacent in the parameter layout");
  }
  // The block's views of the weights (the buffers never move).
  for (const bool bf : {false, true}) {
    if (bf && compute_ != ComputeType::kBF16) continue;
    auto at = [&](int64_t off) -> const void* {
      return bf ? static_cast<const void*>(params16_.data() + off) : static_cast<const void*>(params_.data() + off);
    };
    std::vector<LayerWeights>& views = bf ? views16_ : views32_;
    for (const auto& o : layer_off_) {
      LayerWeights l;
      l.attn_norm = params_.data() + o[LT::kAttnNorm];
      l.ff_norm = params_.data() + o[LT::kFfNorm];
      l.q_proj = Matrix{qd, d, at(o[LT::kQProj])};
      l.k_proj = Matrix{kvd, d, at(o[LT::kKProj])};
      l.v_proj = Matrix{kvd, d, at(o[LT::kVProj])};
      l.attn_out = Matrix{d, qd, at(o[LT::kAttnOut])};
      l.ff_proj = Matrix{mlp, d, at(o[LT::kFfProj])};
      l.up_proj = Matrix{mlp, d, at(o[LT::kUpProj])};
      l.ff_out = Matrix{d, mlp, at(o[LT::kFfOut])};
      if (bf) {
        l.qkv = Matrix{qd + 2 * kvd, d, at(o[LT::kQProj])};
        l.gate_up = Matrix{2 * mlp, d, at(o[LT::kFfProj])};
      }
      views.push_back(l);
    }
    (bf ? head16_ : head32_) = Matrix{vocab, d, at(head_off_)};
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
    using LT = LayerTensor;
    const auto& o = layer_off_[l];
    LayerWeights& lw = w.layers[l];
    lw.attn_norm = p + o[LT::kAttnNorm];
    lw.ff_norm = p + o[LT::kFfNorm];
    lw.q_proj = mat(o[LT::kQProj], qd, d);
    lw.k_proj = mat(o[LT::kKProj], kvd, d);
    lw.v_proj = mat(o[LT::kVProj], kvd, d);
    lw.attn_out = mat(o[LT::kAttnOut], d, qd);
    lw.ff_proj = mat(o[LT::kFfProj], mlp, d);
    lw.up_proj = mat(o[LT::kUpProj], mlp, d);
    lw.ff_out = mat(o[LT::kFfOut], d, mlp);
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
  validate_packed(a.layout, b.input_ids, b.cu_seqlens, vocab, c.max_sequence_length, {}, "train");
  for (int64_t i = 0; i < m; ++i) {
    if (b.target_rows[i] < 0 || b.target_rows[i] >= t) {
      fail("train: target row ", b.target_rows[i], " outside [0, ", t, ")");
    }
    if (b.targets[i] < 0 || b.targets[i] >= vocab) {
      fail("train: target ", b.targets[i], " outside [0, ", vocab, ")");
    }
  }
  if (a.rope_len < a.layout.longest) {
    a.rope_len = std::max<int64_t>(a.layout.longest, 64);
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
  const BlockDims dims = BlockDims::of(c);
  const int64_t d = dims.d, qd = dims.qd(), kvd = dims.kvd(), mlp = dims.mlp, nl = c.n_layers;
  TrainOperands<T>& ops = a.ops<T>();
  constexpr bool bf = kIsBf16<T>;
  // Every layer keeps its activations for the backward: the residual stream entering it, after
  // its attention sub-block, the matmul operands (RMSNorm outputs, attention output, SwiGLU
  // product) and what attention and SwiGLU need to be differentiated.
  float* xs = sized(a.xs, (nl + 1) * t * d);
  float* xmid = sized(a.x_mid, nl * t * d);
  T* n1a = sized(ops.n1, nl * t * d);
  T* n2a = sized(ops.n2, nl * t * d);
  T* hida = sized(ops.hidden, nl * t * mlp);
  embed(xs, b.input_ids, Matrix{c.embedding_size, d, params_.data() + wte_off_}, false, d);
  const BlockBatch batch{.t = t, .layout = &a.layout, .rope_table = a.rope_table.data(), .t_kv = t};
  const std::vector<LayerWeights>& views = bf ? views16_ : views32_;
  for (int64_t l = 0; l < nl; ++l) {
    BlockActs<T> acts{.n1 = n1a + l * t * d, .x_mid = xmid + l * t * d, .n2 = n2a + l * t * d,
                      .hidden = hida + l * t * mlp};
    if constexpr (bf) {
      acts.qkv = sized(a.qkv16, t * dims.qkv());  // one layer's scratch
      acts.q16 = sized(a.q16, nl * t * qd) + l * t * qd;
      acts.k16 = sized(a.k16, nl * t * kvd) + l * t * kvd;
      acts.v16 = sized(a.v16, nl * t * kvd) + l * t * kvd;
      acts.att = sized(a.att16, nl * t * qd) + l * t * qd;
      acts.gate_up = sized(a.gate16, nl * t * 2 * mlp) + l * t * 2 * mlp;
    } else {
      acts.q = sized(a.q, nl * t * qd) + l * t * qd;
      acts.k = sized(a.k, nl * t * kvd) + l * t * kvd;
      acts.v = sized(a.v, nl * t * kvd) + l * t * kvd;
      acts.att = sized(a.att, nl * t * qd) + l * t * qd;
      acts.gate = sized(a.gate, nl * t * mlp) + l * t * mlp;
      acts.up = sized(a.up, nl * t * mlp) + l * t * mlp;
    }
    block_forward<T>(views[l], l, dims, batch, xs + l * t * d, xs + (l + 1) * t * d, acts, a.ws);
  }
  if (m == 0) return 0.0;
  // Head and loss on the target rows only; the logits buffer becomes their gradient. The head's
  // products run on m_pad rows, the rows past m being zeros with a zero gradient: the number
  // of masked rows changes every step, and each new product shape costs oneDNN a primitive
  // creation of 1-9 ms, more than the padded rows' arithmetic.
  const int64_t mp = a.m_pad, vocab = c.embedding_size;
  float* logits = sized(a.logits, mp * vocab);
  head_forward(logits, sized(a.head_x, m * d), sized(ops.head_n, mp * d), xs + nl * t * d, b.target_rows, mp,
               params_.data() + ln_f_off_, bf ? head16_ : head32_, d, dims.eps);
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
  const int64_t n_seqs = a.layout.n_seqs();
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
                                           .cu_seqlens = a.layout.cu.data(), .bf16 = bf};
  using LT = LayerTensor;
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
    weight_grad(o[LT::kFfOut], dxo, hidden, d, mlp);
    if constexpr (bf) {
      bf16* dh16 = sized(a.dh16, t * mlp);
      linear_dx(dh16, dxo, W(o[LT::kFfOut]), t, d, mlp, false);
      cpu::swiglu_backward_rows(dgate, dh16, gu16, t, mlp);
      weight_grad(o[LT::kFfProj], dgate, n2, 2 * mlp, d);
      linear_dx(dn, static_cast<const T*>(dgate), W(o[LT::kFfProj]), t, 2 * mlp, d, false);
    } else {
      float* dh = sized(a.dh, t * mlp);
      linear_dx(dh, dxo, W(o[LT::kFfOut]), t, d, mlp, false);
      cpu::swiglu_backward(dgate, dup, dh, g, u, t * mlp);
      weight_grad(o[LT::kFfProj], dgate, n2, mlp, d);
      weight_grad(o[LT::kUpProj], dup, n2, mlp, d);
      linear_dx(dn, static_cast<const T*>(dgate), W(o[LT::kFfProj]), t, mlp, d, false);
      linear_dx(dn, static_cast<const T*>(dup), W(o[LT::kUpProj]), t, mlp, d, true);
    }
    norm_backward(o[LT::kFfNorm], xm);

    // Attention sub-block; dx is now the gradient of x_mid.
    weight_grad(o[LT::kAttnOut], dxo, at_op, d, qd);
    float* datt = sized(a.dh, t * qd);
    linear_dx(datt, dxo, W(o[LT::kAttnOut]), t, d, qd, false);
    if constexpr (bf) {
      // Head-major fp32 gradients of the roped q, k and of v, back to bf16 rows.
      cpu::attention_backward_heads(dq, dk, dv, datt, a.q16.data() + l * t * qd,
                                    a.k16.data() + l * t * kvd, a.v16.data() + l * t * kvd,
                                    a.att16.data() + l * t * qd, t, bshape, a.attn_bwd_ws);
      cpu::rope_backward_heads(dqkv16, nqkv, dq, t, a.layout.pos.data(), t, c.n_heads, hd,
                               a.rope_table.data());
      cpu::rope_backward_heads(dqkv16 + qd, nqkv, dk, t, a.layout.pos.data(), t, c.n_kv_heads, hd,
                               a.rope_table.data());
      cpu::rope_backward_heads(dqkv16 + qd + kvd, nqkv, dv, t, a.layout.pos.data(), t, c.n_kv_heads,
                               hd, nullptr);
      weight_grad(o[LT::kQProj], dqkv16, n1, nqkv, d);
      linear_dx(dn, static_cast<const bf16*>(dqkv16), W(o[LT::kQProj]), t, nqkv, d, false);
    } else {
      const float* q = a.q.data() + l * t * qd;
      const float* k = a.k.data() + l * t * kvd;
      const float* v = a.v.data() + l * t * kvd;
      const float* at = a.att.data() + l * t * qd;
      cpu::attention_backward(dq, dk, dv, datt, q, k, v, at, bshape, a.attn_bwd_ws);
      cpu::rope_backward(dq, qd, a.layout.pos.data(), t, c.n_heads, hd, a.rope_table.data());
      cpu::rope_backward(dk, kvd, a.layout.pos.data(), t, c.n_kv_heads, hd, a.rope_table.data());
      weight_grad(o[LT::kQProj], dq, n1, qd, d);
      weight_grad(o[LT::kKProj], dk, n1, kvd, d);
      weight_grad(o[LT::kVProj], dv, n1, kvd, d);
      linear_dx(dn, dq, W(o[LT::kQProj]), t, qd, d, false);
      linear_dx(dn, dk, W(o[LT::kKProj]), t, kvd, d, true);
      linear_dx(dn, dv, W(o[LT::kVProj]), t, kvd, d, true);
    }
    norm_backward(o[LT::kAttnNorm], x);
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

// Blocked attention. For sequence b and a block of B query rows, with G = n_heads/n_kv:
//   Qg [n_kv, G*B, hd]  (query heads of kv group g stacked row-wise), Kg, Vg [n_kv, Lk, hd]
//   S = Qg Kg^T (one batched matmul), softmax rows (fp32), O = P Vg (one batched matmul),
// then O is scattered back to the row-major output.
#include "kernels/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <dnnl.hpp>
#include <map>
#include <mutex>
#include <tuple>

#include "kernels/cpu/head_layout.h"
#include "kernels/cpu/ops.h"
#include "util/check.h"
#include "util/profile.h"

namespace illada::cpu {
namespace {

constexpr int64_t kMaxScoreFloats = int64_t{1} << 22;  // 16 MB of scores per block

using dnnl::memory;

dnnl::engine& engine() {
  static dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  return eng;
}

// Batched dense matmul dst[b] = alpha * src[b] · (trans_b ? wei[b]^T : wei[b]), cached by shape.
struct BatchedKey {
  int64_t batch, m, n, k;
  bool trans_b, bf;
  float alpha;
  auto tie() const { return std::tie(batch, m, n, k, trans_b, bf, alpha); }
  bool operator<(const BatchedKey& o) const { return tie() < o.tie(); }
};

struct Batched {
  dnnl::matmul prim;
  memory::desc a, b, c, scratch;
};

const Batched& batched(const BatchedKey& key) {
  static std::mutex mu;
  static std::map<BatchedKey, Batched> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  const auto dt = key.bf ? memory::data_type::bf16 : memory::data_type::f32;
  const int64_t B = key.batch, m = key.m, n = key.n, k = key.k;
  memory::desc a({B, m, k}, dt, memory::dims{m * k, k, 1});
  memory::desc b({B, k, n}, dt,
                 key.trans_b ? memory::dims{n * k, 1, k} : memory::dims{k * n, n, 1});
  memory::desc c({B, m, n}, memory::data_type::f32, memory::dims{m * n, n, 1});
  dnnl::primitive_attr attr;
  // Shared by every thread: each passes its own scratchpad (oneDNN's belongs to the thread
  // that created the primitive).
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  if (key.alpha != 1.0f) attr.set_output_scales(0, {key.alpha});
  dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a, b, c), attr, engine());
  return cache.emplace(key, Batched{dnnl::matmul(pd), a, b, c, pd.scratchpad_desc()}).first->second;
}

void run_batched(const BatchedKey& key, float* c, const void* a, const void* b) {
  ProfileScope prof("attn_matmul");
  const Batched& e = batched(key);
  memory ma(e.a, engine(), const_cast<void*>(a));
  memory mb(e.b, engine(), const_cast<void*>(b));
  memory mc(e.c, engine(), c);
  thread_local Buffer<uint8_t> scratch_buf;
  memory scratch(e.scratch, engine(), sized(scratch_buf, static_cast<int64_t>(e.scratch.get_size()) + 1));
  dnnl::stream strm(engine());
  e.prim.execute(strm, {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc},
                        {DNNL_ARG_SCRATCHPAD, scratch}});
  strm.wait();
}

template <class T>
void attention_impl(float* out, const float* q, const float* k, const float* v,
                    const AttentionShape& s, AttentionWorkspace& ws, Buffer<T>& qbuf,
                    Buffer<T>& kbuf, Buffer<T>& vbuf, Buffer<T>& pbuf) {
  const int32_t* cu_kv = s.cu_seqlens_kv ? s.cu_seqlens_kv : s.cu_seqlens;
  const int64_t hd = s.head_dim, kv = s.n_kv_heads, group = s.n_heads / kv;
  const int64_t ldq = s.n_heads * hd;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  constexpr bool kBf = std::is_same_v<T, bf16>;
  for (int64_t b = 0; b < s.n_seqs;) {
    const int64_t q0 = s.cu_seqlens[b], lq = s.cu_seqlens[b + 1] - q0;
    const int64_t k0 = cu_kv[b], lk = cu_kv[b + 1] - k0;
    if (lq == 0) {
      ++b;
      continue;
    }
    ILLADA_CHECK(lk > 0, "sequence ", b, " has queries but no keys");
    const int64_t block = std::clamp<int64_t>(kMaxScoreFloats / (s.n_heads * lk), 1, lq);
    // A run of consecutive sequences with the same lengths (a batch of equal prompts, CFG
    // twins, Monte-Carlo samples) goes through the same two matmuls, batched over
    // (sequence, kv head), as long as their scores fit in one block.
    int64_t run = 1;
    if (block == lq) {
      while (b + run < s.n_seqs && s.cu_seqlens[b + run + 1] - s.cu_seqlens[b + run] == lq &&
             cu_kv[b + run + 1] - cu_kv[b + run] == lk &&
             (run + 1) * s.n_heads * lq * lk <= kMaxScoreFloats) {
        ++run;
      }
    }
    T* kh = sized(kbuf, run * kv * lk * hd);
    T* vh = sized(vbuf, run * kv * lk * hd);
    for (int64_t i = 0; i < run; ++i) {
      const float* kb = s.k_seq ? s.k_seq[b + i] : k + cu_kv[b + i] * kv * hd;
      const float* vb = s.v_seq ? s.v_seq[b + i] : v + cu_kv[b + i] * kv * hd;
      gather_heads(kh + i * kv * lk * hd, kb, 0, lk, kv, hd);
      gather_heads(vh + i * kv * lk * hd, vb, 0, lk, kv, hd);
    }
    for (int64_t r0 = 0; r0 < lq; r0 += block) {
      const int64_t rows = std::min(block, lq - r0);
      const int64_t m = group * rows;  // rows of one kv group: (query head j, row r)
      const int64_t nb = run * kv;     // matmul batch: (sequence, kv head)
      // Head-major queries: head h = g*group + j lands at rows [(g*group + j)*rows, ...).
      T* qh = sized(qbuf, run * s.n_heads * rows * hd);
      for (int64_t i = 0; i < run; ++i) {
        gather_heads(qh + i * s.n_heads * rows * hd, q, s.cu_seqlens[b + i] + r0, rows, s.n_heads, hd);
      }
      float* sc = sized(ws.scores, nb * m * lk);
      run_batched({nb, m, lk, hd, true, kBf, 1.0f}, sc, qh, kh);
      {
        ProfileScope prof("attn_softmax");
        softmax_rows(sc, lk, nb * m, lk, scale);
      }
      const void* probs = sc;
      if constexpr (kBf) {
        bf16* p = sized(pbuf, nb * m * lk);
        to_bf16(p, sc, nb * m * lk);
        probs = p;
      }
      float* o = sized(ws.out, nb * m * hd);
      run_batched({nb, m, hd, lk, false, kBf, 1.0f}, o, probs, vh);
      // Scatter [run, n_heads, rows, hd] back to rows of out [T, n_heads*hd].
      const int64_t heads_total = run * s.n_heads;
#pragma omp parallel for collapse(2) schedule(static) if (heads_total * rows * hd >= (1 << 15))
      for (int64_t sh = 0; sh < heads_total; ++sh) {
        for (int64_t r = 0; r < rows; ++r) {
          const int64_t i = sh / s.n_heads, h = sh % s.n_heads;
          std::copy_n(o + (sh * rows + r) * hd, hd,
                      out + (s.cu_seqlens[b + i] + r0 + r) * ldq + h * hd);
        }
      }
    }
    b += run;
  }
}

}  // namespace

void attention(float* out, const float* q, const float* k, const float* v,
               const AttentionShape& s, AttentionWorkspace& ws) {
  ILLADA_CHECK(s.n_heads > 0 && s.n_kv_heads > 0 && s.n_heads % s.n_kv_heads == 0);
  if (s.bf16) {
    attention_impl<bf16>(out, q, k, v, s, ws, ws.qb, ws.kb, ws.vb, ws.probs);
  } else {
    Buffer<float> unused;
    attention_impl<float>(out, q, k, v, s, ws, ws.qf, ws.kf, ws.vf, unused);
  }
}

}  // namespace illada::cpu

// Blocked attention. For sequence b and a block of B query rows, with G = n_heads/n_kv:
//   Qg [n_kv, G*B, hd]  (query heads of kv group g stacked row-wise), Kg, Vg [n_kv, Lk, hd]
//   S = Qg Kg^T (one batched matmul), softmax rows (fp32), O = P Vg (one batched matmul),
// then O is scattered back to the row-major output. The products and their cache are here;
// the gathers, softmax and scatter are in attention_isa.inc, compiled once per instruction set.
#include "kernels/cpu/attention.h"

#include <algorithm>
#include <cmath>
#include <dnnl.hpp>
#include <map>
#include <mutex>
#include <tuple>

#include "util/isa_dispatch.h"
#include "kernels/cpu/ops.h"
#include "kernels/onednn.h"
#include "util/check.h"
#include "util/profile.h"

namespace illada::cpu {
namespace {

constexpr int64_t kMaxScoreFloats = int64_t{1} << 22;  // 16 MB of scores per block

using dnnl::memory;

dnnl::engine& engine() { return onednn::engine(); }

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

void run_batched(BatchedKey key, float* c, const void* a, const void* b) {
  ProfileScope prof("attn_matmul");
  if (key.bf && !onednn::bf16_products()) {  // the fp32 product on widened operands
    thread_local Buffer<float> a32, b32;
    key.bf = false;
    a = onednn::widened(static_cast<const bf16*>(a), key.batch * key.m * key.k, a32, true);
    b = onednn::widened(static_cast<const bf16*>(b), key.batch * key.k * key.n, b32, true);
  }
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

}  // namespace
}  // namespace illada::cpu

#define ILLADA_ISA_BODY "kernels/cpu/attention_isa.inc"
#include "util/foreach_isa.inc"

namespace illada::cpu {

void attention(float* out, const float* q, const float* k, const float* v,
               const AttentionShape& s, AttentionWorkspace& ws) {
  ILLADA_CHECK(s.n_heads > 0 && s.n_kv_heads > 0 && s.n_heads % s.n_kv_heads == 0);
  ILLADA_DISPATCH(attention, out, q, k, v, s, ws)
}

}  // namespace illada::cpu

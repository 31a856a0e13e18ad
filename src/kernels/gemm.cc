// oneDNN matmul primitives, cached by shape so repeated shapes (every layer, every
// diffusion step) pay the primitive creation once.
#include "kernels/gemm.h"

#include <dnnl.hpp>
#include <map>
#include <mutex>
#include <tuple>

#include "util/check.h"
#include "util/profile.h"

namespace illada {

using dnnl::memory;

namespace {


dnnl::engine& cpu_engine() {
  static dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  return eng;
}

// (m, n, k, lda, ldb, ldc, b_is_nk, alpha, accumulate, bf16, packed)
using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, bool, float, bool, bool, bool>;

struct Entry {
  dnnl::matmul prim;
  memory::desc a, b, c;
};

std::mutex g_mu;
std::map<Key, Entry> g_cache;
int64_t g_created = 0;

// The blocked weights layout the AMX matmul prefers for an [n, k] bf16 matrix.
memory::desc packed_desc(int64_t n, int64_t k) {
  const memory::desc a({128, k}, memory::data_type::bf16, memory::format_tag::ab);
  const memory::desc b({k, n}, memory::data_type::bf16, memory::format_tag::any);
  const memory::desc c({128, n}, memory::data_type::f32, memory::format_tag::ab);
  return dnnl::matmul::primitive_desc(dnnl::matmul::desc(a, b, c), cpu_engine()).weights_desc();
}

const Entry& get_entry(const GemmShape& s, bool bf, const memory::desc* packed = nullptr) {
  Key key{s.m, s.n, s.k, s.lda, packed ? 0 : s.ldb, s.ldc, s.b_is_nk, s.alpha, s.accumulate, bf,
          packed != nullptr};
  std::lock_guard<std::mutex> lock(g_mu);
  auto it = g_cache.find(key);
  if (it != g_cache.end()) return it->second;
  const auto dt = bf ? memory::data_type::bf16 : memory::data_type::f32;
  memory::desc a({s.m, s.k}, dt, memory::dims{s.lda, 1});
  // Weights are described as [k, n]; an [n, k] buffer is the same memory with swapped strides.
  memory::desc b = packed ? *packed
                          : memory::desc({s.k, s.n}, dt,
                                         s.b_is_nk ? memory::dims{1, s.ldb} : memory::dims{s.ldb, 1});
  memory::desc c({s.m, s.n}, memory::data_type::f32, memory::dims{s.ldc, 1});
  dnnl::primitive_attr attr;
  if (s.alpha != 1.0f) attr.set_output_scales(0, {s.alpha});
  if (s.accumulate) {
    dnnl::post_ops po;
    po.append_sum(1.0f);
    attr.set_post_ops(po);
  }
  dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a, b, c), attr, cpu_engine());
  ++g_created;
  return g_cache.emplace(key, Entry{dnnl::matmul(pd), a, b, c}).first->second;
}

template <class T>
void run(float* c, const T* a, const T* b, const GemmShape& s, bool bf) {
  ProfileScope prof(bf ? "gemm_bf16" : "gemm_f32");
  ILLADA_CHECK(s.m > 0 && s.n > 0 && s.k > 0, "gemm of empty shape ", s.m, "x", s.n, "x", s.k);
  ILLADA_CHECK(s.lda >= s.k && s.ldc >= s.n && s.ldb >= (s.b_is_nk ? s.k : s.n), "bad strides");
  const Entry& e = get_entry(s, bf);
  auto& eng = cpu_engine();
  memory ma(e.a, eng, const_cast<T*>(a));
  memory mb(e.b, eng, const_cast<T*>(b));
  memory mc(e.c, eng, c);
  dnnl::stream strm(eng);
  e.prim.execute(strm, {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}});
  strm.wait();
}

}  // namespace

struct PackedWeights::Impl {
  memory::desc desc;
  memory mem;  // owns the packed buffer
};

PackedWeights::PackedWeights(const bf16* w, int64_t n, int64_t k) : n_(n), k_(k) {
  ILLADA_CHECK(n > 0 && k > 0);
  std::lock_guard<std::mutex> lock(g_mu);  // primitive creation shares the engine
  const memory::desc plain({k, n}, memory::data_type::bf16, memory::dims{1, k});
  const memory::desc desc = packed_desc(n, k);
  memory src(plain, cpu_engine(), const_cast<bf16*>(w));
  memory dst(desc, cpu_engine());
  dnnl::stream strm(cpu_engine());
  dnnl::reorder(src, dst).execute(strm, src, dst);
  strm.wait();
  impl_ = std::make_unique<Impl>(Impl{desc, dst});
}

PackedWeights::~PackedWeights() = default;

size_t PackedWeights::bytes() const { return impl_->desc.get_size(); }

void gemm(float* c, const bf16* a, const PackedWeights& b, const GemmShape& s) {
  ProfileScope prof("gemm_bf16");
  ILLADA_CHECK(s.n == b.n() && s.k == b.k() && s.b_is_nk, "packed gemm shape mismatch");
  ILLADA_CHECK(s.m > 0 && s.lda >= s.k && s.ldc >= s.n, "bad strides");
  const Entry& e = get_entry(s, true, &b.impl().desc);
  auto& eng = cpu_engine();
  memory ma(e.a, eng, const_cast<bf16*>(a));
  memory mc(e.c, eng, c);
  dnnl::stream strm(eng);
  e.prim.execute(strm, {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, b.impl().mem}, {DNNL_ARG_DST, mc}});
  strm.wait();
}

void gemm(float* c, const float* a, const float* b, const GemmShape& s) { run(c, a, b, s, false); }
void gemm(float* c, const bf16* a, const bf16* b, const GemmShape& s) { run(c, a, b, s, true); }

int64_t gemm_primitives_created() {
  std::lock_guard<std::mutex> lock(g_mu);
  return g_created;
}

}  // namespace illada

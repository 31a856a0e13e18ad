// oneDNN matmul primitives, cached by shape so repeated shapes (every layer, every
// diffusion step) pay the primitive creation once.
#include "kernels/gemm.h"

#include <dnnl.hpp>
#include <map>
#include <mutex>
#include <tuple>
#include <unordered_map>
#include <type_traits>

#include "util/aligned.h"
#include "util/check.h"
#include "util/profile.h"

namespace illada {

using dnnl::memory;

namespace {


dnnl::engine& cpu_engine() {
  static dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  return eng;
}

// (m, n, k, lda, ldb, ldc, b_is_nk, alpha, accumulate, bf16, packed, a transposed, batch
// count, batch strides of a, b, c, bf16 C, an added matrix)
using Key = std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t, int64_t, bool, float, bool,
                       bool, bool, bool, int64_t, int64_t, int64_t, int64_t, bool, bool>;

struct Entry {
  dnnl::matmul prim;
  memory::desc a, b, c;
  bool add = false;  // a binary-add post-op reads a C-shaped matrix
  memory::desc scratch;  // what one execution needs (user-managed, see get_entry)
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

const Entry& get_entry(const GemmShape& s, bool bf, const memory::desc* packed = nullptr,
                       bool a_t = false, const GemmBatch& batch = {}, bool c_bf16 = false,
                       bool add = false) {
  Key key{s.m, s.n, s.k, s.lda, packed ? 0 : s.ldb, s.ldc, s.b_is_nk, s.alpha, s.accumulate, bf,
          packed != nullptr, a_t, batch.count, batch.a, batch.b, batch.c, c_bf16, add};
  std::lock_guard<std::mutex> lock(g_mu);
  auto it = g_cache.find(key);
  if (it != g_cache.end()) return it->second;
  const auto dt = bf ? memory::data_type::bf16 : memory::data_type::f32;
  // Weights are described as [k, n]; an [n, k] buffer is the same memory with swapped strides.
  const memory::dims sa = a_t ? memory::dims{1, s.lda} : memory::dims{s.lda, 1};
  const memory::dims sb = s.b_is_nk ? memory::dims{1, s.ldb} : memory::dims{s.ldb, 1};
  // A batch adds a leading dimension with its own stride.
  auto desc = [&](int64_t rows, int64_t cols, memory::data_type t, const memory::dims& st,
                  int64_t batch_stride) {
    if (batch.count == 1) return memory::desc({rows, cols}, t, st);
    return memory::desc({batch.count, rows, cols}, t, memory::dims{batch_stride, st[0], st[1]});
  };
  memory::desc a = desc(s.m, s.k, dt, sa, batch.a);
  memory::desc b = packed ? *packed : desc(s.k, s.n, dt, sb, batch.b);
  memory::desc c = desc(s.m, s.n, c_bf16 ? memory::data_type::bf16 : memory::data_type::f32,
                        memory::dims{s.ldc, 1}, batch.c);
  dnnl::primitive_attr attr;
  // The cached primitives are shared by every thread. oneDNN's own scratchpad (the default
  // "library" mode of this build) belongs to the thread that created the primitive, so two
  // threads running products at once (two requests on one model) would share it; each thread
  // passes its own instead (execute()).
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  if (s.alpha != 1.0f) attr.set_output_scales(0, {s.alpha});
  if (s.accumulate || add) {
    dnnl::post_ops po;
    if (s.accumulate) po.append_sum(1.0f);
    // R + A·B: R is read once in the product's store, with C's layout.
    if (add) po.append_binary(dnnl::algorithm::binary_add, c);
    attr.set_post_ops(po);
  }
  dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a, b, c), attr, cpu_engine());
  ++g_created;
  return g_cache.emplace(key, Entry{dnnl::matmul(pd), a, b, c, add, pd.scratchpad_desc()}).first->second;
}

// One thread's memory objects for a cached product, bound once; each call only resets their
// data handles (creating memory objects, an argument map and a stream per call was a tenth of
// a small model's training step). Entries never move, so their addresses key the bindings.
struct Bound {
  memory a, b, c, add, scratch;
  std::unordered_map<int, memory> args;
};

struct ThreadState {
  dnnl::stream stream{cpu_engine()};
  std::unordered_map<const Entry*, Bound> bound;
  Buffer<uint8_t> scratch;  // this thread's scratchpad, as large as the largest need
};

void execute(const Entry& e, const void* a, const void* b, void* c, const float* add) {
  thread_local ThreadState ts;
  auto it = ts.bound.find(&e);
  if (it == ts.bound.end()) {
    auto& eng = cpu_engine();
    Bound bd{memory(e.a, eng, DNNL_MEMORY_NONE), memory(e.b, eng, DNNL_MEMORY_NONE),
             memory(e.c, eng, DNNL_MEMORY_NONE), memory(e.c, eng, DNNL_MEMORY_NONE),
             memory(e.scratch, eng, DNNL_MEMORY_NONE), {}};
    bd.args = {{DNNL_ARG_SRC, bd.a}, {DNNL_ARG_WEIGHTS, bd.b}, {DNNL_ARG_DST, bd.c},
               {DNNL_ARG_SCRATCHPAD, bd.scratch}};
    // The add is the only post-op (gemm_add does not accumulate).
    if (e.add) bd.args.emplace(DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1, bd.add);
    it = ts.bound.emplace(&e, std::move(bd)).first;
  }
  Bound& bd = it->second;
  bd.a.set_data_handle(const_cast<void*>(a));
  bd.b.set_data_handle(const_cast<void*>(b));
  bd.c.set_data_handle(c);
  if (e.add) bd.add.set_data_handle(const_cast<float*>(add));
  bd.scratch.set_data_handle(sized(ts.scratch, static_cast<int64_t>(e.scratch.get_size()) + 1));
  e.prim.execute(ts.stream, bd.args);
  ts.stream.wait();
}

template <class T, class C = float>
void run(C* c, const T* a, const T* b, const GemmShape& s, bool bf, bool a_t = false,
         const GemmBatch& batch = {}, const float* add = nullptr) {
  constexpr bool c_bf16 = std::is_same_v<C, bf16>;
  ProfileScope prof(bf ? "gemm_bf16" : "gemm_f32");
  ILLADA_CHECK(s.m > 0 && s.n > 0 && s.k > 0, "gemm of empty shape ", s.m, "x", s.n, "x", s.k);
  ILLADA_CHECK(s.lda >= (a_t ? s.m : s.k) && s.ldc >= s.n && s.ldb >= (s.b_is_nk ? s.k : s.n),
               "bad strides");
  ILLADA_CHECK(batch.count >= 1, "gemm batch of ", batch.count);
  ILLADA_CHECK(!c_bf16 || !s.accumulate, "a bf16 C cannot be accumulated into");
  const Entry& e = get_entry(s, bf, nullptr, a_t, batch, c_bf16, add != nullptr);
  execute(e, a, b, c, add);
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

namespace {

template <class C>
void run_packed(C* c, const bf16* a, const PackedWeights& b, const GemmShape& s, const float* add) {
  constexpr bool c_bf16 = std::is_same_v<C, bf16>;
  ProfileScope prof("gemm_bf16");
  ILLADA_CHECK(s.n == b.n() && s.k == b.k() && s.b_is_nk, "packed gemm shape mismatch");
  ILLADA_CHECK(s.m > 0 && s.lda >= s.k && s.ldc >= s.n, "bad strides");
  ILLADA_CHECK(!c_bf16 || !s.accumulate, "a bf16 C cannot be accumulated into");
  ILLADA_CHECK(!add || !s.accumulate, "gemm_add writes C");
  const Entry& e = get_entry(s, true, &b.impl().desc, false, {}, c_bf16, add != nullptr);
  execute(e, a, b.impl().mem.get_data_handle(), c, add);
}

}  // namespace

void gemm(float* c, const bf16* a, const PackedWeights& b, const GemmShape& s) { run_packed(c, a, b, s, nullptr); }
void gemm(bf16* c, const bf16* a, const PackedWeights& b, const GemmShape& s) { run_packed(c, a, b, s, nullptr); }
void gemm_add(float* c, const bf16* a, const PackedWeights& b, const float* r, const GemmShape& s) {
  run_packed(c, a, b, s, r);
}

void gemm(float* c, const float* a, const float* b, const GemmShape& s) { run(c, a, b, s, false); }
void gemm(float* c, const bf16* a, const bf16* b, const GemmShape& s) { run(c, a, b, s, true); }
void gemm(bf16* c, const bf16* a, const bf16* b, const GemmShape& s) { run(c, a, b, s, true); }
void gemm_add(float* c, const bf16* a, const bf16* b, const float* r, const GemmShape& s) {
  ILLADA_CHECK(!s.accumulate, "gemm_add writes C");
  run(c, a, b, s, true, false, {}, r);
}
void gemm_at(float* c, const float* a, const float* b, const GemmShape& s) {
  run(c, a, b, s, false, true);
}
void gemm_at(float* c, const bf16* a, const bf16* b, const GemmShape& s) {
  run(c, a, b, s, true, true);
}

void gemm_batched(float* c, const float* a, const float* b, const GemmShape& s,
                  const GemmBatch& batch) {
  run(c, a, b, s, false, false, batch);
}
void gemm_batched(float* c, const bf16* a, const bf16* b, const GemmShape& s,
                  const GemmBatch& batch) {
  run(c, a, b, s, true, false, batch);
}
void gemm_batched_at(float* c, const bf16* a, const bf16* b, const GemmShape& s,
                     const GemmBatch& batch) {
  run(c, a, b, s, true, true, batch);
}

int64_t gemm_primitives_created() {
  std::lock_guard<std::mutex> lock(g_mu);
  return g_created;
}

}  // namespace illada

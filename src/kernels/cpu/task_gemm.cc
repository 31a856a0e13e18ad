// Per-task attention products (see task_gemm.h). Where oneDNN has no bf16 products
// (onednn.h), each runs as an fp32 product on its operands widened in per-thread scratch.
#include "kernels/cpu/task_gemm.h"

#include <dnnl.hpp>
#include <map>
#include <mutex>
#include <tuple>
#include <unordered_map>

#include "kernels/onednn.h"

namespace illada::cpu {
namespace {

using dnnl::memory;
// (m, n, k, kind, fp32 operands)
using Key = std::tuple<int64_t, int64_t, int64_t, TaskProductKind, bool>;

struct Product {
  dnnl::matmul prim;
  memory::desc a, b, c, scratch;
};

dnnl::engine& engine() { return onednn::engine(); }

// The shared cache of created products; its entries never move.
const Product& shared_product(const Key& key) {
  static std::mutex mu;
  static std::map<Key, Product> cache;
  std::lock_guard<std::mutex> lock(mu);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  const auto [m, n, k, kind, f32] = key;
  const auto dt = f32 ? memory::data_type::f32 : memory::data_type::bf16;
  const bool a_t = kind == TaskProductKind::kAtNN || kind == TaskProductKind::kAtNNAcc;
  memory::desc a({m, k}, dt, a_t ? memory::dims{1, m} : memory::dims{k, 1});
  memory::desc b({k, n}, dt,
                 kind == TaskProductKind::kScores ? memory::dims{1, k} : memory::dims{n, 1});
  memory::desc c({m, n}, memory::data_type::f32, memory::dims{n, 1});
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  if (kind == TaskProductKind::kAtNNAcc) {
    dnnl::post_ops po;
    po.append_sum(1.0f);
    attr.set_post_ops(po);
  }
  dnnl::matmul::primitive_desc pd(dnnl::matmul::desc(a, b, c), attr, engine());
  return cache.emplace(key, Product{dnnl::matmul(pd), a, b, c, pd.scratchpad_desc()})
      .first->second;
}

struct KeyHash {
  size_t operator()(const Key& k) const {
    const auto [m, n, kk, kind, f32] = k;
    size_t h = std::hash<int64_t>()(m);
    h = h * 1000003u ^ std::hash<int64_t>()(n);
    h = h * 1000003u ^ std::hash<int64_t>()(kk);
    return (h * 1000003u ^ static_cast<size_t>(kind)) * 2 + f32;
  }
};

// One thread's view of a product: memory objects whose data handles are reset per call.
struct Bound {
  dnnl::matmul prim;
  memory a, b, c, scratch;
  size_t scratch_bytes = 0;
  std::unordered_map<int, memory> args;
};

struct ThreadState {
  dnnl::stream stream{engine()};
  std::unordered_map<Key, Bound, KeyHash> bound;
  Buffer<float> a32, b32;  // widened operands without oneDNN bf16 products
};

}  // namespace

void prepare_task_product(int64_t m, int64_t n, int64_t k, TaskProductKind kind) {
  shared_product(Key{m, n, k, kind, !onednn::bf16_products()});
}

void run_task_product(float* c, const bf16* a, const bf16* b, int64_t m, int64_t n, int64_t k,
                      TaskProductKind kind, Buffer<uint8_t>& scratch) {
  thread_local ThreadState ts;
  const bool f32 = !onednn::bf16_products();
  const Key key{m, n, k, kind, f32};
  auto it = ts.bound.find(key);
  if (it == ts.bound.end()) {
    const Product& p = shared_product(key);
    Bound bd{p.prim,
             memory(p.a, engine(), DNNL_MEMORY_NONE),
             memory(p.b, engine(), DNNL_MEMORY_NONE),
             memory(p.c, engine(), DNNL_MEMORY_NONE),
             memory(p.scratch, engine(), DNNL_MEMORY_NONE),
             p.scratch.get_size(),
             {}};
    bd.args = {{DNNL_ARG_SRC, bd.a},
               {DNNL_ARG_WEIGHTS, bd.b},
               {DNNL_ARG_DST, bd.c},
               {DNNL_ARG_SCRATCHPAD, bd.scratch}};
    it = ts.bound.emplace(key, std::move(bd)).first;
  }
  Bound& bd = it->second;
  if (scratch.size() < bd.scratch_bytes + 1) scratch.resize(bd.scratch_bytes + 1);
  if (f32) {  // every operand is dense: A [m, k] or [k, m], B [n, k] or [k, n]
    bd.a.set_data_handle(onednn::widened(a, m * k, ts.a32));
    bd.b.set_data_handle(onednn::widened(b, k * n, ts.b32));
  } else {
    bd.a.set_data_handle(const_cast<bf16*>(a));
    bd.b.set_data_handle(const_cast<bf16*>(b));
  }
  bd.c.set_data_handle(c);
  bd.scratch.set_data_handle(scratch.data());
  bd.prim.execute(ts.stream, bd.args);
  ts.stream.wait();
}

}  // namespace illada::cpu

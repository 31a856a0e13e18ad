// oneDNN matmul primitives, cached by shape so repeated shapes (every layer, every
// diffusion step) pay the primitive creation once. Where oneDNN has no bf16 products
// (onednn.h), bf16 products run as fp32 products on operands widened here.
#include "kernels/gemm.h"

#include <algorithm>
#include <dnnl.hpp>
#include <exception>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <unordered_map>
#include <type_traits>

#include "kernels/onednn.h"
#include "util/aligned.h"
#include "util/check.h"
#include "util/isa.h"
#include "util/profile.h"

namespace illada {

using dnnl::memory;

namespace {

dnnl::engine& cpu_engine() { return onednn::engine(); }

constexpr int64_t kInvariantRows = 8;  // fewer rows take another kernel (rows 1-4 measured)
constexpr int64_t kInvariantK = 512;   // at most this many columns are reduced as one block

// The fp32 partial sums of a bf16 C, reused by the thread's next product.
Buffer<float>& partial_sums() {
  thread_local Buffer<float> partial;
  return partial;
}

// A product summed over several reductions into fp32: sum(acc, shape, add) writes them into
// C directly, or for a bf16 C into the thread's partial sums, rounded into C once at the end
// (a bf16 C takes no residual).
template <class C, class Sum>
void sum_in_fp32(C* c, const GemmShape& s, const float* add, Sum sum) {
  if constexpr (std::is_same_v<C, bf16>) {
    GemmShape fs = s;
    fs.ldc = s.n;
    float* partial = sized(partial_sums(), s.m * s.n);
    sum(partial, fs, static_cast<const float*>(nullptr));
    for (int64_t i = 0; i < s.m; ++i) to_bf16(c + i * s.ldc, partial + i * s.n, static_cast<long>(s.n));
  } else {
    sum(c, s, add);
  }
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
  uint64_t id = 0;       // unique over the process: keys the threads' bindings
};
using EntryPtr = std::shared_ptr<const Entry>;

// The cache holds at most g_limit primitives; past it the least recently used one goes. Every
// distinct row count is a primitive per weight shape, and a server packs requests into row
// counts that keep changing: unbounded, the cache (each primitive holds its generated code)
// grew without end. A product in flight keeps its entry alive (shared_ptr) when it is evicted.
std::mutex g_mu;
int64_t g_created = 0;  // primitives created (serve's /metrics)
int64_t g_limit = kGemmCacheDefaultLimit;
uint64_t g_next_id = 1;
struct Cached {
  EntryPtr entry;
  std::list<Key>::iterator lru;  // position in g_lru (front: most recent)
};
std::map<Key, Cached> g_cache;
std::list<Key> g_lru;

void evict_to(int64_t limit) {  // with g_mu held
  while (static_cast<int64_t>(g_cache.size()) > limit) {
    g_cache.erase(g_lru.back());
    g_lru.pop_back();
  }
}

// The blocked weights layout the AMX matmul prefers for an [n, k] bf16 matrix.
memory::desc packed_desc(int64_t n, int64_t k) {
  const memory::desc a({128, k}, memory::data_type::bf16, memory::format_tag::ab);
  const memory::desc b({k, n}, memory::data_type::bf16, memory::format_tag::any);
  const memory::desc c({128, n}, memory::data_type::f32, memory::format_tag::ab);
  return dnnl::matmul::primitive_desc(dnnl::matmul::desc(a, b, c), cpu_engine()).weights_desc();
}

EntryPtr get_entry(const GemmShape& s, bool bf, const memory::desc* packed = nullptr,
                   bool a_t = false, const GemmBatch& batch = {}, bool c_bf16 = false,
                   bool add = false) {
  Key key{s.m, s.n, s.k, s.lda, packed ? 0 : s.ldb, s.ldc, s.b_is_nk, s.alpha, s.accumulate, bf,
          packed != nullptr, a_t, batch.count, batch.a, batch.b, batch.c, c_bf16, add};
  std::lock_guard<std::mutex> lock(g_mu);
  auto it = g_cache.find(key);
  if (it != g_cache.end()) {
    g_lru.splice(g_lru.begin(), g_lru, it->second.lru);
    return it->second.entry;
  }
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
  auto entry = std::make_shared<const Entry>(Entry{dnnl::matmul(pd), a, b, c, add, pd.scratchpad_desc(), g_next_id++});
  g_lru.push_front(key);
  g_cache.emplace(key, Cached{entry, g_lru.begin()});
  evict_to(g_limit);
  return entry;
}

// One thread's memory objects for a cached product, bound once; each call only resets their
// data handles (creating memory objects, an argument map and a stream per call was a tenth of
// a small model's training step). Keyed by the entry's id; a binding does not keep its entry
// alive (an evicted primitive is freed at once), and bindings of evicted entries are dropped
// when a thread holds as many as the cache.
struct Bound {
  std::weak_ptr<const Entry> entry;
  memory a, b, c, add, scratch;
  std::unordered_map<int, memory> args;
};

struct ThreadState {
  dnnl::stream stream{cpu_engine()};
  std::unordered_map<uint64_t, Bound> bound;
  Buffer<uint8_t> scratch;  // this thread's scratchpad, as large as the largest need
};

void execute(const EntryPtr& ep, const void* a, const void* b, void* c, const float* add) {
  thread_local ThreadState ts;
  const Entry& e = *ep;
  auto it = ts.bound.find(e.id);
  if (it == ts.bound.end()) {
    int64_t limit;
    {
      std::lock_guard<std::mutex> lock(g_mu);
      limit = g_limit;
    }
    if (static_cast<int64_t>(ts.bound.size()) >= limit) {
      std::erase_if(ts.bound, [](const auto& kv) { return kv.second.entry.expired(); });
      if (static_cast<int64_t>(ts.bound.size()) >= limit) ts.bound.clear();
    }
    auto& eng = cpu_engine();
    Bound bd{ep, memory(e.a, eng, DNNL_MEMORY_NONE), memory(e.b, eng, DNNL_MEMORY_NONE),
             memory(e.c, eng, DNNL_MEMORY_NONE), memory(e.c, eng, DNNL_MEMORY_NONE),
             memory(e.scratch, eng, DNNL_MEMORY_NONE), {}};
    bd.args = {{DNNL_ARG_SRC, bd.a}, {DNNL_ARG_WEIGHTS, bd.b}, {DNNL_ARG_DST, bd.c},
               {DNNL_ARG_SCRATCHPAD, bd.scratch}};
    // The add is the only post-op (gemm_add does not accumulate).
    if (e.add) bd.args.emplace(DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1, bd.add);
    it = ts.bound.emplace(e.id, std::move(bd)).first;
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

// Elements from the first to the last one a strided [rows, cols] matrix (ld >= cols) touches,
// over a batch of count matrices batch_stride apart.
int64_t extent(int64_t rows, int64_t cols, int64_t ld, int64_t count = 1,
               int64_t batch_stride = 0) {
  return (count - 1) * batch_stride + (rows - 1) * ld + cols;
}

// Columns of B widened per fp32 product in the fallback: a panel of at most 1M floats (4 MB),
// so that a large weight (a vocabulary-sized head) is never widened whole.
int64_t panel_columns(int64_t n, int64_t k) {
  return std::clamp<int64_t>((int64_t{1} << 20) / k, 16, n);
}

template <class C>
void run_bf16_as_f32(C* c, const bf16* a, const bf16* b, const GemmShape& s, bool a_t,
                     const GemmBatch& batch, const float* add);

template <class T, class C = float>
void run_direct(C* c, const T* a, const T* b, const GemmShape& s, bool bf, bool a_t = false,
                const GemmBatch& batch = {}, const float* add = nullptr) {
  constexpr bool c_bf16 = std::is_same_v<C, bf16>;
  ILLADA_CHECK(s.m > 0 && s.n > 0 && s.k > 0, "gemm of empty shape ", s.m, "x", s.n, "x", s.k);
  ILLADA_CHECK(s.lda >= (a_t ? s.m : s.k) && s.ldc >= s.n && s.ldb >= (s.b_is_nk ? s.k : s.n),
               "bad strides");
  ILLADA_CHECK(batch.count >= 1, "gemm batch of ", batch.count);
  ILLADA_CHECK(!c_bf16 || !s.accumulate, "a bf16 C cannot be accumulated into");
  if constexpr (std::is_same_v<T, bf16>) {
    if (!onednn::bf16_products()) return run_bf16_as_f32(c, a, b, s, a_t, batch, add);
  }
  ProfileScope prof(bf ? "gemm_bf16" : "gemm_f32");
  execute(get_entry(s, bf, nullptr, a_t, batch, c_bf16, add != nullptr), a, b, c, add);
}

// The bf16 product as fp32 products: A widened whole, B one panel of columns at a time (a
// batch, attention-sized, whole), C written directly or, when bf16, through an fp32 panel.
template <class C>
void run_bf16_as_f32(C* c, const bf16* a, const bf16* b, const GemmShape& s, bool a_t,
                     const GemmBatch& batch, const float* add) {
  constexpr bool c_bf16 = std::is_same_v<C, bf16>;
  thread_local Buffer<float> a32, b32, c32;
  const float* aw = onednn::widened(
      a, a_t ? extent(s.k, s.m, s.lda, batch.count, batch.a)
             : extent(s.m, s.k, s.lda, batch.count, batch.a), a32, true);
  if (batch.count > 1) {
    if constexpr (c_bf16) {
      ILLADA_CHECK(false, "batched products write fp32 C");
    } else {
      const float* bw = onednn::widened(
          b, s.b_is_nk ? extent(s.n, s.k, s.ldb, batch.count, batch.b)
                       : extent(s.k, s.n, s.ldb, batch.count, batch.b), b32, true);
      run_direct(c, aw, bw, s, false, a_t, batch, add);
    }
    return;
  }
  const int64_t nb = panel_columns(s.n, s.k);
  for (int64_t n0 = 0; n0 < s.n; n0 += nb) {
    const int64_t cols = std::min(nb, s.n - n0);
    GemmShape ps = s;
    ps.n = cols;
    float* bw = sized(b32, cols * s.k);
    if (s.b_is_nk) {  // rows n0.. of B [n, k] -> dense [cols, k]
#pragma omp parallel for schedule(static) if (cols * s.k >= (1 << 16))
      for (int64_t j = 0; j < cols; ++j) to_float(bw + j * s.k, b + (n0 + j) * s.ldb, s.k);
      ps.ldb = s.k;
    } else {  // columns n0.. of B [k, n] -> dense [k, cols]
#pragma omp parallel for schedule(static) if (cols * s.k >= (1 << 16))
      for (int64_t p = 0; p < s.k; ++p) to_float(bw + p * cols, b + p * s.ldb + n0, cols);
      ps.ldb = cols;
    }
    if constexpr (c_bf16) {
      ps.ldc = cols;
      float* cw = sized(c32, s.m * cols);
      run_direct(cw, aw, static_cast<const float*>(bw), ps, false, a_t);
      for (int64_t i = 0; i < s.m; ++i) to_bf16(c + i * s.ldc + n0, cw + i * cols, cols);
    } else {
      run_direct(c + n0, aw, static_cast<const float*>(bw), ps, false, a_t, {}, add ? add + n0 : nullptr);
    }
  }
}

}  // namespace

struct PackedWeights::Impl {
  // Columns [k0, k0 + kc) of the matrix, packed alone: one chunk when k <= kInvariantK.
  struct Chunk {
    memory::desc desc;
    memory mem;  // owns the packed buffer
    int64_t k0 = 0, kc = 0;
  };
  std::vector<Chunk> chunks;
  // Without oneDNN bf16 products (onednn.h) when packed: the plain [n, k] copy instead.
  Buffer<bf16> plain;
};

PackedWeights::PackedWeights(const bf16* w, int64_t n, int64_t k, std::vector<PlainRows> plain_rows,
                             WeightsLayout layout)
    : n_(n), k_(k), plain_(std::move(plain_rows)) {
  int64_t rows = 0;
  for (const PlainRows& p : plain_) rows += p.rows;
  ILLADA_CHECK(plain_.empty() || rows == n, "plain rows ", rows, " for a packed matrix of ", n);
  ILLADA_CHECK(n > 0 && k > 0);
  impl_ = std::make_unique<Impl>();
  if (!onednn::bf16_products()) {
    impl_->plain.assign(w, w + n * k);
    return;
  }
  std::lock_guard<std::mutex> lock(g_mu);  // primitive creation shares the engine
  dnnl::stream strm(cpu_engine());
  const int64_t chunk = layout == WeightsLayout::kChunks ? kInvariantK : k;
  for (int64_t k0 = 0; k0 < k; k0 += chunk) {
    const int64_t kc = std::min(chunk, k - k0);
    // Columns k0.. of w [n, k] seen as [kc, n] weights.
    const memory::desc plain({kc, n}, memory::data_type::bf16, memory::dims{1, k});
    const memory::desc desc = packed_desc(n, kc);
    memory src(plain, cpu_engine(), const_cast<bf16*>(w + k0));
    memory dst(desc, cpu_engine());
    dnnl::reorder(src, dst).execute(strm, src, dst);
    strm.wait();
    impl_->chunks.push_back({desc, dst, k0, kc});
  }
}

PackedWeights::~PackedWeights() = default;

size_t PackedWeights::bytes() const {
  if (!impl_->plain.empty()) return impl_->plain.size() * sizeof(bf16);
  size_t total = 0;
  for (const Impl::Chunk& ch : impl_->chunks) total += ch.desc.get_size();
  return total;
}

namespace {

// C (+)= A·B (+ R) over the packed chunks in order: the first writes (or accumulates into) C
// and takes R, the others accumulate; a bf16 C is summed in fp32 and rounded once.
template <class C>
void run_packed_direct(C* c, const bf16* a, const PackedWeights& b, const GemmShape& s, const float* add) {
  constexpr bool c_bf16 = std::is_same_v<C, bf16>;
  ILLADA_CHECK(s.n == b.n() && s.k == b.k() && s.b_is_nk, "packed gemm shape mismatch");
  ILLADA_CHECK(s.m > 0 && s.lda >= s.k && s.ldc >= s.n, "bad strides");
  ILLADA_CHECK(!c_bf16 || !s.accumulate, "a bf16 C cannot be accumulated into");
  ILLADA_CHECK(!add || !s.accumulate, "gemm_add writes C");
  if (!b.impl().plain.empty()) {  // no oneDNN bf16 products: the plain copy, as fp32 products
    GemmShape plain = s;
    plain.ldb = s.k;
    return run_direct(c, a, b.impl().plain.data(), plain, true, false, {}, add);
  }
  ProfileScope prof("gemm_bf16");
  const auto& chunks = b.impl().chunks;
  if (chunks.size() == 1) {
    execute(get_entry(s, true, &chunks[0].desc, false, {}, c_bf16, add != nullptr), a, chunks[0].mem.get_data_handle(), c,
            add);
    return;
  }
  sum_in_fp32(c, s, add, [&](float* acc, const GemmShape& fs, const float* r) {
    // Each chunk's columns of A copied dense: oneDNN 2.6 runs a blocked B with a strided A
    // (row stride k, kc columns) in its reference kernel, 100x slower (seen in ONEDNN_VERBOSE).
    thread_local Buffer<bf16> a_chunk;
    bf16* ac = sized(a_chunk, s.m * kInvariantK);
    GemmShape cs = fs;
    for (size_t i = 0; i < chunks.size(); ++i) {
      const auto& ch = chunks[i];
#pragma omp parallel for schedule(static) if (s.m * ch.kc >= (int64_t{1} << 16))
      for (int64_t row = 0; row < s.m; ++row) {
        std::copy(a + row * s.lda + ch.k0, a + row * s.lda + ch.k0 + ch.kc, ac + row * ch.kc);
      }
      cs.k = ch.kc;
      cs.lda = ch.kc;
      cs.accumulate = i > 0 || fs.accumulate;
      const float* first_r = i == 0 ? r : nullptr;
      execute(get_entry(cs, true, &ch.desc, false, {}, false, first_r != nullptr), ac, ch.mem.get_data_handle(), acc,
              first_r);
    }
  });
}

// ---- batch-invariant products (gemm.h, BatchInvariantScope)

thread_local bool t_invariant = false;

// A plain operand B: [n, k] (nk) or [k, n] with row stride ldb, covering `rows` of C's columns.
struct PlainB {
  const void* data = nullptr;
  int64_t ldb = 0;
  bool nk = true;
  int64_t rows = 0;
};

// fp32 C (+)= A·B over k in chunks of kInvariantK and over the column ranges of `parts`; the
// residual `add` (C's shape and stride) enters with the first chunk.
template <class T>
void chunked_product(float* c, const T* a, const std::vector<PlainB>& parts, const GemmShape& s, const float* add,
                     bool bf) {
  int64_t n0 = 0;
  for (const PlainB& part : parts) {
    for (int64_t k0 = 0; k0 < s.k; k0 += kInvariantK) {
      const GemmShape cs{.m = s.m, .n = part.rows, .k = std::min(kInvariantK, s.k - k0), .lda = s.lda,
                         .ldb = part.ldb, .ldc = s.ldc, .b_is_nk = part.nk, .alpha = s.alpha,
                         .accumulate = k0 > 0 || s.accumulate};
      const T* b = static_cast<const T*>(part.data) + (part.nk ? k0 : k0 * part.ldb + n0);
      run_direct(c + n0, a + k0, b, cs, bf, false, {}, k0 == 0 && add ? add + n0 : nullptr);
    }
    n0 += part.rows;
  }
}

template <class T, class C>
void run_invariant(C* c, const T* a, const GemmShape& s, const float* add, const PlainB* plain,
                   const PackedWeights* packed, bool bf);

// The product of s.m rows as one of `rows` rows (s.m <= rows): the real rows copied into a
// buffer whose other rows are zero, the product run there, and the real rows of C copied back.
// The buffers are the calling thread's, reused (this runs for every row count that is not a
// whole number of buckets); run_invariant does not come back here for the padded product.
template <class T, class C>
void run_padded(C* c, const T* a, const GemmShape& s, const float* add, const PlainB* plain,
                const PackedWeights* packed, bool bf, int64_t rows) {
  thread_local Buffer<T> pa_buf;
  thread_local Buffer<C> pc_buf;
  thread_local Buffer<float> padd_buf;
  T* pa = sized(pa_buf, rows * s.k);
  C* pc = sized(pc_buf, rows * s.n);
  std::fill(pa + s.m * s.k, pa + rows * s.k, T{});
  for (int64_t i = 0; i < s.m; ++i) {
    std::copy(a + i * s.lda, a + i * s.lda + s.k, pa + i * s.k);
    if (s.accumulate) std::copy(c + i * s.ldc, c + i * s.ldc + s.n, pc + i * s.n);
  }
  float* padd = nullptr;
  if (add) {
    padd = sized(padd_buf, rows * s.n);
    std::fill(padd + s.m * s.n, padd + rows * s.n, 0.0f);
    for (int64_t i = 0; i < s.m; ++i) std::copy(add + i * s.ldc, add + i * s.ldc + s.n, padd + i * s.n);
  }
  GemmShape ps = s;
  ps.m = rows;
  ps.lda = s.k;
  ps.ldc = s.n;
  run_invariant(pc, pa, ps, padd, plain, packed, bf);
  for (int64_t i = 0; i < s.m; ++i) std::copy(pc + i * s.n, pc + (i + 1) * s.n, c + i * s.ldc);
}

// At the AVX2 level oneDNN's fp32 products (which then also carry the bf16 ones) sum a row in an
// order that depends on how many rows are beside it, whatever the reduction blocking (measured:
// thousands of a batch's logits differed). There every product runs as row tiles of exactly
// kTileRows rows (the last one padded): one shape, so one kernel and one order for every row
// wherever it sits. Costs the padding of the last tile, and a weight read per tile.
constexpr int64_t kTileRows = 16;
constexpr int64_t kRowBucket = 16;  // >= kInvariantRows
static_assert(kRowBucket >= kInvariantRows);
constexpr int64_t kPanelCols = 64;
bool tile_rows() { return isa_level() == Isa::kAvx2; }

// One row tile (s.m == kTileRows) at the AVX2 level: C in panels of kPanelCols columns (the last
// of each weight part narrower, by n alone), spread over the threads here so that each oneDNN
// call runs on one thread (oneDNN also splits a product's rows between threads, and a row's
// bits then depend on which half it falls in).
template <class T, class C>
void run_tile(C* c, const T* a, const GemmShape& s, const float* add, const PlainB* plain,
              const PackedWeights* packed, bool bf) {
  std::vector<PlainB> parts;
  if (plain) {
    parts.push_back(*plain);
  } else {
    for (const PlainRows& p : packed->plain()) parts.push_back({p.data, packed->k(), true, p.rows});
    if (parts.empty()) fail("batch-invariant product: this packed ", packed->n(), "x", packed->k(), " matrix keeps no plain rows");
  }
  struct Panel {
    const PlainB* part;
    int64_t col, first, cols;  // C's first column; the part's first row (column of C) and count
  };
  std::vector<Panel> panels;
  int64_t col = 0;
  for (const PlainB& part : parts) {
    for (int64_t p0 = 0; p0 < part.rows; p0 += kPanelCols) panels.push_back({&part, col + p0, p0, std::min(kPanelCols, part.rows - p0)});
    col += part.rows;
  }
  std::exception_ptr error;
  const auto np = static_cast<int64_t>(panels.size());
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < np; ++i) {
    try {
      const Panel& p = panels[i];
      GemmShape ps = s;
      ps.n = p.cols;
      ps.ldb = p.part->ldb;
      ps.b_is_nk = p.part->nk;
      const T* b = static_cast<const T*>(p.part->data) + (p.part->nk ? p.first * p.part->ldb : p.first);
      run_direct(c + p.col, a, b, ps, bf, false, {}, add ? add + p.col : nullptr);
    } catch (...) {
#pragma omp critical(illada_gemm_tile_error)
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
}

// C (+)= A·B (+ R) with each row computed in an order fixed by n and k alone: B is plain
// (`plain`) or packed (`packed`: its chunks when each is one block, else its PlainRows).
template <class T, class C>
void run_invariant(C* c, const T* a, const GemmShape& s, const float* add, const PlainB* plain,
                   const PackedWeights* packed, bool bf) {
  if (tile_rows() && s.m == kTileRows) {
    run_tile(c, a, s, add, plain, packed, bf);
    return;
  }
  if (tile_rows()) {
    for (int64_t r0 = 0; r0 < s.m; r0 += kTileRows) {
      GemmShape ts = s;
      ts.m = std::min(kTileRows, s.m - r0);
      C* tc = c + r0 * s.ldc;
      const T* ta = a + r0 * s.lda;
      const float* tadd = add ? add + r0 * s.ldc : nullptr;
      if (ts.m == kTileRows) {
        run_invariant(tc, ta, ts, tadd, plain, packed, bf);
      } else {
        run_padded(tc, ta, ts, tadd, plain, packed, bf, kTileRows);
      }
    }
    return;
  }
  // Row counts in buckets: the rows of a whole number of kRowBucket in place, the rest padded to
  // one more bucket. A row's bits do not depend on the row count here (from kInvariantRows up),
  // and a server's passes, whose row counts change with every mix of requests, then need one
  // primitive per bucket instead of one per count (each compiled on first use).
  if (s.m % kRowBucket != 0) {
    const int64_t whole = s.m / kRowBucket * kRowBucket;
    if (whole > 0) {
      GemmShape ws = s;
      ws.m = whole;
      run_invariant(c, a, ws, add, plain, packed, bf);
    }
    GemmShape rs = s;
    rs.m = s.m - whole;
    run_padded(c + whole * s.ldc, a + whole * s.lda, rs, add ? add + whole * s.ldc : nullptr, plain, packed, bf,
               kRowBucket);
    return;
  }
  if (packed && packed->impl().chunks[0].kc <= kInvariantK) {
    // every chunk one reduction block (k <= kInvariantK, or kChunks), summed in order
    run_packed_direct(c, reinterpret_cast<const bf16*>(a), *packed, s, add);
    return;
  }
  if (s.k <= kInvariantK) {  // one reduction block whatever the rows: oneDNN as usual
    run_direct(c, a, static_cast<const T*>(plain->data), s, bf, false, {}, add);
    return;
  }
  std::vector<PlainB> parts;
  if (plain) {
    parts.push_back(*plain);
  } else {
    for (const PlainRows& p : packed->plain()) parts.push_back({p.data, packed->k(), true, p.rows});
    if (parts.empty()) {
      fail("batch-invariant product: this packed ", packed->n(), "x", packed->k(),
           " matrix keeps no plain rows (k > ", kInvariantK, " is reduced in chunks over them)");
    }
  }
  sum_in_fp32(c, s, add, [&](float* acc, const GemmShape& fs, const float* r) { chunked_product(acc, a, parts, fs, r, bf); });
}

template <class T, class C = float>
void run(C* c, const T* a, const T* b, const GemmShape& s, bool bf, bool a_t = false, const GemmBatch& batch = {},
         const float* add = nullptr) {
  if (t_invariant && !a_t && batch.count == 1) {
    const PlainB plain{b, s.ldb, s.b_is_nk, s.n};
    run_invariant(c, a, s, add, &plain, static_cast<const PackedWeights*>(nullptr), bf);
    return;
  }
  run_direct(c, a, b, s, bf, a_t, batch, add);
}

template <class C>
void run_packed(C* c, const bf16* a, const PackedWeights& b, const GemmShape& s, const float* add) {
  if (t_invariant) {
    ILLADA_CHECK(s.n == b.n() && s.k == b.k() && s.b_is_nk, "packed gemm shape mismatch");
    if (!b.impl().plain.empty()) {  // no oneDNN bf16 products: the plain copy
      const PlainB plain{b.impl().plain.data(), s.k, true, s.n};
      run_invariant(c, a, s, add, &plain, static_cast<const PackedWeights*>(nullptr), true);
    } else {
      run_invariant(c, a, s, add, static_cast<const PlainB*>(nullptr), &b, true);
    }
    return;
  }
  run_packed_direct(c, a, b, s, add);
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
BatchInvariantScope::BatchInvariantScope(bool on) : saved_(t_invariant) { t_invariant = on; }
BatchInvariantScope::~BatchInvariantScope() { t_invariant = saved_; }
bool batch_invariant_products() { return t_invariant; }

int64_t gemm_primitives_created() {
  std::lock_guard<std::mutex> lock(g_mu);
  return g_created;
}

int64_t gemm_primitives_cached() {
  std::lock_guard<std::mutex> lock(g_mu);
  return static_cast<int64_t>(g_cache.size());
}

int64_t set_gemm_cache_limit(int64_t limit) {
  ILLADA_CHECK(limit >= 1, "gemm cache limit ", limit);
  std::lock_guard<std::mutex> lock(g_mu);
  const int64_t old = g_limit;
  g_limit = limit;
  evict_to(g_limit);
  return old;
}

}  // namespace illada

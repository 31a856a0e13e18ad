// Quantised products (kernels/qgemm.h) against oneDNN's bf16 product on packed weights (what
// the bf16 model runs), at the matrix shapes of a 1B-class model and of LLaDA-8B / Llama-3-8B
// (k, n in 2048 .. 14336) and T = 32 .. 512 activation rows, in the same run.
// Run: ./build/illada_bench --benchmark_filter='QGemm|Bf16Gemm'  (see docs/benchmarks.md)
// Names: QGemm/<type>/<kernel>/n<N>_k<K>/<T>, Bf16Gemm/n<N>_k<K>/<T>. GFLOP/s counts 2*T*N*K.
#include <benchmark/benchmark.h>

#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kernels/gemm.h"
#include "kernels/qgemm.h"
#include "kernels/quant.h"
#include "util/aligned.h"
#include "util/rng.h"

namespace illada {
namespace {

struct MatShape {
  int64_t n, k;
};

// 1B-class (d 2048, mlp 5632): attention and the MLP's three products; 8B-class (d 4096, mlp
// 12288 for LLaDA-8B, 14336 for Llama-3-8B-shaped models).
const MatShape kShapes[] = {{2048, 2048}, {5632, 2048},  {2048, 5632},  {4096, 4096},
                            {12288, 4096}, {4096, 12288}, {14336, 4096}, {4096, 14336}};
const int64_t kRows[] = {32, 64, 256, 512};

// Random blocks with sane scales: the speed of a product does not depend on the values, and
// quantising 60M values per matrix would dominate the benchmark's start-up.
std::vector<std::byte> random_matrix(GgmlType t, int64_t n, int64_t k) {
  const uint64_t bytes = ggml_row_bytes(t, k) * n;
  std::vector<std::byte> w(bytes);
  Rng rng(3, 4);
  for (uint64_t i = 0; i < bytes; i += 8) {
    const uint64_t v = rng.next_bits();
    std::memcpy(&w[i], &v, std::min<uint64_t>(8, bytes - i));
  }
  const uint32_t ts = ggml_traits(t).type_size;
  const uint16_t half = fp32_to_fp16(0.001f);
  for (uint64_t b = 0; b < bytes / ts; ++b) {
    const uint64_t at = b * ts + (t == GgmlType::Q6_K ? 208 : 0);
    std::memcpy(&w[at], &half, 2);
    if (t == GgmlType::Q4_K) std::memcpy(&w[at + 2], &half, 2);
  }
  return w;
}

const std::vector<std::byte>& cached_matrix(GgmlType t, int64_t n, int64_t k) {
  static std::map<std::tuple<int, int64_t, int64_t>, std::vector<std::byte>> cache;
  auto& w = cache[{static_cast<int>(t), n, k}];
  if (w.empty()) w = random_matrix(t, n, k);
  return w;
}

const PackedWeights& cached_packed(int64_t n, int64_t k) {
  static std::map<std::pair<int64_t, int64_t>, std::unique_ptr<PackedWeights>> cache;
  auto& p = cache[{n, k}];
  if (!p) {
    std::vector<bf16> w(n * k);
    Rng rng(5, 6);
    for (auto& v : w) v = to_bf16(static_cast<float>(rng.uniform() - 0.5) * 0.05f);
    p = std::make_unique<PackedWeights>(w.data(), n, k);
  }
  return *p;
}

Buffer<bf16> activations(int64_t t, int64_t k) {
  Buffer<bf16> x(t * k);
  Rng rng(7, 8);
  for (auto& v : x) v = to_bf16(static_cast<float>(rng.normal()));
  return x;
}

void set_rate(benchmark::State& state, int64_t t, int64_t n, int64_t k) {
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * t * n * k / 1e9, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_QGemm(benchmark::State& state, GgmlType type, QuantKernel kernel, MatShape s) {
  if (!qgemm_kernel_available(kernel)) {
    state.SkipWithError("kernel not available on this CPU");
    return;
  }
  const int64_t t = state.range(0);
  const std::vector<std::byte>& w = cached_matrix(type, s.n, s.k);
  const Buffer<bf16> x = activations(t, s.k);
  Buffer<float> y(t * s.n);
  const QuantMatrix m{type, w.data(), s.n, s.k};
  qgemm(y.data(), x.data(), m, t, {.kernel = kernel});  // warm-up: scratch buffers, page faults
  for (auto _ : state) {
    qgemm(y.data(), x.data(), m, t, {.kernel = kernel});
    benchmark::DoNotOptimize(y.data());
  }
  set_rate(state, t, s.n, s.k);
}

void BM_Bf16Gemm(benchmark::State& state, MatShape s) {
  const int64_t t = state.range(0);
  const PackedWeights& w = cached_packed(s.n, s.k);
  const Buffer<bf16> x = activations(t, s.k);
  Buffer<float> y(t * s.n);
  const GemmShape g = linear_shape(t, s.n, s.k);
  gemm(y.data(), x.data(), w, g);
  for (auto _ : state) {
    gemm(y.data(), x.data(), w, g);
    benchmark::DoNotOptimize(y.data());
  }
  set_rate(state, t, s.n, s.k);
}

const bool registered = [] {
  const GgmlType types[] = {GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_K, GgmlType::Q6_K};
  const QuantKernel kernels[] = {QuantKernel::kAmx, QuantKernel::kAvx512Vnni, QuantKernel::kAvxVnni,
                                 QuantKernel::kAvx2, QuantKernel::kScalar};
  for (const MatShape& s : kShapes) {
    // Strings appended piecewise: GCC 12 warns (-Wrestrict, a false positive) on + chains here.
    std::string shape = "n";
    shape.append(std::to_string(s.n)).append("_k").append(std::to_string(s.k));
    std::string bname = "Bf16Gemm/";
    bname.append(shape);
    auto* b = benchmark::RegisterBenchmark(bname.c_str(), BM_Bf16Gemm, s);
    for (int64_t t : kRows) b->Arg(t);
    b->Unit(benchmark::kMillisecond)->UseRealTime();
    for (GgmlType type : types) {
      for (QuantKernel kern : kernels) {
        std::string name = "QGemm/";
        name.append(ggml_type_name(type)).append("/").append(quant_kernel_name(kern));
        name.append("/").append(shape);
        auto* q = benchmark::RegisterBenchmark(name.c_str(), BM_QGemm, type, kern, s);
        for (int64_t t : kRows) q->Arg(t);
        q->Unit(benchmark::kMillisecond)->UseRealTime();
      }
    }
  }
  return true;
}();

}  // namespace
}  // namespace illada

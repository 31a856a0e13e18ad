// Quantised products (kernels/qgemm.h) against oneDNN's bf16 product on packed weights (what
// the bf16 model runs), at the matrix shapes of a 1B-class model and of LLaDA-8B / Llama-3-8B
// (k, n in 2048 .. 14336) and T = 32 .. 512 activation rows, in the same run.
// Run: bench/qgemm_table.sh (the filter, repetitions and the table of docs/benchmarks.md)
// Names: QGemm/<type>/<kernel>[_panels]/n<N>_k<K>/<T> (_panels: the kPanels16 layout),
// Bf16Gemm/n<N>_k<K>/<T>, F32Gemm/..., and *Cold/... with weights read from memory (below).
// GFLOP/s counts 2*T*N*K.
#include <benchmark/benchmark.h>

#include <algorithm>
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

const std::vector<std::byte>& cached_matrix(GgmlType t, int64_t n, int64_t k, QuantLayout layout) {
  static std::map<std::tuple<int, int64_t, int64_t, int>, std::vector<std::byte>> cache;
  auto& w = cache[{static_cast<int>(t), n, k, static_cast<int>(layout)}];
  if (w.empty()) {
    w = random_matrix(t, n, k);
    if (layout == QuantLayout::kPanels16) {
      std::vector<std::byte> packed(qgemm_packed_bytes(t, n, k));
      qgemm_pack(t, w.data(), n, k, packed.data());
      w.swap(packed);
    }
  }
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

void BM_QGemm(benchmark::State& state, GgmlType type, QuantKernel kernel, MatShape s, QuantLayout layout) {
  if (!qgemm_kernel_available(kernel)) {
    state.SkipWithError("kernel not available on this CPU");
    return;
  }
  const int64_t t = state.range(0);
  const std::vector<std::byte>& w = cached_matrix(type, s.n, s.k, layout);
  const Buffer<bf16> x = activations(t, s.k);
  Buffer<float> y(t * s.n);
  const QuantMatrix m{type, w.data(), s.n, s.k, layout};
  qgemm(y.data(), x.data(), m, t, {.kernel = kernel});  // warm-up: scratch buffers, page faults
  for (auto _ : state) {
    qgemm(y.data(), x.data(), m, t, {.kernel = kernel});
    benchmark::DoNotOptimize(y.data());
  }
  set_rate(state, t, s.n, s.k);
}

// oneDNN's fp32 product: the comparison on CPUs where oneDNN has no bf16 product (AVX2 only).
void BM_F32Gemm(benchmark::State& state, MatShape s) {
  const int64_t t = state.range(0);
  std::vector<float> w(s.n * s.k), x(t * s.k), y(t * s.n);
  Rng rng(9, 10);
  for (auto& v : w) v = static_cast<float>(rng.uniform() - 0.5) * 0.05f;
  for (auto& v : x) v = static_cast<float>(rng.normal());
  const GemmShape g = linear_shape(t, s.n, s.k);
  gemm(y.data(), x.data(), w.data(), g);
  for (auto _ : state) {
    gemm(y.data(), x.data(), w.data(), g);
    benchmark::DoNotOptimize(y.data());
  }
  set_rate(state, t, s.n, s.k);
}

// "Cold": copies of the weights, about 1 GB of them in bf16 (beyond the last-level cache), used
// in turn, so that each product reads its weights from memory as a model's forward pass does
// (a model's matrices are each read once per pass). Same number of copies for every type.
int cold_copies(MatShape s) {
  return static_cast<int>(std::max<int64_t>(2, (int64_t{1} << 30) / (2 * s.n * s.k) + 1));
}

void BM_Bf16GemmCold(benchmark::State& state, MatShape s) {
  const int64_t t = state.range(0);
  std::vector<bf16> w(s.n * s.k);
  Rng rng(5, 6);
  for (auto& v : w) v = to_bf16(static_cast<float>(rng.uniform() - 0.5) * 0.05f);
  std::vector<std::unique_ptr<PackedWeights>> copies;
  for (int i = 0; i < cold_copies(s); ++i) copies.push_back(std::make_unique<PackedWeights>(w.data(), s.n, s.k));
  const Buffer<bf16> x = activations(t, s.k);
  Buffer<float> y(t * s.n);
  const GemmShape g = linear_shape(t, s.n, s.k);
  size_t i = 0;
  for (const auto& c : copies) gemm(y.data(), x.data(), *c, g);
  for (auto _ : state) {
    gemm(y.data(), x.data(), *copies[i++ % copies.size()], g);
    benchmark::DoNotOptimize(y.data());
  }
  set_rate(state, t, s.n, s.k);
}

void BM_QGemmCold(benchmark::State& state, GgmlType type, QuantKernel kernel, MatShape s, QuantLayout layout) {
  if (!qgemm_kernel_available(kernel)) {
    state.SkipWithError("kernel not available on this CPU");
    return;
  }
  const int64_t t = state.range(0);
  const std::vector<std::byte>& w = cached_matrix(type, s.n, s.k, layout);
  std::vector<std::vector<std::byte>> copies(cold_copies(s), w);
  const Buffer<bf16> x = activations(t, s.k);
  Buffer<float> y(t * s.n);
  size_t i = 0;
  for (const auto& c : copies) qgemm(y.data(), x.data(), QuantMatrix{type, c.data(), s.n, s.k, layout}, t, {.kernel = kernel});
  for (auto _ : state) {
    const auto& c = copies[i++ % copies.size()];
    qgemm(y.data(), x.data(), QuantMatrix{type, c.data(), s.n, s.k, layout}, t, {.kernel = kernel});
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

double min_of(const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); }

// Registered shape by shape and row count, the bf16 product first, so that a run with
// --benchmark_enable_random_interleaving and repetitions compares neighbours measured under the
// same load; the "min" statistic is the least disturbed repetition. The scalar kernel only runs
// at the smallest shape (it is the fallback for CPUs without AVX2, about 100x slower).
const bool registered = [] {
  const GgmlType types[] = {GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_K, GgmlType::Q6_K};
  const QuantKernel kernels[] = {QuantKernel::kAmx, QuantKernel::kAvx512Vnni, QuantKernel::kAvxVnni,
                                 QuantKernel::kAvx2, QuantKernel::kScalar};
  for (const MatShape& s : kShapes) {
    // Strings appended piecewise: GCC 12 warns (-Wrestrict, a false positive) on + chains here.
    std::string shape = "n";
    shape.append(std::to_string(s.n)).append("_k").append(std::to_string(s.k));
    for (int64_t t : kRows) {
      std::string bname = "Bf16Gemm/";
      bname.append(shape);
      benchmark::RegisterBenchmark(bname.c_str(), BM_Bf16Gemm, s)
          ->Arg(t)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime()
          ->ComputeStatistics("min", min_of);
      for (GgmlType type : types) {
        for (QuantKernel kern : kernels) {
          if (kern == QuantKernel::kScalar && (s.n != 2048 || s.k != 2048 || t != 32)) continue;
          for (QuantLayout layout : {QuantLayout::kRows, QuantLayout::kPanels16}) {
            // Panels: only where it matters most (AMX reads q8_0 tiles in place).
            if (layout == QuantLayout::kPanels16 && kern != QuantKernel::kAmx) continue;
            std::string name = "QGemm/";
            name.append(ggml_type_name(type)).append("/").append(quant_kernel_name(kern));
            if (layout == QuantLayout::kPanels16) name.append("_panels");
            name.append("/").append(shape);
            benchmark::RegisterBenchmark(name.c_str(), BM_QGemm, type, kern, s, layout)
                ->Arg(t)
                ->Unit(benchmark::kMillisecond)
                ->UseRealTime()
                ->ComputeStatistics("min", min_of);
          }
        }
      }
      if (s.n <= 5632 && s.k <= 5632) {
        std::string fname = "F32Gemm/";
        fname.append(shape);
        benchmark::RegisterBenchmark(fname.c_str(), BM_F32Gemm, s)
            ->Arg(t)
            ->Unit(benchmark::kMillisecond)
            ->UseRealTime()
            ->ComputeStatistics("min", min_of);
      }
    }
  }
  // Cold weights at the 1B MLP shape and LLaDA-8B's, for the auto kernel of each type.
  for (const MatShape& s : {MatShape{5632, 2048}, MatShape{12288, 4096}}) {
    std::string shape = "n";
    shape.append(std::to_string(s.n)).append("_k").append(std::to_string(s.k));
    for (int64_t t : kRows) {
      std::string bname = "Bf16GemmCold/";
      bname.append(shape);
      benchmark::RegisterBenchmark(bname.c_str(), BM_Bf16GemmCold, s)
          ->Arg(t)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime()
          ->ComputeStatistics("min", min_of);
      for (GgmlType type : types) {
        for (QuantLayout layout : {QuantLayout::kRows, QuantLayout::kPanels16}) {
          std::string name = "QGemmCold/";
          name.append(ggml_type_name(type)).append(layout == QuantLayout::kRows ? "/auto/" : "/auto_panels/");
          name.append(shape);
          benchmark::RegisterBenchmark(name.c_str(), BM_QGemmCold, type, QuantKernel::kAuto, s, layout)
              ->Arg(t)
              ->Unit(benchmark::kMillisecond)
              ->UseRealTime()
              ->ComputeStatistics("min", min_of);
        }
      }
    }
  }
  return true;
}();

}  // namespace
}  // namespace illada

// Forward-pass throughput (tokens/s, achieved TFLOP/s) on random weights at 512 tokens, next
// to oneDNN's own GEMM rate for the model's largest matrix product, measured in one run.
// Run: ./build/illada_bench --benchmark_filter=Forward  (see docs/benchmarks.md)
#include <benchmark/benchmark.h>

#include <algorithm>
#include <map>
#include <memory>
#include <vector>

#include "bench/bench_util.h"
#include "kernels/gemm.h"
#include "model/transformer.h"
#include "util/aligned.h"
#include "util/rng.h"

namespace illada {
namespace {

// Multiply-adds of one forward over one sequence of t tokens, times two.
double forward_flops(const ModelConfig& c, int64_t t) {
  const double hd = static_cast<double>(c.head_dim());
  const double per_layer = c.d_model * hd * (2.0 * c.n_heads + 2.0 * c.n_kv_heads) +
                           3.0 * c.d_model * c.mlp_hidden_size;
  const double matmul = c.n_layers * per_layer + static_cast<double>(c.embedding_size) * c.d_model;
  const double attention = c.n_layers * 4.0 * static_cast<double>(t) * t * c.n_heads * hd;
  return 2.0 * t * matmul + attention;
}

const Model& cached_model(const std::string& name, ComputeType dt) {
  static std::map<std::pair<std::string, int>, std::unique_ptr<Model>> models;
  auto& m = models[{name, static_cast<int>(dt)}];
  if (!m) {
    const ModelConfig c = bench_config(name);
    ModelWeights w = init_weights(c, dt, 7);
    pack_matrices(w);  // as Model::load does
    m = std::make_unique<Model>(c, std::move(w));
  }
  return *m;
}

void BM_Forward(benchmark::State& state, std::string name, ComputeType dt) {
  const Model& m = cached_model(name, dt);
  const int64_t t = state.range(0);
  std::vector<int32_t> ids(t);
  Rng rng(1, 2);
  for (auto& id : ids) id = static_cast<int32_t>(rng.below(m.config().vocab_size));
  ForwardState st;
  std::vector<float> logits(t * m.config().embedding_size);
  m.forward({.ids = ids}, st, logits);  // warm-up: primitive creation, page faults
  for (auto _ : state) {
    m.forward({.ids = ids}, st, logits);
    benchmark::DoNotOptimize(logits.data());
  }
  state.counters["tokens/s"] = benchmark::Counter(static_cast<double>(t), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["TFLOP/s"] = benchmark::Counter(forward_flops(m.config(), t) / 1e12,
                                                 benchmark::Counter::kIsIterationInvariantRate);
}

// The model's largest matrix product at the same token count: the head [t, vocab, d].
void BM_LargestGemm(benchmark::State& state, std::string name, ComputeType dt) {
  const ModelConfig c = bench_config(name);
  const int64_t t = state.range(0), n = c.embedding_size, k = c.d_model;
  std::vector<float> a(t * k, 0.5f), b(n * k, 0.25f), out(t * n);
  std::vector<bf16> a16(a.size(), to_bf16(0.5f)), b16(b.size(), to_bf16(0.25f));
  const GemmShape s = linear_shape(t, n, k);
  for (auto _ : state) {
    if (dt == ComputeType::kF32) {
      gemm(out.data(), a.data(), b.data(), s);
    } else {
      gemm(out.data(), a16.data(), b16.data(), s);
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["TFLOP/s"] = benchmark::Counter(2.0 * t * n * k / 1e12,
                                                 benchmark::Counter::kIsIterationInvariantRate);
}

// One forward of the reference sampler's shape: 64 prompt + 256 canvas tokens, logits for the
// 32 rows of the current block (what generate() asks for at every step).
void BM_GenerateForward(benchmark::State& state, std::string name, ComputeType dt) {
  const Model& m = cached_model(name, dt);
  const int64_t t = 320, block = 32, first = 64;
  std::vector<int32_t> ids(t), rows(block);
  Rng rng(1, 2);
  for (auto& id : ids) id = static_cast<int32_t>(rng.below(m.config().vocab_size));
  for (int64_t i = 0; i < block; ++i) rows[i] = static_cast<int32_t>(first + i);
  ForwardState st;
  std::vector<float> logits(block * m.config().embedding_size);
  m.forward({.ids = ids, .logit_rows = rows}, st, logits);
  for (auto _ : state) {
    m.forward({.ids = ids, .logit_rows = rows}, st, logits);
    benchmark::DoNotOptimize(logits.data());
  }
  state.counters["forwards/s"] = benchmark::Counter(1.0, benchmark::Counter::kIsIterationInvariantRate);
}

// Packed bf16 product [m, n, k]: the per-layer shapes of a generation step, separately and
// with fused outputs (q|k|v, gate|up). Fusing buys nothing at 320 rows (1536 columns take
// 3x the time of 512, 2816 twice that of 1408), so the projections stay separate. The fourth
// argument shifts the activations and the output by that many bytes from a cache line: 16 is
// where a large std::vector starts, 0 is the engine's Buffer (util/aligned.h). With 1B-class
// weights streamed from memory both run near 1 TFLOP/s (the aligned one 4-9% faster); with
// one weight reused from cache the aligned product was 2x faster on those shapes.
void BM_PackedGemm(benchmark::State& state) {
  const int64_t m = state.range(0), n = state.range(1), k = state.range(2);
  const int64_t shift = state.range(3);
  Buffer<uint8_t> a_bytes(m * k * sizeof(bf16) + 64), out_bytes(m * n * sizeof(float) + 64);
  auto* a = reinterpret_cast<bf16*>(a_bytes.data() + shift);
  auto* out = reinterpret_cast<float*>(out_bytes.data() + shift);
  std::fill(a, a + m * k, to_bf16(0.5f));
  std::vector<bf16> b(n * k, to_bf16(0.25f));
  // Distinct weights in turn, so that they come from L3 or memory as in a forward (not a hot L2).
  std::vector<std::unique_ptr<PackedWeights>> pw;
  for (int i = 0; i < 16; ++i) pw.push_back(std::make_unique<PackedWeights>(b.data(), n, k));
  const GemmShape s = linear_shape(m, n, k);
  size_t i = 0;
  for (auto _ : state) {
    gemm(out, a, *pw[i++ % pw.size()], s);
    benchmark::DoNotOptimize(out);
  }
  state.counters["TFLOP/s"] = benchmark::Counter(2.0 * m * n * k / 1e12,
                                                 benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_PackedGemm)
    ->Args({320, 512, 512, 0})->Args({320, 1536, 512, 0})->Args({320, 1408, 512, 0})
    ->Args({320, 2816, 512, 0})->Args({320, 512, 1408, 0})->Args({32, 4096, 512, 0})
    ->Args({320, 5632, 2048, 0})->Args({320, 5632, 2048, 16})
    ->Args({320, 2048, 5632, 0})->Args({320, 2048, 5632, 16})
    ->Unit(benchmark::kMicrosecond)->UseRealTime();

int register_all() {
  for (const std::string name : {"small", "1b"}) {
    benchmark::RegisterBenchmark(("GenerateForward/" + name + "/bf16").c_str(), BM_GenerateForward,
                                 name, ComputeType::kBF16)
        ->Unit(benchmark::kMillisecond)->UseRealTime()->MeasureProcessCPUTime()->MinTime(2.0);
  }
  for (const std::string name : {"small", "1b"}) {
    for (ComputeType dt : {ComputeType::kF32, ComputeType::kBF16}) {
      const std::string suffix = name + "/" + compute_type_name(dt);
      benchmark::RegisterBenchmark(("Forward/" + suffix).c_str(), BM_Forward, name, dt)
          ->Arg(512)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2.0);
      benchmark::RegisterBenchmark(("LargestGemm/" + suffix).c_str(), BM_LargestGemm, name, dt)
          ->Arg(512)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(1.0);
    }
  }
  return 0;
}
const int registered = register_all();

}  // namespace
}  // namespace illada



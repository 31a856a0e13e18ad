// Training throughput: tokens/s of a full masked-diffusion step (mask, forward, backward,
// AdamW, bf16 refresh) on random weights, achieved TFLOP/s and model FLOP utilisation against
// oneDNN's bf16 (or fp32) GEMM rate measured in the same run on the model's MLP product.
// Run: OMP_NUM_THREADS=2 OMP_WAIT_POLICY=passive ./build/illada_bench --benchmark_filter=TrainStep
// PyTorch on the same model and batch: tools/reference/bench_train.py (see its docstring).
#include <benchmark/benchmark.h>

#include <chrono>
#include <memory>
#include <vector>

#include "bench/bench_util.h"
#include "kernels/gemm.h"
#include "model/weights.h"
#include "train/trainer.h"
#include "util/rng.h"

namespace illada {
namespace {

// FLOPs of one training step: 3x the forward's matmuls (forward, input and weight gradients)
// over T tokens, the head over the M scored rows only, attention 3x (plus its recomputed
// scores: 4 products forward-equivalent counted as 3.5x the forward's two).
double step_flops(const ModelConfig& c, const std::vector<int32_t>& cu, int64_t targets) {
  const double hd = static_cast<double>(c.head_dim());
  const double per_layer = c.d_model * hd * (2.0 * c.n_heads + 2.0 * c.n_kv_heads) +
                           3.0 * c.d_model * c.mlp_hidden_size;
  const double t = cu.back();
  double attn = 0.0;
  for (size_t s = 0; s + 1 < cu.size(); ++s) {
    const double len = cu[s + 1] - cu[s];
    attn += 4.0 * len * len * c.n_heads * hd;  // QK^T and PV of the forward
  }
  return 3.0 * (2.0 * t * c.n_layers * per_layer + 2.0 * targets * c.embedding_size * c.d_model +
                c.n_layers * attn);
}

double gemm_tflops(const ModelConfig& c, int64_t t, bool bf) {
  const int64_t n = c.mlp_hidden_size, k = c.d_model;
  std::vector<float> a(t * k, 0.5f), b(n * k, 0.25f), out(t * n);
  std::vector<bf16> a16(a.size(), to_bf16(0.5f)), b16(b.size(), to_bf16(0.25f));
  const GemmShape s = linear_shape(t, n, k);
  auto run = [&] {
    if (bf) {
      gemm(out.data(), a16.data(), b16.data(), s);
    } else {
      gemm(out.data(), a.data(), b.data(), s);
    }
  };
  run();
  const auto t0 = std::chrono::steady_clock::now();
  int iters = 0;
  double el = 0.0;
  do {
    run();
    ++iters;
    el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  } while (el < 1.0);
  return 2.0 * t * n * k * iters / el / 1e12;
}

// state.range(0): tokens per step, packed as documents of state.range(1) tokens.
void BM_TrainStep(benchmark::State& state, std::string name, ComputeType dt) {
  const ModelConfig c = bench_config(name);
  const int64_t t = state.range(0), doc = state.range(1);
  train::Trainer tr(c, init_weights(c, ComputeType::kF32, 7), {.compute = dt, .seed = 1});
  std::vector<int32_t> ids(t), cu = {0};
  Rng rng(1, 2);
  for (auto& id : ids) id = static_cast<int32_t>(4 + rng.below(c.vocab_size - 4));
  while (cu.back() < t) cu.push_back(static_cast<int32_t>(std::min<int64_t>(t, cu.back() + doc)));
  const train::PackedBatch batch{.ids = ids, .cu_seqlens = cu};
  tr.train_step(batch, 1e-4);  // warm-up: primitive creation, first-touch of buffers
  double flops = 0.0;
  for (auto _ : state) flops += step_flops(c, cu, tr.train_step(batch, 1e-4).targets);
  const double gemm_rate = gemm_tflops(c, t, dt == ComputeType::kBF16);
  state.counters["tokens/s"] = benchmark::Counter(static_cast<double>(t),
                                                  benchmark::Counter::kIsIterationInvariantRate);
  state.counters["TFLOP/s"] = benchmark::Counter(flops / 1e12, benchmark::Counter::kIsRate);
  state.counters["gemm_TFLOP/s"] = gemm_rate;
  state.counters["params_M"] = static_cast<double>(tr.model().layout().total) / 1e6;
  // MFU needs the elapsed time: kIsRate counters are divided by it after the run, so store the
  // ratio's numerator as a rate too.
  state.counters["MFU"] =
      benchmark::Counter(flops / 1e12 / gemm_rate, benchmark::Counter::kIsRate);
}

int register_train() {
  for (ComputeType dt : {ComputeType::kBF16, ComputeType::kF32}) {
    const std::string sfx = std::string("/") + compute_type_name(dt);
    benchmark::RegisterBenchmark(("TrainStep/small" + sfx).c_str(), BM_TrainStep, "small", dt)
        ->Args({2048, 512})->Unit(benchmark::kMillisecond)->UseRealTime()->MeasureProcessCPUTime()
        ->MinTime(3.0);
  }
  // 300M: one warm-up and one timed step of 2048 tokens (about 7.5 TFLOP of work each), so
  // the case finishes in a minute or two even on two shared cores; MinTime would repeat it.
  benchmark::RegisterBenchmark("TrainStep/300m/bf16", BM_TrainStep, "300m", ComputeType::kBF16)
      ->Args({2048, 1024})->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);
  return 0;
}
const int train_registered = register_train();

}  // namespace
}  // namespace illada

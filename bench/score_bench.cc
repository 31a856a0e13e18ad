// Multiple-choice scoring throughput (choices scored per second) for both rules on the small
// config of docs/benchmarks.md: prompt 64 tokens, 4 choices of 8 tokens each.
#include <benchmark/benchmark.h>

#include "bench/bench_util.h"
#include "score/score.h"
#include "util/rng.h"

namespace illada {
namespace {

const Model& small_model() {
  static const Model m = [] {
    const ModelConfig c = bench_config("small");
    ModelWeights w = init_weights(c, ComputeType::kBF16, 11);
    pack_matrices(w);  // as Model::load does
    return Model(c, std::move(w));
  }();
  return m;
}

std::vector<int32_t> random_ids(int64_t n, uint64_t stream) {
  Rng rng(9, stream);
  std::vector<int32_t> v(n);
  for (auto& x : v) x = static_cast<int32_t>(10 + rng.below(4000));
  return v;
}

void BM_ScoreConfidence(benchmark::State& state) {
  const auto prompt = random_ids(64, 0);
  std::vector<std::vector<int32_t>> choices;
  for (int c = 0; c < 4; ++c) choices.push_back(random_ids(8, 1 + c));
  for (auto _ : state) benchmark::DoNotOptimize(confidence_scores(small_model(), prompt, choices));
  state.counters["choices/s"] = benchmark::Counter(4, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_ScoreLikelihood(benchmark::State& state) {
  const auto prompt = random_ids(64, 0);
  std::vector<std::vector<int32_t>> choices;
  for (int c = 0; c < 4; ++c) choices.push_back(random_ids(8, 1 + c));
  const LikelihoodOptions o{.mc_num = state.range(0), .batch_size = 16};
  for (auto _ : state) {
    for (const auto& ch : choices) benchmark::DoNotOptimize(log_likelihood(small_model(), prompt, ch, o));
  }
  state.counters["choices/s"] = benchmark::Counter(4, benchmark::Counter::kIsIterationInvariantRate);
}

BENCHMARK(BM_ScoreConfidence)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_ScoreLikelihood)->Arg(16)->Arg(128)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace illada

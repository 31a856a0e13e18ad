// End-to-end forward on block-quantised weights next to bf16, in the same run: the reference
// sampler's step (64 prompt + 256 canvas tokens, logits for the 32 rows of the current block,
// as BM_GenerateForward) with bf16 compute on random weights of the 1B-class config, every
// matrix and the tied head/embedding in one ggml type and kept as blocks, as Model::load keeps
// a GGUF file's (model/block.cc multiplies them with kernels/qgemm.h). Run (docs/benchmarks.md):
//   ./build/illada_bench --benchmark_filter='QuantForward/1b' --benchmark_repetitions=3
//     --benchmark_enable_random_interleaving=true --benchmark_report_aggregates_only=true
//   (one command line)
#include <benchmark/benchmark.h>

#include <algorithm>
#include <map>
#include <memory>
#include <vector>

#include "bench/bench_util.h"
#include "kernels/qgemm.h"
#include "kernels/quant.h"
#include "model/transformer.h"
#include "util/bf16.h"
#include "util/rng.h"

namespace illada {
namespace {

// The bf16 weights every model of `name` derives from (unpacked), built once.
const ModelWeights& base_weights(const std::string& name) {
  static std::map<std::string, ModelWeights> cache;
  auto it = cache.find(name);
  if (it == cache.end()) it = cache.emplace(name, init_weights(bench_config(name), ComputeType::kBF16, 7)).first;
  return it->second;
}

// Every matrix of `base` quantised to t (rows in parallel), norms shared.
ModelWeights quantised(const ModelWeights& base, GgmlType t) {
  ModelWeights w = base;  // views and owners of the bf16 buffers (norms, and nothing else used)
  auto quant = [&](Matrix& m) {
    // Rows that are not whole super-blocks take llama.cpp's fallback (q4_K -> q5_0, q6_K -> q8_0).
    const GgmlType t_m = m.cols % static_cast<int64_t>(ggml_traits(t).block_size) == 0 ? t
                         : t == GgmlType::Q4_K                                       ? GgmlType::Q5_0
                                                                                     : GgmlType::Q8_0;
    const uint64_t rb = ggml_row_bytes(t_m, m.cols);
    auto buf = std::make_shared<std::vector<std::byte>>(rb * m.rows);
    const bf16* src = m.b16();
    const int64_t cols = m.cols;
#pragma omp parallel
    {
      std::vector<float> row(static_cast<size_t>(cols));
#pragma omp for schedule(static)
      for (int64_t r = 0; r < m.rows; ++r) {
        to_float(row.data(), src + r * cols, cols);
        quantize_rows(t_m, row.data(), buf->data() + r * rb, 1, cols);
      }
    }
    m.data = buf->data();
    m.quant = t_m;
    m.packed = nullptr;
    w.storage.push_back(buf);
  };
  const bool tied = base.head.data == base.wte.data;
  quant(w.wte);
  if (tied) {
    w.head = w.wte;
  } else {
    quant(w.head);
  }
  for (LayerWeights& l : w.layers) {
    for (LayerTensor lt : kLayerTensors) {
      if (lt != LayerTensor::kAttnNorm && lt != LayerTensor::kFfNorm) quant(l.matrix(lt));
    }
  }
  return w;
}

// GgmlType::F32 here means the bf16 model, packed as Model::load packs it.
const Model& cached_model(const std::string& name, GgmlType t) {
  static std::map<std::pair<std::string, int>, std::unique_ptr<Model>> models;
  auto& m = models[{name, static_cast<int>(t)}];
  if (!m) {
    ModelWeights w = t == GgmlType::F32 ? base_weights(name) : quantised(base_weights(name), t);
    pack_matrices(w);
    m = std::make_unique<Model>(bench_config(name), std::move(w));
  }
  return *m;
}

void BM_QuantForward(benchmark::State& state, std::string name, GgmlType t) {
  const Model& m = cached_model(name, t);
  const int64_t n = 320, block = 32, first = 64;
  std::vector<int32_t> ids(n), rows(block);
  Rng rng(1, 2);
  for (auto& id : ids) id = static_cast<int32_t>(rng.below(m.config().vocab_size));
  for (int64_t i = 0; i < block; ++i) rows[i] = static_cast<int32_t>(first + i);
  ForwardState st;
  std::vector<float> logits(block * m.config().embedding_size);
  m.forward({.ids = ids, .logit_rows = rows}, st, logits);  // warm-up
  for (auto _ : state) {
    m.forward({.ids = ids, .logit_rows = rows}, st, logits);
    benchmark::DoNotOptimize(logits.data());
  }
  state.counters["forwards/s"] = benchmark::Counter(1.0, benchmark::Counter::kIsIterationInvariantRate);
}

double min_of(const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); }

const bool registered = [] {
  for (const std::string name : {"small", "1b"}) {
    for (GgmlType t : {GgmlType::F32, GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_K, GgmlType::Q6_K}) {
      const std::string type = t == GgmlType::F32 ? std::string("bf16") : std::string(ggml_type_name(t));
      benchmark::RegisterBenchmark(("QuantForward/" + name + "/" + type).c_str(), BM_QuantForward, name, t)
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime()
          ->MinTime(1.0)
          ->ComputeStatistics("min", min_of);
    }
  }
  return true;
}();

}  // namespace
}  // namespace illada

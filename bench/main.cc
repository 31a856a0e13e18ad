// Entry point of illada_bench: every bench/*.cc registers its benchmarks.
#include <benchmark/benchmark.h>

BENCHMARK_MAIN();

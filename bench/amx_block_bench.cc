// Why q8_0 cannot pass bf16 on AMX (docs/benchmarks.md, "Where the AMX-int8 kernel's time goes"):
// the parts of one q8_0 block product, 16 outputs x 16 rows x 32 values, timed alone and
// together on one core, next to a bf16 tile product of the same size.
//   AmxBlock/tiles         load A and B tiles, zero C, int8 multiply, store C (4 C tiles rotating)
//   AmxBlock/rescale       the AVX-512 rescaling of a stored C tile: 16 x (convert, scale, add)
//   AmxBlock/both          what the q8_0 kernel does: tiles, then the rescaling of what they stored
//   AmxBlock/both_apart    tiles, and the rescaling of a buffer they never write (no dependency)
//   AmxBlock/bf16          2x2 bf16 tiles accumulating over k (no store, nothing to rescale)
// Reported: ns per 16x16x32 block (real time / blocks). If `both_apart` takes about `tiles` +
// `rescale`, the two do not overlap, and their sum bounds the q8_0 product from below.
// Run: OMP_NUM_THREADS=1 build/illada_bench --benchmark_filter=AmxBlock --benchmark_repetitions=5
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "util/isa.h"

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#include <immintrin.h>

namespace illada::amx {  // AMX code lives in namespaces named amx (tests/cli/portable_binary.sh)
namespace {

// GCC 12 reports its own _mm512_undefined_* (self-initialised variables) as uninitialised once
// inlined: a false positive.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,amx-tile,amx-int8,amx-bf16")

struct alignas(64) TileConfig {
  uint8_t palette_id, start_row, reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};

constexpr int kBlocks = 32;  // blocks per pass (k = 1024 of q8_0)

struct Data {
  std::vector<int8_t> a = std::vector<int8_t>(kBlocks * 512 + 4096, 1);  // weights: 16 x 32 per block
  std::vector<int8_t> b = std::vector<int8_t>(16 * kBlocks * 512, 1);    // activations, 16 passes
  std::vector<float> scales = std::vector<float>(kBlocks * 16, 1e-3f);
  alignas(64) int32_t c[8][256] = {};
};

void configure(bool bf16) {
  TileConfig cfg;
  std::memset(&cfg, 0, sizeof cfg);
  cfg.palette_id = 1;
  for (int i = 0; i < 8; ++i) {
    cfg.rows[i] = 16;
    cfg.colsb[i] = 64;
  }
  if (!bf16) {  // A: 16 x 32 bytes; B: 8 lines of 64 bytes
    for (int i = 4; i < 6; ++i) cfg.colsb[i] = 32;
    for (int i = 6; i < 8; ++i) cfg.rows[i] = 8;
  }
  // GCC 12 may drop the stores above as dead (it does not see ldtilecfg read all 64 bytes):
  // make the struct escape first.
  asm volatile("" : : "r"(&cfg) : "memory");
  _tile_loadconfig(&cfg);
}

// acc[n] += (dx * dw[n]) * float(c[n]): the q8_0 kernel's rescaling of one block.
__attribute__((always_inline)) inline void rescale(const int32_t* c, const float* dw, __m512 (&acc)[16]) {
  const __m512 dx = _mm512_set1_ps(1e-3f);
  for (int n = 0; n < 16; ++n) {
    const __m512 s = _mm512_mul_ps(dx, _mm512_set1_ps(dw[n]));
    acc[n] = _mm512_fmadd_ps(s, _mm512_cvtepi32_ps(_mm512_load_si512(c + 16 * n)), acc[n]);
  }
}

#define ILLADA_ISSUE(ct, at, bt, j)                         \
  _tile_loadd(at, d.a.data() + (j) * 512, 32);              \
  _tile_loadd(bt, b + (j) * 512, 64);                       \
  _tile_zero(ct);                                           \
  _tile_dpbssd(ct, at, bt);

// mode 0: tiles; 1: rescale; 2: both; 3: both, the rescaling of other buffers.
float run_pass(Data& d, int pass, int mode) {
  const int8_t* b = d.b.data() + (pass % 16) * kBlocks * 512;
  __m512 acc[16];
  for (int n = 0; n < 16; ++n) acc[n] = _mm512_setzero_ps();
  for (int j = 0; j < kBlocks; j += 4) {
    for (int t = 0; t < 4; ++t) {
      if (mode != 1) {
        switch (t) {  // tile numbers must be constants
          case 0: ILLADA_ISSUE(0, 4, 6, j) _tile_stored(0, d.c[0], 64); break;
          case 1: ILLADA_ISSUE(1, 5, 7, j + 1) _tile_stored(1, d.c[1], 64); break;
          case 2: ILLADA_ISSUE(2, 4, 6, j + 2) _tile_stored(2, d.c[2], 64); break;
          default: ILLADA_ISSUE(3, 5, 7, j + 3) _tile_stored(3, d.c[3], 64); break;
        }
      }
      if (mode != 0) rescale(d.c[mode == 3 ? 4 + t : t], d.scales.data() + (j + t) * 16, acc);
    }
  }
  float sum = 0;
  for (int n = 0; n < 16; ++n) sum += _mm512_reduce_add_ps(acc[n]);
  return sum;
}

void run_bf16(Data& d, int pass) {
  const int8_t* b = d.b.data() + (pass % 16) * kBlocks * 512;
  for (int j = 0; j < kBlocks / 2; ++j) {  // 4 products of 16x16x32 per step: 2 blocks' worth each
    _tile_loadd(4, d.a.data() + (j % 8) * 2048, 64);
    _tile_loadd(5, d.a.data() + (j % 8) * 2048 + 1024, 64);
    _tile_loadd(6, b + j * 2048, 64);
    _tile_loadd(7, b + j * 2048 + 1024, 64);
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
}

void release_tiles() { _tile_release(); }

#undef ILLADA_ISSUE
#pragma GCC pop_options

void BM_AmxBlock(benchmark::State& state, int mode) {
  const CpuFeatures& f = cpu_features();
  if (!(f.amx_tile && f.amx_int8 && f.amx_bf16 && f.avx512f)) {
    state.SkipWithError("this CPU (or OS) has no usable AMX: nothing to measure");
    return;
  }
  Data d;
  configure(mode == 4);
  int pass = 0;
  float sink = 0;
  for (auto _ : state) {
    if (mode == 4) {
      run_bf16(d, pass++);
    } else {
      sink += run_pass(d, pass++, mode);
    }
  }
  release_tiles();
  benchmark::DoNotOptimize(sink);
  // bf16: kBlocks / 2 steps of four 16x16x32 products = 2 * kBlocks blocks per pass.
  state.counters["blocks"] = benchmark::Counter(static_cast<double>(state.iterations()) * (mode == 4 ? 2 : 1) * kBlocks,
                                                benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

BENCHMARK_CAPTURE(BM_AmxBlock, tiles, 0)->UseRealTime();
BENCHMARK_CAPTURE(BM_AmxBlock, rescale, 1)->UseRealTime();
BENCHMARK_CAPTURE(BM_AmxBlock, both, 2)->UseRealTime();
BENCHMARK_CAPTURE(BM_AmxBlock, both_apart, 3)->UseRealTime();
BENCHMARK_CAPTURE(BM_AmxBlock, bf16, 4)->UseRealTime();

}  // namespace
}  // namespace illada::amx
#endif

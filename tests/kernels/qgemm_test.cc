// Tests of the quantised products (kernels/qgemm.h): every kernel this CPU can run gives the
// scalar twin's bits (tests/kernels/qgemm_reference.h) for every format, on weights from the
// quantiser and on random blocks that reach every integer; accuracy against fp32 on the
// dequantised weights; bf16 input, accumulation, strides, thread counts, NaN, bad calls.
#include "kernels/qgemm.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "../test_util.h"
#include "kernels/cpu/qgemm_impl.h"
#include "kernels/quant.h"
#include "qgemm_reference.h"
#include "util/check.h"
#include "util/isa.h"
#include "util/rng.h"

namespace illada {
namespace {

const GgmlType kTypes[] = {GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q5_0, GgmlType::Q4_K, GgmlType::Q6_K};
const QuantKernel kKernels[] = {QuantKernel::kScalar, QuantKernel::kAvx2, QuantKernel::kAvxVnni,
                                QuantKernel::kAvx512Vnni, QuantKernel::kAmx};

std::vector<QuantKernel> available_kernels() {
  std::vector<QuantKernel> ks;
  for (QuantKernel k : kKernels) {
    if (qgemm_kernel_available(k)) ks.push_back(k);
  }
  return ks;
}

std::vector<std::byte> quantize(GgmlType t, const std::vector<float>& w, int64_t n, int64_t k) {
  std::vector<std::byte> out(ggml_row_bytes(t, k) * n);
  quantize_rows(t, w.data(), out.data(), n, k);
  return out;
}

// Blocks of random bytes, every integer field reachable (q8_0's -128, q6_K's full range, every
// 6-bit q4_K scale and min), with finite scales of moderate size.
std::vector<std::byte> random_blocks(GgmlType t, int64_t n, int64_t k, uint64_t seed) {
  const uint64_t bytes = ggml_row_bytes(t, k) * n;
  std::vector<std::byte> out(bytes);
  Rng rng(seed, 77);
  for (auto& b : out) b = static_cast<std::byte>(rng.below(256));
  const uint32_t ts = ggml_traits(t).type_size;
  auto put_half = [&](uint64_t at, float v) {
    const uint16_t h = float_to_half(v);
    std::memcpy(&out[at], &h, 2);
  };
  for (uint64_t b = 0; b < bytes / ts; ++b) {
    const uint64_t at = b * ts;
    const float scale = static_cast<float>(rng.uniform() * 0.02 - 0.01);
    switch (t) {
      case GgmlType::Q8_0:
      case GgmlType::Q4_0:
      case GgmlType::Q5_0: put_half(at, scale); break;
      case GgmlType::Q4_K:
        put_half(at, std::fabs(scale) / 8);
        put_half(at + 2, std::fabs(scale) / 16);
        break;
      case GgmlType::Q6_K: put_half(at + 208, scale / 32); break;
      default: break;
    }
  }
  return out;
}

std::vector<float> run(GgmlType type, const std::vector<std::byte>& w, int64_t n, int64_t k,
                       const std::vector<float>& x, int64_t t, QuantKernel kernel) {
  std::vector<float> y(t * n, -1.0f);
  qgemm(y.data(), x.data(), QuantMatrix{type, w.data(), n, k}, t, {.kernel = kernel});
  return y;
}

int64_t count_differences(const std::vector<float>& a, const std::vector<float>& b) {
  int64_t diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff += std::memcmp(&a[i], &b[i], 4) != 0;
  return diff;
}

struct Shape {
  int64_t t, n, k;
};

// Shapes that cross every edge: rows below one group, not a multiple of 16, more than one task
// of rows (256); outputs not a multiple of 16; k over several chunks of 1024 with a partial one.
std::vector<Shape> shapes_for(GgmlType type) {
  if (ggml_traits(type).block_size == 32) {
    return {{1, 16, 32}, {5, 37, 96}, {16, 80, 1024 + 160}, {33, 48, 2048}, {300, 20, 64}};
  }
  return {{1, 16, 256}, {5, 37, 512}, {16, 80, 1024 + 256}, {33, 48, 2048}, {300, 20, 256}};
}

class QGemmExact : public ::testing::TestWithParam<GgmlType> {};

TEST_P(QGemmExact, EveryKernelGivesTheTwinsBitsOnQuantisedWeights) {
  const GgmlType type = GetParam();
  uint64_t stream = 10;
  for (const Shape& s : shapes_for(type)) {
    const std::vector<float> wf = test::randn(s.n * s.k, stream++, 0.05f);
    const std::vector<std::byte> w = quantize(type, wf, s.n, s.k);
    std::vector<float> x = test::randn(s.t * s.k, stream++);
    for (int64_t i = 0; i < s.t * s.k; i += 97) x[i] *= 20.0f;  // outliers, as in real activations
    const std::vector<float> want = qref::qgemm(type, reinterpret_cast<const uint8_t*>(w.data()),
                                                s.n, x.data(), s.t, s.k);
    for (QuantKernel kern : available_kernels()) {
      EXPECT_EQ(count_differences(run(type, w, s.n, s.k, x, s.t, kern), want), 0)
          << quant_kernel_name(kern) << " t " << s.t << " n " << s.n << " k " << s.k;
    }
  }
}

TEST_P(QGemmExact, EveryKernelGivesTheTwinsBitsOnRandomBlocks) {
  const GgmlType type = GetParam();
  const int64_t t = 40, n = 50, k = ggml_traits(type).block_size == 32 ? 32 * 40 : 256 * 5;
  const std::vector<std::byte> w = random_blocks(type, n, k, 5);
  const std::vector<float> x = test::randn(t * k, 3);
  const std::vector<float> want =
      qref::qgemm(type, reinterpret_cast<const uint8_t*>(w.data()), n, x.data(), t, k);
  for (QuantKernel kern : available_kernels()) {
    EXPECT_EQ(count_differences(run(type, w, n, k, x, t, kern), want), 0) << quant_kernel_name(kern);
  }
}

TEST_P(QGemmExact, ThreadCountsGiveTheSameBits) {
  const GgmlType type = GetParam();
  const int64_t t = 70, n = 300, k = 1024;
  const std::vector<std::byte> w = quantize(type, test::randn(n * k, 1, 0.05f), n, k);
  const std::vector<float> x = test::randn(t * k, 2);
  const int saved = omp_get_max_threads();
  for (QuantKernel kern : available_kernels()) {
    omp_set_num_threads(1);
    const std::vector<float> one = run(type, w, n, k, x, t, kern);
    omp_set_num_threads(3);
    const std::vector<float> three = run(type, w, n, k, x, t, kern);
    omp_set_num_threads(saved);
    EXPECT_EQ(count_differences(one, three), 0) << quant_kernel_name(kern);
  }
}

// The panel layout (qgemm_pack) holds the same blocks in another order: every kernel gives the
// same bits from it, and unpacking gives the rows back.
TEST_P(QGemmExact, PanelLayoutGivesTheSameBitsAndUnpacksBack) {
  const GgmlType type = GetParam();
  const int64_t k = ggml_traits(type).block_size == 32 ? 32 * 70 : 256 * 5;
  for (int64_t n : {int64_t{16}, int64_t{45}, int64_t{100}}) {
    const int64_t t = 37;
    const std::vector<std::byte> w = random_blocks(type, n, k, 11);
    std::vector<std::byte> packed(qgemm_packed_bytes(type, n, k), std::byte{0x5a});
    ASSERT_EQ(packed.size(), ggml_row_bytes(type, k) * ((n + 15) / 16 * 16));
    qgemm_pack(type, w.data(), n, k, packed.data());
    std::vector<std::byte> back(w.size());
    qgemm_unpack(type, packed.data(), n, k, back.data());
    EXPECT_EQ(std::memcmp(back.data(), w.data(), w.size()), 0) << "n " << n;
    // Row r's block b's fields where the layout says they are: the scale d (2 bytes) and the
    // first integers (q8_0's qs at 2, 32 bytes; q6_K's ql at 0, 128 bytes).
    const uint64_t rb = ggml_row_bytes(type, k), ts = ggml_traits(type).type_size;
    const int64_t r = n - 1, b = 3;
    const int d_off = type == GgmlType::Q6_K ? 208 : 0;
    const int q_off = type == GgmlType::Q6_K ? 0 : (type == GgmlType::Q4_K ? 16 : (type == GgmlType::Q5_0 ? 6 : 2));
    const int q_size = type == GgmlType::Q8_0 ? 32 : (type == GgmlType::Q4_0 || type == GgmlType::Q5_0 ? 16 : 128);
    const std::byte* group = &packed[(r / 16) * 16 * rb + b * 16 * ts];
    EXPECT_EQ(std::memcmp(group + 16 * d_off + (r % 16) * 2, &w[r * rb + b * ts + d_off], 2), 0);
    EXPECT_EQ(std::memcmp(group + 16 * q_off + (r % 16) * q_size, &w[r * rb + b * ts + q_off], q_size), 0);
    const std::vector<float> x = test::randn(t * k, 12);
    for (QuantKernel kern : available_kernels()) {
      const std::vector<float> want = run(type, w, n, k, x, t, kern);
      std::vector<float> y(t * n);
      qgemm(y.data(), x.data(), QuantMatrix{type, packed.data(), n, k, QuantLayout::kPanels16}, t, {.kernel = kern});
      EXPECT_EQ(count_differences(y, want), 0) << quant_kernel_name(kern) << " n " << n;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Types, QGemmExact, ::testing::ValuesIn(kTypes),
                         [](const auto& info) { return std::string(ggml_type_name(info.param)); });

TEST(QGemm, Bf16InputIsTheFp32ProductOfItsValues) {
  for (GgmlType type : kTypes) {
    const int64_t t = 19, n = 40, k = 512;
    const std::vector<std::byte> w = quantize(type, test::randn(n * k, 1, 0.05f), n, k);
    const std::vector<float> x = test::rounded(test::randn(t * k, 2));
    const std::vector<bf16> xb = test::to_bf16_vec(x);
    for (QuantKernel kern : available_kernels()) {
      std::vector<float> y(t * n);
      qgemm(y.data(), xb.data(), QuantMatrix{type, w.data(), n, k}, t, {.kernel = kern});
      EXPECT_EQ(count_differences(y, run(type, w, n, k, x, t, kern)), 0)
          << ggml_type_name(type) << " " << quant_kernel_name(kern);
    }
  }
}

// A bf16 output is to_bf16 of the fp32 output, value by value (a NaN row kept NaN), in a strided y whose gaps stay untouched; rows and outputs off the 16 grid.
TEST(QGemm, Bf16OutputIsTheFp32OutputRounded) {
  const int64_t t = 37, n = 45, k = 512, ldy = n + 11;
  for (GgmlType type : kTypes) {
    const std::vector<std::byte> w = quantize(type, test::randn(n * k, 6, 0.05f), n, k);
    std::vector<float> x = test::randn(t * k, 7);
    x[9 * k + 3] = NAN;
    const std::vector<bf16> xb = test::to_bf16_vec(x);
    for (QuantKernel kern : available_kernels()) {
      std::vector<float> want(t * n);
      qgemm(want.data(), xb.data(), QuantMatrix{type, w.data(), n, k}, t, {.kernel = kern});
      std::vector<bf16> y(t * ldy, bf16{0x1234});
      qgemm(y.data(), xb.data(), QuantMatrix{type, w.data(), n, k}, t, {.ldy = ldy, .kernel = kern});
      int64_t bad = 0;
      for (int64_t r = 0; r < t; ++r) {
        for (int64_t c = 0; c < ldy; ++c) {
          const uint16_t got = y[r * ldy + c].bits;
          if (c >= n) {
            bad += got != 0x1234;
            continue;
          }
          bad += got != to_bf16(want[r * n + c]).bits;
        }
      }
      EXPECT_EQ(bad, 0) << ggml_type_name(type) << " " << quant_kernel_name(kern);
      EXPECT_TRUE(std::isnan(to_float(y[9 * ldy + 4]))) << ggml_type_name(type) << " " << quant_kernel_name(kern);
      // fp32 input too, and a bf16 output refuses to accumulate.
      std::vector<bf16> yf(t * n);
      std::vector<float> wantf(t * n);
      qgemm(yf.data(), x.data(), QuantMatrix{type, w.data(), n, k}, t, {.kernel = kern});
      qgemm(wantf.data(), x.data(), QuantMatrix{type, w.data(), n, k}, t, {.kernel = kern});
      for (int64_t i = 0; i < t * n; ++i) bad += yf[i].bits != to_bf16(wantf[i]).bits;
      EXPECT_EQ(bad, 0) << ggml_type_name(type) << " " << quant_kernel_name(kern) << " (fp32 input)";
      EXPECT_THROW(qgemm(yf.data(), x.data(), QuantMatrix{type, w.data(), n, k}, t, {.accumulate = true, .kernel = kern}),
                   Error);
    }
  }
}

// The bf16 stores alone, on values the products rarely give: ties to even (odd and even
// upper halves), NaN (quiet and signalling), infinities, subnormals, the largest finite values.
TEST(QGemm, Bf16StoresRoundEveryValueAsToBf16) {
  const uint32_t specials[] = {0x3f808000u, 0x3f818000u, 0xbf808000u, 0x3f80ffffu, 0x7fc00000u, 0x7f800001u,
                               0xff812345u, 0x7f800000u, 0xff800000u, 0x00008000u, 0x00018000u, 0x7f7fffffu,
                               0xff7fffffu, 0x00000000u, 0x80000000u, 0x3f7f8000u};
  const int64_t cols = 21, rows = 19, acc_ld = 32, ldy = cols + 3;
  std::vector<float> acc(32 * acc_ld);
  for (size_t i = 0; i < acc.size(); ++i) {
    const uint32_t u = i % 3 == 0 ? specials[i / 3 % 16] : 0x3f800000u + static_cast<uint32_t>(i * 2654435761u % 0x7fffff);
    std::memcpy(&acc[i], &u, 4);
  }
  std::vector<std::pair<const char*, qgemm_impl::StoreBf16Fn>> stores = {{"scalar", qgemm_impl::store_bf16_scalar}};
  if (qgemm_kernel_available(QuantKernel::kAvx512Vnni)) stores.emplace_back("avx512", qgemm_impl::avx512::store_bf16_avx512);
  for (const auto& [name, store] : stores) {
    std::vector<bf16> y(rows * ldy, bf16{0x1234});
    store(acc.data(), acc_ld, cols, rows, y.data(), ldy);
    int64_t bad = 0;
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < ldy; ++c) {
        const uint16_t want = c < cols ? to_bf16(acc[c * acc_ld + r]).bits : 0x1234;
        bad += y[r * ldy + c].bits != want;
      }
    }
    EXPECT_EQ(bad, 0) << name;
  }
}

TEST(QGemm, AccumulateAddsAndStridesAreRespected) {
  const int64_t t = 21, n = 35, k = 768, ldx = k + 40, ldy = n + 9;
  for (GgmlType type : kTypes) {
    const std::vector<std::byte> w = quantize(type, test::randn(n * k, 4, 0.05f), n, k);
    const std::vector<float> x = test::randn(t * k, 5);
    std::vector<float> xs(t * ldx, NAN);  // the gaps must never be read
    for (int64_t r = 0; r < t; ++r) std::copy_n(x.begin() + r * k, k, xs.begin() + r * ldx);
    for (QuantKernel kern : available_kernels()) {
      const std::vector<float> plain = run(type, w, n, k, x, t, kern);
      std::vector<float> y(t * ldy);
      for (size_t i = 0; i < y.size(); ++i) y[i] = static_cast<float>(i % 7) - 3.0f;
      const std::vector<float> before = y;
      qgemm(y.data(), xs.data(), QuantMatrix{type, w.data(), n, k}, t,
            {.ldx = ldx, .ldy = ldy, .accumulate = true, .kernel = kern});
      int64_t bad = 0;
      for (int64_t r = 0; r < t; ++r) {
        for (int64_t c = 0; c < ldy; ++c) {
          const float want = c < n ? before[r * ldy + c] + plain[r * n + c] : before[r * ldy + c];
          bad += std::memcmp(&want, &y[r * ldy + c], 4) != 0;
        }
      }
      EXPECT_EQ(bad, 0) << ggml_type_name(type) << " " << quant_kernel_name(kern);
    }
  }
}

// The whole product against double-precision sums: (1) of the quantised activations
// (d * q, from the twin) times the dequantised weights, which leaves only the kernel's fp32
// rounding; (2) of the fp32 activations times the dequantised weights, which adds the
// activations' 8-bit rounding (with outliers every 61 values, as real activations have them).
TEST(QGemm, AccuracyAgainstFp32OnDequantisedWeights) {
  const int64_t t = 64, n = 64, k = 2048;
  for (GgmlType type : kTypes) {
    const std::vector<std::byte> w = quantize(type, test::randn(n * k, 8, 0.05f), n, k);
    std::vector<float> wd(n * k);
    dequantize_rows(type, w.data(), wd.data(), n, k);
    std::vector<float> x = test::randn(t * k, 9);
    for (int64_t i = 0; i < t * k; i += 61) x[i] *= 10.0f;
    const std::vector<float> y = run(type, w, n, k, x, t, QuantKernel::kAuto);
    const int block = ggml_traits(type).block_size;
    double err_q = 0, err_x = 0, ref2 = 0;
    for (int64_t r = 0; r < t; ++r) {
      const qref::ActRow xq = qref::quantize_row(x.data() + r * k, k, block);
      for (int64_t c = 0; c < n; ++c) {
        double ref_x = 0, ref_q = 0;
        for (int64_t i = 0; i < k; ++i) {
          ref_x += static_cast<double>(x[r * k + i]) * wd[c * k + i];
          ref_q += static_cast<double>(xq.d[i / block]) * xq.q[i] * wd[c * k + i];
        }
        err_x += (y[r * n + c] - ref_x) * (y[r * n + c] - ref_x);
        err_q += (y[r * n + c] - ref_q) * (y[r * n + c] - ref_q);
        ref2 += ref_x * ref_x;
      }
    }
    const double rel_q = std::sqrt(err_q / ref2), rel_x = std::sqrt(err_x / ref2);
    // Measured: fp32 rounding 0.9-1.5e-7; with the 8-bit activations 1.04% (blocks of 32) and
    // 2.3% (blocks of 256) of the output's RMS.
    EXPECT_LT(rel_q, 1e-6) << ggml_type_name(type);
    EXPECT_LT(rel_x, block == 32 ? 0.013 : 0.028) << ggml_type_name(type);
    EXPECT_GT(rel_x, 1e-4) << ggml_type_name(type) << ": suspiciously exact for 8-bit activations";
  }
}

// ggml rounds q8_0's activation scale to half precision after it rounded the values with the
// fp32 scale; qgemm keeps the fp32 scale. Same values, finer scale: never less accurate.
TEST(QGemm, ActivationsAreAtLeastAsAccurateAsGgmlsQ8_0) {
  const int64_t rows = 200, k = 4096;
  std::vector<float> x = test::randn(rows * k, 12);
  for (int64_t i = 0; i < rows * k; i += 53) x[i] *= 30.0f;
  double ours = 0, ggml = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const qref::ActRow a = qref::quantize_row(x.data() + r * k, k, 32);
    const qref::ActRow b = qref::quantize_row(x.data() + r * k, k, 32, /*ggml_half_scale=*/true);
    for (int64_t i = 0; i < k; ++i) {
      const double v = x[r * k + i];
      ours += std::pow(v - static_cast<double>(a.d[i / 32]) * a.q[i], 2);
      ggml += std::pow(v - static_cast<double>(b.d[i / 32]) * b.q[i], 2);
    }
  }
  EXPECT_LE(ours, ggml);
  EXPECT_LT(ours, 0.9999 * ggml) << "the fp32 scale should be measurably finer";
}

TEST(QGemm, NonFiniteActivationsMakeTheirRowsNaN) {
  for (GgmlType type : kTypes) {
    const int64_t t = 20, n = 24, k = 512;
    const std::vector<std::byte> w = quantize(type, test::randn(n * k, 1, 0.05f), n, k);
    std::vector<float> x = test::randn(t * k, 2);
    x[3 * k + 100] = NAN;
    x[7 * k + 5] = INFINITY;
    for (QuantKernel kern : available_kernels()) {
      const std::vector<float> y = run(type, w, n, k, x, t, kern);
      for (int64_t r = 0; r < t; ++r) {
        for (int64_t c = 0; c < n; ++c) {
          if (r == 3 || r == 7) {
            EXPECT_TRUE(std::isnan(y[r * n + c])) << ggml_type_name(type) << " " << quant_kernel_name(kern);
          } else {
            EXPECT_TRUE(std::isfinite(y[r * n + c])) << ggml_type_name(type) << " " << quant_kernel_name(kern);
          }
        }
      }
    }
  }
}

TEST(QGemm, ZeroAndTinyActivationsGiveZero) {
  const int64_t t = 3, n = 16, k = 256;
  for (GgmlType type : kTypes) {
    const std::vector<std::byte> w = quantize(type, test::randn(n * k, 1, 0.05f), n, k);
    std::vector<float> x(t * k, 0.0f);
    for (int64_t i = k; i < 2 * k; ++i) x[i] = 1e-35f;  // below 2^-100: treated as zero
    for (QuantKernel kern : available_kernels()) {
      for (float v : run(type, w, n, k, x, t, kern)) EXPECT_EQ(v, 0.0f) << quant_kernel_name(kern);
    }
  }
}

TEST(QGemm, BadCallsThrowErrorsThatSayWhy) {
  const std::vector<std::byte> w(ggml_row_bytes(GgmlType::Q4_K, 512) * 4);
  std::vector<float> x(512), y(4);
  try {
    qgemm(y.data(), x.data(), QuantMatrix{GgmlType::Q5_1, w.data(), 4, 512}, 1);
    FAIL() << "q5_1 accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("q5_1"), std::string::npos) << e.what();
  }
  EXPECT_THROW(qgemm_pack(GgmlType::F16, w.data(), 4, 512, nullptr), Error);
  try {
    qgemm(y.data(), x.data(), QuantMatrix{GgmlType::Q4_K, w.data(), 4, 288}, 1);
    FAIL() << "k = 288 accepted for q4_K";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("288"), std::string::npos) << e.what();
  }
  for (QuantKernel kern : kKernels) {
    if (qgemm_kernel_available(kern)) continue;
    EXPECT_THROW(qgemm(y.data(), x.data(), QuantMatrix{GgmlType::Q4_K, w.data(), 4, 512}, 1,
                       {.kernel = kern}),
                 Error)
        << quant_kernel_name(kern);
  }
  EXPECT_TRUE(qgemm_supports(GgmlType::Q6_K));
  EXPECT_FALSE(qgemm_supports(GgmlType::F16));
}

TEST(QGemm, TheIsaCapChoosesTheKernel) {
  const Isa saved = set_isa_cap(Isa::kScalar);
  EXPECT_EQ(qgemm_kernel(), QuantKernel::kScalar);
  set_isa_cap(Isa::kAvx2);
  if (isa_supported() >= Isa::kAvx2) {
    EXPECT_EQ(qgemm_kernel(), cpu_features().avx_vnni ? QuantKernel::kAvxVnni : QuantKernel::kAvx2);
  }
  set_isa_cap(Isa::kAvx512Bf16);
  if (isa_supported() >= Isa::kAvx512 && cpu_features().avx512_vnni) {
    EXPECT_EQ(qgemm_kernel(), QuantKernel::kAvx512Vnni);
  }
  set_isa_cap(saved);
  if (isa_level() == Isa::kAmx) {
    EXPECT_EQ(qgemm_kernel(), QuantKernel::kAmx);
  }
}

}  // namespace
}  // namespace illada

// Tests of the ggml block formats: half-precision conversion, quantise/dequantise round-trip
// error per format, a decoder written here from the layout description (the scalar reference
// the kernels must agree with), parallel = serial, and bytes equal to ggml's on a fixture that
// llama.cpp's own quantiser wrote (tests/fixtures/quant, see tools/llama_cpp/README.md).
#include "kernels/quant.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "io/gguf.h"
#include "../test_util.h"
#include "util/bf16.h"
#include "util/isa.h"

namespace illada {
namespace {

const GgmlType kQuantTypes[] = {GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q5_0, GgmlType::Q4_K,
                                GgmlType::Q6_K};

float f32_of_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

TEST(Fp16, EveryHalfRoundTrips) {
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = fp16_to_fp32(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_EQ(fp32_to_fp16(f), (h & 0x8000u) | 0x7e00u) << std::hex << h;
      continue;
    }
    EXPECT_EQ(fp32_to_fp16(f), h) << std::hex << h;
    EXPECT_EQ(f, half_to_float(static_cast<uint16_t>(h))) << std::hex << h;
  }
}

TEST(Fp16, RoundsToNearestEvenLikeTheReadableConversion) {
  // util's float_to_half (frexp + nearbyint) is the readable twin; compare on a sweep over all
  // float bit patterns and on the boundaries.
  for (uint64_t u = 0; u < (uint64_t{1} << 32); u += 4099) {
    const float f = f32_of_bits(static_cast<uint32_t>(u));
    if (std::isnan(f)) continue;
    ASSERT_EQ(fp32_to_fp16(f), float_to_half(f)) << std::hex << u;
  }
  EXPECT_EQ(fp32_to_fp16(65504.0f), 0x7bffu);
  EXPECT_EQ(fp32_to_fp16(65519.996f), 0x7bffu);
  EXPECT_EQ(fp32_to_fp16(65520.0f), 0x7c00u);
  EXPECT_EQ(fp32_to_fp16(-INFINITY), 0xfc00u);
  EXPECT_EQ(fp32_to_fp16(0x1p-24f), 0x0001u);
  EXPECT_EQ(fp32_to_fp16(0x1p-25f), 0x0000u);              // tie to even: 0
  EXPECT_EQ(fp32_to_fp16(std::nextafter(0x1p-25f, 1.0f)), 0x0001u);
  EXPECT_EQ(fp32_to_fp16(3 * 0x1p-25f), 0x0002u);          // 1.5 ulp: tie to even 2
  EXPECT_EQ(fp32_to_fp16(-0.0f), 0x8000u);
  EXPECT_EQ(fp32_to_fp16(1.0f + 0x1p-11f), 0x3c00u);       // tie: stays even
  EXPECT_EQ(fp32_to_fp16(1.0f + 3 * 0x1p-11f), 0x3c02u);   // tie: rounds up to even
  EXPECT_EQ(fp32_to_fp16(-NAN) & 0x7fffu, 0x7e00u);
}

// ---- the reference decoder: written from the layout in quant.h, independent of quant.cc ----

float half_at(const std::byte* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return half_to_float(h);
}
uint8_t u8_at(const std::byte* p, size_t i) { return static_cast<uint8_t>(p[i]); }

// The 6-bit fields of a q4_K block's 12 scale bytes, by bit position: scales 0-3 and mins 0-3
// are bits 0-5 of bytes 0-7; scales 4-7 take their low 4 bits from the low nibbles of bytes
// 8-11 and their top 2 from bits 6-7 of bytes 0-3; mins 4-7 likewise from the high nibbles
// of bytes 8-11 and bits 6-7 of bytes 4-7.
void q4k_fields(const std::byte* s, int* scale, int* min) {
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      scale[j] = u8_at(s, j) % 64;
      min[j] = u8_at(s, j + 4) % 64;
    } else {
      scale[j] = (u8_at(s, j + 4) % 16) + 16 * (u8_at(s, j - 4) / 64);
      min[j] = (u8_at(s, j + 4) / 16) + 16 * (u8_at(s, j) / 64);
    }
  }
}

std::vector<double> reference_decode(GgmlType t, const std::byte* p, int64_t n) {
  std::vector<double> y(static_cast<size_t>(n));
  const uint32_t bs = ggml_traits(t).block_size, ts = ggml_traits(t).type_size;
  for (int64_t b = 0; b < n / bs; ++b, p += ts) {
    double* out = y.data() + b * bs;
    switch (t) {
      case GgmlType::Q8_0:
        for (int j = 0; j < 32; ++j) out[j] = half_at(p) * static_cast<int8_t>(u8_at(p, 2 + j));
        break;
      case GgmlType::Q4_0:
        for (int j = 0; j < 32; ++j) {
          const uint8_t byte = u8_at(p, 2 + j % 16);
          out[j] = half_at(p) * ((j < 16 ? byte % 16 : byte / 16) - 8.0);
        }
        break;
      case GgmlType::Q5_0: {
        const uint32_t qh = u8_at(p, 2) | u8_at(p, 3) << 8 | u8_at(p, 4) << 16 | uint32_t{u8_at(p, 5)} << 24;
        for (int j = 0; j < 32; ++j) {
          const uint8_t byte = u8_at(p, 6 + j % 16);
          const int q = (j < 16 ? byte % 16 : byte / 16) + 16 * ((qh >> j) & 1);
          out[j] = half_at(p) * (q - 16.0);
        }
        break;
      }
      case GgmlType::Q4_K: {
        int sc[8], mn[8];
        q4k_fields(p + 4, sc, mn);
        for (int j = 0; j < 256; ++j) {
          const int sub = j / 32;  // byte (sub/2)*32 + j%32: low nibble for even sub-blocks
          const uint8_t byte = u8_at(p, 16 + (sub / 2) * 32 + j % 32);
          const int q = sub % 2 == 0 ? byte % 16 : byte / 16;
          out[j] = static_cast<double>(half_at(p)) * sc[sub] * q - static_cast<double>(half_at(p + 2)) * mn[sub];
        }
        break;
      }
      case GgmlType::Q6_K: {
        const float d = half_at(p + 208);
        for (int j = 0; j < 256; ++j) {
          const int half = j / 128, k = j % 128, quarter = k / 32, l = k % 32;
          const uint8_t lo_byte = u8_at(p, half * 64 + (quarter % 2) * 32 + l);
          const int lo = quarter < 2 ? lo_byte % 16 : lo_byte / 16;
          const int hi = (u8_at(p, 128 + half * 32 + l) >> (2 * quarter)) & 3;
          const int scale = static_cast<int8_t>(u8_at(p, 192 + j / 16));
          out[j] = static_cast<double>(d) * scale * (lo + 16 * hi - 32);
        }
        break;
      }
      default:
        ADD_FAILURE() << "no reference decoder for " << ggml_type_name(t);
    }
  }
  return y;
}

std::vector<std::byte> quantize(GgmlType t, const std::vector<float>& x, int64_t rows, int64_t cols) {
  std::vector<std::byte> q(rows * ggml_row_bytes(t, cols));
  quantize_rows(t, x.data(), q.data(), rows, cols);
  return q;
}

// Rows with the shapes that exercise the formats' corner cases.
std::vector<float> test_rows(int64_t rows, int64_t cols, uint64_t stream) {
  std::vector<float> x = test::randn(rows * cols, stream);
  for (int64_t r = 0; r < rows; ++r) {
    float* row = x.data() + r * cols;
    const float scale = std::pow(10.0f, static_cast<float>(r % 7) - 3);  // 1e-3 .. 1e3
    for (int64_t i = 0; i < cols; ++i) row[i] *= scale;
    if (r % 7 == 1) std::fill(row, row + cols, 0.0f);
    if (r % 7 == 2) std::fill(row, row + cols, -0.25f);
    if (r % 7 == 3) {
      for (int64_t i = 0; i < cols; ++i) row[i] = i % 37 == 0 ? 50.0f : 0.0f;
    }
    if (r % 7 == 5) {
      for (int64_t i = 0; i < cols; ++i) row[i] = std::round(row[i]);
    }
  }
  return x;
}

TEST(Quant, KernelsAgreeWithTheReferenceDecoder) {
  const int64_t rows = 14, cols = 512;
  const std::vector<float> x = test_rows(rows, cols, 1);
  for (GgmlType t : kQuantTypes) {
    const auto q = quantize(t, x, rows, cols);
    std::vector<float> y(rows * cols);
    dequantize_rows(t, q.data(), y.data(), rows, cols);
    const auto ref = reference_decode(t, q.data(), rows * cols);
    for (int64_t i = 0; i < rows * cols; ++i) {
      ASSERT_NEAR(y[i], ref[i], 1e-6 * std::fabs(ref[i]) + 1e-30) << ggml_type_name(t) << " value " << i;
    }
  }
}

TEST(Quant, RoundTripErrorIsWithinEachFormatsStep) {
  const int64_t rows = 8, cols = 1024;
  const std::vector<float> x = test::randn(rows * cols, 7);
  for (GgmlType t : kQuantTypes) {
    const auto q = quantize(t, x, rows, cols);
    std::vector<float> y(rows * cols);
    dequantize_rows(t, q.data(), y.data(), rows, cols);
    const int bs = static_cast<int>(ggml_traits(t).block_size);
    double se = 0, sx = 0;
    for (int64_t b = 0; b < rows * cols / bs; ++b) {
      float amax = 0;
      for (int j = 0; j < bs; ++j) amax = std::max(amax, std::fabs(x[b * bs + j]));
      for (int j = 0; j < bs; ++j) {
        const float e = std::fabs(y[b * bs + j] - x[b * bs + j]);
        se += static_cast<double>(e) * e;
        sx += static_cast<double>(x[b * bs + j]) * x[b * bs + j];
        // Absolute bounds from the block's step (plus the half-precision scale's rounding).
        const float step = t == GgmlType::Q8_0   ? 0.57f * amax / 127
                           : t == GgmlType::Q4_0 ? 1.01f * amax / 8
                           : t == GgmlType::Q5_0 ? 1.01f * amax / 16
                                                 : INFINITY;
        ASSERT_LE(e, step) << ggml_type_name(t) << " value " << j;
      }
    }
    const double rel_rms = std::sqrt(se / sx);
    const double bound = t == GgmlType::Q8_0 ? 0.006 : t == GgmlType::Q6_K ? 0.02
                         : t == GgmlType::Q5_0 ? 0.06 : 0.12;
    EXPECT_LT(rel_rms, bound) << ggml_type_name(t);
    EXPECT_GT(rel_rms, bound / 20) << ggml_type_name(t) << ": suspiciously exact";
  }
}

TEST(Quant, ZeroBlocksAndSignedZeroScaleAsGgmlWritesThem) {
  const std::vector<float> zeros(256, 0.0f);
  const auto q8 = quantize(GgmlType::Q8_0, zeros, 1, 256);
  for (std::byte b : q8) EXPECT_EQ(b, std::byte{0});
  // q4_0 divides the (zero) extreme value by -8: the scale is -0 and every nibble is 8.
  const auto q4 = quantize(GgmlType::Q4_0, zeros, 1, 32);
  EXPECT_EQ(u8_at(q4.data(), 0), 0x00);
  EXPECT_EQ(u8_at(q4.data(), 1), 0x80);
  for (int i = 2; i < 18; ++i) EXPECT_EQ(u8_at(q4.data(), i), 0x88);
  const auto q6 = quantize(GgmlType::Q6_K, zeros, 1, 256);
  for (std::byte b : q6) EXPECT_EQ(b, std::byte{0});
}

TEST(Quant, ParallelRowsEqualOneRowAtATime) {
  const int64_t rows = 96, cols = 1024;  // enough work for the parallel path
  const std::vector<float> x = test_rows(rows, cols, 3);
  for (GgmlType t : {GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::Q8_0, GgmlType::F16, GgmlType::BF16}) {
    const auto all = quantize(t, x, rows, cols);
    const uint64_t rb = ggml_row_bytes(t, cols);
    for (int64_t r = 0; r < rows; r += 17) {
      std::vector<std::byte> one(rb);
      quantize_rows(t, x.data() + r * cols, one.data(), 1, cols);
      ASSERT_EQ(std::memcmp(one.data(), all.data() + r * rb, rb), 0) << ggml_type_name(t) << " row " << r;
    }
  }
}

TEST(Quant, FloatFormatsAreExactConversions) {
  const std::vector<float> x = test::randn(64, 9);
  const auto h = quantize(GgmlType::F16, x, 2, 32);
  const auto b = quantize(GgmlType::BF16, x, 2, 32);
  std::vector<float> yh(64), yb(64), yf(64);
  dequantize_rows(GgmlType::F16, h.data(), yh.data(), 2, 32);
  dequantize_rows(GgmlType::BF16, b.data(), yb.data(), 2, 32);
  dequantize_rows(GgmlType::F32, quantize(GgmlType::F32, x, 2, 32).data(), yf.data(), 2, 32);
  for (int i = 0; i < 64; ++i) {
    EXPECT_EQ(yh[i], half_to_float(float_to_half(x[i])));
    EXPECT_EQ(yb[i], to_float(to_bf16(x[i])));
    EXPECT_EQ(yf[i], x[i]);
  }
}

TEST(Quant, ScalesBeyondHalfPrecisionAreDetected) {
  std::vector<float> x(32, 1.0f);
  EXPECT_TRUE(quant_scales_finite(GgmlType::Q8_0, quantize(GgmlType::Q8_0, x, 1, 32).data(), 1, 32));
  x[3] = 1e7f;  // d = 1e7 / 127 > 65504
  EXPECT_FALSE(quant_scales_finite(GgmlType::Q8_0, quantize(GgmlType::Q8_0, x, 1, 32).data(), 1, 32));
  std::vector<float> k(256, 1.0f);
  k[0] = 1e9f;
  EXPECT_FALSE(quant_scales_finite(GgmlType::Q4_K, quantize(GgmlType::Q4_K, k, 1, 256).data(), 1, 256));
}

// The k-quants' scale searches run 16 sub-blocks at once on AVX-512 (8 at a time on AVX2), and
// q8_0 rows have AVX-512 and AVX2 forms (kernels/cpu/quant_wide.h): the bytes must be those of the
// scalar code at every level, on rows that take every branch (flat sub-blocks, all-positive ones
// whose min is capped at 0, values below the zero threshold, an odd number of super-blocks,
// which leaves lanes empty, and q8_0 blocks whose scale is 1 with values half-way between
// integers, which round away from zero).
TEST(Quant, WideQuantisersWriteTheScalarBytes) {
  if (isa_supported() < Isa::kAvx2) GTEST_SKIP() << "this CPU has no AVX2: only the scalar code runs here";
  for (const int64_t cols : {int64_t{256}, int64_t{768}, int64_t{2048}}) {
    const int64_t rows = 40;
    std::vector<float> x = test_rows(rows, cols, 11);
    std::vector<float> noise = test::randn(rows * cols, 12);
    for (int64_t r = 0; r < rows; ++r) {
      float* row = x.data() + r * cols;
      const float* nr = noise.data() + r * cols;
      for (int64_t i = 0; i < cols; ++i) {
        const int64_t sub = i / 16;  // per 16 values, so q4_K and q6_K sub-blocks both vary
        switch ((r + sub) % 9) {
          case 0: row[i] = std::fabs(row[i]) + 0.5f; break;            // all positive: min capped
          case 1: row[i] = -std::fabs(row[i]) - 0.5f; break;           // all negative
          case 2: row[i] = 3.0f; break;                                // constant
          case 3: row[i] = 1e-17f * nr[i]; break;                      // below q6_K's zero threshold
          case 4: row[i] = nr[i] * nr[i] * nr[i]; break;               // heavy tails
          case 5: row[i] = std::round(4 * nr[i]) / 4; break;           // few distinct values
          case 6:  // q8_0 scale 1: 127 first, then halves
            row[i] = i % 32 == 0 ? 127.0f : std::max(-126.5f, std::min(126.5f, std::round(60 * nr[i]) / 2));
            break;
          default: break;
        }
      }
    }
    for (GgmlType t : {GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::Q8_0}) {
      const Isa previous = set_isa_cap(Isa::kScalar);
      const auto scalar = quantize(t, x, rows, cols);
      for (Isa level : {Isa::kAvx2, Isa::kAvx512}) {
        if (isa_supported() < level) continue;  // the AVX-512 copy needs the CPU's support
        set_isa_cap(level);
        const auto wide = quantize(t, x, rows, cols);
        size_t first_diff = wide.size();
        for (size_t i = 0; i < wide.size() && first_diff == wide.size(); ++i) {
          if (wide[i] != scalar[i]) first_diff = i;
        }
        EXPECT_EQ(first_diff, wide.size()) << ggml_type_name(t) << " at " << isa_name(level) << ", cols " << cols
                                           << ": first differing byte " << first_diff << " of " << wide.size();
      }
      set_isa_cap(previous);
    }
  }
}

// Bytes that llama.cpp (libggml-base of node-llama-cpp 3.22.1, commit de3ff815) wrote for the
// same inputs: tests/fixtures/quant/ggml_golden.gguf holds the input rows as an f32 tensor
// "input", ggml_quantize_chunk's output for each type as a tensor named after the type, and
// ggml's expansion of that output as "<type>.dequantized".
TEST(Quant, BytesEqualLlamaCppOnTheGoldenFixture) {
  const auto f = GgufFile::open(std::string(ILLADA_SOURCE_DIR) + "/tests/fixtures/quant/ggml_golden.gguf");
  const GgufTensorInfo* in = f->find_tensor("input");
  ASSERT_NE(in, nullptr);
  ASSERT_EQ(in->type, GgmlType::F32);
  const int64_t cols = in->ne[0], rows = in->rows();
  std::vector<float> x(rows * cols);
  std::memcpy(x.data(), f->bytes(*in).data(), x.size() * 4);
  int checked = 0;
  for (GgmlType t : {GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q5_0, GgmlType::Q4_K, GgmlType::Q6_K,
                     GgmlType::F16, GgmlType::BF16}) {
    const GgufTensorInfo* g = f->find_tensor(ggml_type_name(t));
    ASSERT_NE(g, nullptr) << ggml_type_name(t);
    ASSERT_EQ(g->type, t);
    const auto q = quantize(t, x, rows, cols);
    ASSERT_EQ(q.size(), g->nbytes);
    const auto want = f->bytes(*g);
    size_t first_diff = q.size();
    for (size_t i = 0; i < q.size() && first_diff == q.size(); ++i) {
      if (q[i] != want[i]) first_diff = i;
    }
    EXPECT_EQ(first_diff, q.size()) << ggml_type_name(t) << ": first differing byte " << first_diff;
    // Expanding ggml's bytes gives ggml's floats, bit for bit.
    const GgufTensorInfo* d = f->find_tensor(std::string(ggml_type_name(t)) + ".dequantized");
    ASSERT_NE(d, nullptr);
    std::vector<float> y(rows * cols), want_y(rows * cols);
    dequantize_rows(t, want.data(), y.data(), rows, cols);
    std::memcpy(want_y.data(), f->bytes(*d).data(), want_y.size() * 4);
    EXPECT_EQ(std::memcmp(y.data(), want_y.data(), y.size() * 4), 0) << ggml_type_name(t) << " dequantised";
    ++checked;
  }
  EXPECT_EQ(checked, 7);
}

}  // namespace
}  // namespace illada

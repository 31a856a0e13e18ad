// gemm_at (A read transposed) and gemm_batched (a strided batch in one call) against the
// scalar reference gemm, fp32 and bf16.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "kernels/gemm.h"
#include "reference/reference.h"
#include "../test_util.h"

namespace illada {
namespace {

using test::max_abs_diff;
using test::randn;
using test::rounded;
using test::to_bf16_vec;

// Row-major [rows, cols] copy of the transpose of a [cols, rows] buffer with row stride ld.
std::vector<float> transposed(const std::vector<float>& x, int64_t rows, int64_t cols, int64_t ld) {
  std::vector<float> t(static_cast<size_t>(rows * cols));
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) t[i * cols + j] = x[j * ld + i];
  return t;
}

TEST(GemmVariants, TransposedAMatchesReference) {
  // A^T: A stored [k, lda] with the m used columns first; B [k, n] (the dW = dY^T X layout).
  const int64_t m = 37, n = 53, k = 70, lda = 40;
  auto a = randn(k * lda, 11), b = randn(k * n, 12), c0 = randn(m * n, 13);
  for (bool bf : {false, true}) {
    for (bool acc : {false, true}) {
      auto c = c0, ref = c0;
      const GemmShape s{.m = m, .n = n, .k = k, .lda = lda, .ldb = n, .ldc = n,
                        .b_is_nk = false, .accumulate = acc};
      if (bf) {
        gemm_at(c.data(), to_bf16_vec(a).data(), to_bf16_vec(b).data(), s);
        reference::gemm(ref.data(), transposed(rounded(a), m, k, lda).data(), rounded(b).data(),
                        m, n, k, false, 1.0f, acc);
      } else {
        gemm_at(c.data(), a.data(), b.data(), s);
        reference::gemm(ref.data(), transposed(a, m, k, lda).data(), b.data(), m, n, k, false,
                        1.0f, acc);
      }
      EXPECT_LT(max_abs_diff(c, ref), bf ? 2e-3f : 1e-4f) << "bf16=" << bf << " acc=" << acc;
    }
  }
}

TEST(GemmVariants, Bf16OutputIsTheRoundedProduct) {
  // C in bf16: the fp32 product rounded once (a sum in another order may move a value across a
  // rounding boundary: at most one bf16 step apart).
  const int64_t m = 33, n = 70, k = 45;
  const auto a = to_bf16_vec(randn(m * k, 21)), b = to_bf16_vec(randn(n * k, 22));
  const GemmShape s = linear_shape(m, n, k, false);
  std::vector<float> c32(m * n);
  std::vector<bf16> c16(m * n);
  gemm(c32.data(), a.data(), b.data(), s);
  gemm(c16.data(), a.data(), b.data(), s);
  int exact = 0;
  for (int64_t i = 0; i < m * n; ++i) {
    const int diff = std::abs(static_cast<int>(c16[i].bits) - static_cast<int>(to_bf16(c32[i]).bits));
    ASSERT_LE(diff, 1) << i;
    exact += diff == 0;
  }
  EXPECT_GT(exact, m * n * 9 / 10);
}

TEST(GemmVariants, AddReadsTheResidualInTheStore) {
  // C = R + A·B^T with C and R at a row stride wider than n: equal to copying R into C and
  // accumulating, and R is left alone.
  const int64_t m = 29, n = 40, k = 64, ldc = 48;
  const auto a = to_bf16_vec(randn(m * k, 23)), b = to_bf16_vec(randn(n * k, 24));
  const auto r = randn(m * ldc, 25);
  GemmShape s = linear_shape(m, n, k, false);
  s.ldc = ldc;
  std::vector<float> c(m * ldc, 7.0f), ref = r;
  gemm_add(c.data(), a.data(), b.data(), r.data(), s);
  s.accumulate = true;
  gemm(ref.data(), a.data(), b.data(), s);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) ASSERT_NEAR(c[i * ldc + j], ref[i * ldc + j], 1e-4f) << i << "," << j;
    for (int64_t j = n; j < ldc; ++j) ASSERT_EQ(c[i * ldc + j], 7.0f) << "padding written";
  }
  EXPECT_EQ(r, randn(m * ldc, 25));
}

TEST(GemmVariants, BatchedMatchesOneCallPerProduct) {
  // Three products of [m, k] x [n, k]^T, operands interleaved with gaps (batch strides larger
  // than one matrix), C accumulated.
  const int64_t batch = 3, m = 9, n = 12, k = 16;
  const GemmBatch strides{.count = batch, .a = m * k + 5, .b = n * k + 3, .c = m * n + 7};
  auto a = randn(batch * strides.a, 14), b = randn(batch * strides.b, 15);
  auto c0 = randn(batch * strides.c, 16);
  const GemmShape s = linear_shape(m, n, k, true);
  for (bool bf : {false, true}) {
    auto c = c0, ref = c0;
    const auto ar = bf ? rounded(a) : a, br = bf ? rounded(b) : b;
    if (bf) {
      gemm_batched(c.data(), to_bf16_vec(a).data(), to_bf16_vec(b).data(), s, strides);
    } else {
      gemm_batched(c.data(), a.data(), b.data(), s, strides);
    }
    for (int64_t i = 0; i < batch; ++i) {
      reference::gemm(ref.data() + i * strides.c, ar.data() + i * strides.a,
                      br.data() + i * strides.b, m, n, k, true, 1.0f, true);
    }
    EXPECT_LT(max_abs_diff(c, ref), bf ? 2e-3f : 1e-4f) << "bf16=" << bf;
  }
}

TEST(GemmVariants, PrimitiveCacheIsBoundedAndEvictedShapesStillCompute) {
  // A server packs requests into row counts that keep changing: each is a primitive. With a
  // limit of 4, twelve row counts on two threads at once keep at most 4 cached, and every
  // product (including shapes evicted and created again) equals the reference.
  const int64_t old = set_gemm_cache_limit(4);
  const int64_t n = 24, k = 40;
  auto b = randn(n * k, 21);
  auto run_rows = [&](int64_t first, std::vector<float>* worst) {
    for (int round = 0; round < 2; ++round) {
      for (int64_t m = first; m < first + 12; ++m) {
        auto a = randn(m * k, 22 + m);
        std::vector<float> c(static_cast<size_t>(m * n), 0.0f), ref(c.size(), 0.0f);
        gemm(c.data(), a.data(), b.data(), linear_shape(m, n, k, true));
        reference::gemm(ref.data(), a.data(), b.data(), m, n, k, true, 1.0f, false);
        worst->push_back(max_abs_diff(c, ref));
        EXPECT_LE(gemm_primitives_cached(), 4);
      }
    }
  };
  const int64_t created = gemm_primitives_created();
  std::vector<float> w1, w2;
  std::thread t([&] { run_rows(100, &w2); });
  run_rows(1, &w1);
  t.join();
  for (float d : w1) EXPECT_LT(d, 1e-4f);
  for (float d : w2) EXPECT_LT(d, 1e-4f);
  EXPECT_EQ(w1.size() + w2.size(), 48u);
  // The second round found its shapes evicted and created them again.
  EXPECT_GE(gemm_primitives_created() - created, 48);
  EXPECT_LE(gemm_primitives_cached(), 4);
  set_gemm_cache_limit(old);
}

TEST(GemmVariants, InvariantRowsDoNotDependOnTheirNeighbours) {
  // Inside a BatchInvariantScope a row's product has the same bits whatever rows are beside it
  // and wherever it sits: 40 rows alone, then at every offset among other rows (41 and 48 rows in
  // all), fp32 and bf16, plain and packed weights (whole or in chunks), short (k 128, 256) and chunked (k 700) reductions.
  // At every instruction-set level (the isa.* ctest entries run this under ILLADA_ISA caps).
  const BatchInvariantScope invariant;
  for (const int64_t n : {32, 64, 200}) {
    for (const int64_t k : {128, 256, 700}) {
      const auto b = randn(n * k, 5), rows = randn(40 * k, 6), other = randn(48 * k, 7);
      const auto b16 = to_bf16_vec(b);
      const PackedWeights packed(b16.data(), n, k, {{b16.data(), n}});
      const PackedWeights chunks(b16.data(), n, k, {}, WeightsLayout::kChunks);
      for (int kind = 0; kind < 4; ++kind) {  // fp32, bf16 plain, bf16 packed whole, in chunks
        auto product = [&](const std::vector<float>& a, int64_t m) {
          std::vector<float> c(static_cast<size_t>(m * n));
          if (kind == 0) {
            gemm(c.data(), a.data(), b.data(), linear_shape(m, n, k, false));
          } else if (kind == 1) {
            gemm(c.data(), to_bf16_vec(a).data(), b16.data(), linear_shape(m, n, k, false));
          } else {
            gemm(c.data(), to_bf16_vec(a).data(), kind == 2 ? packed : chunks, linear_shape(m, n, k, false));
          }
          return c;
        };
        const std::vector<float> alone = product(rows, 40);
        for (const int64_t m : {41, 48}) {
          for (int64_t off = 0; off + 40 <= m; off += (m == 48 ? 3 : 1)) {
            std::vector<float> a(other.begin(), other.begin() + m * k);
            std::copy(rows.begin(), rows.end(), a.begin() + off * k);
            const std::vector<float> c = product(a, m);
            EXPECT_EQ(std::memcmp(c.data() + off * n, alone.data(), alone.size() * sizeof(float)), 0)
                << "n " << n << " k " << k << " kind " << kind << ": 40 rows at " << off << " of " << m;
          }
        }
      }
    }
  }
}

TEST(GemmVariants, InvariantRowCountsSharePrimitives) {
  // A server's passes change row count with every mix of requests; inside the scope the counts
  // fall into buckets, so 17..47 rows of a fresh shape create a handful of primitives, not 31,
  // and every row still equals the reference product.
  const BatchInvariantScope invariant;
  const int64_t n = 72, k = 88;  // a shape no other test uses
  const auto b = randn(n * k, 31);
  const int64_t before = gemm_primitives_created();
  for (int64_t m = 17; m <= 47; ++m) {
    const auto a = randn(m * k, 32 + m);
    std::vector<float> c(static_cast<size_t>(m * n)), ref(c.size(), 0.0f);
    gemm(c.data(), a.data(), b.data(), linear_shape(m, n, k, false));
    reference::gemm(ref.data(), a.data(), b.data(), m, n, k, true, 1.0f, false);
    EXPECT_LT(max_abs_diff(c, ref), 1e-4f) << m << " rows";
  }
  EXPECT_LE(gemm_primitives_created() - before, 4);
}

}  // namespace
}  // namespace illada

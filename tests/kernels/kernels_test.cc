// Every optimised CPU kernel against its scalar twin in tests/kernels/reference.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/ops.h"
#include "kernels/gemm.h"
#include "reference/reference.h"
#include "util/rng.h"
#include "../test_util.h"

namespace illada {
namespace {

using test::max_abs_diff;
using test::randn;
using test::rounded;
using test::to_bf16_vec;

TEST(Gemm, Fp32MatchesReferenceInAllLayouts) {
  const int64_t m = 37, n = 53, k = 70;
  for (bool nk : {true, false}) {
    for (bool acc : {false, true}) {
      auto a = randn(m * k, 1), b = randn(n * k, 2), c0 = randn(m * n, 3);
      auto c = c0, ref = c0;
      gemm(c.data(), a.data(), b.data(),
           GemmShape{.m = m, .n = n, .k = k, .lda = k, .ldb = nk ? k : n, .ldc = n,
                     .b_is_nk = nk, .alpha = 0.5f, .accumulate = acc});
      reference::gemm(ref.data(), a.data(), b.data(), m, n, k, nk, 0.5f, acc);
      EXPECT_LT(max_abs_diff(c, ref), 1e-4f) << "nk=" << nk << " acc=" << acc;
    }
  }
}

TEST(Gemm, StridedOperandsReadOnlyTheirWindow) {
  // A is the middle 8 columns of a [5, 20] buffer; C is written into a [5, 12] buffer.
  const int64_t m = 5, n = 6, k = 8;
  auto abuf = randn(m * 20, 4), b = randn(n * k, 5);
  std::vector<float> a(m * k), cbuf(m * 12, 7.0f), ref(m * n);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t p = 0; p < k; ++p) a[i * k + p] = abuf[i * 20 + 3 + p];
  gemm(cbuf.data() + 2, abuf.data() + 3, b.data(),
       GemmShape{.m = m, .n = n, .k = k, .lda = 20, .ldb = k, .ldc = 12});
  reference::gemm(ref.data(), a.data(), b.data(), m, n, k, true, 1.0f, false);
  for (int64_t i = 0; i < m; ++i) {
    EXPECT_EQ(cbuf[i * 12 + 0], 7.0f);
    EXPECT_EQ(cbuf[i * 12 + 11], 7.0f);
    for (int64_t j = 0; j < n; ++j) EXPECT_NEAR(cbuf[i * 12 + 2 + j], ref[i * n + j], 1e-4f);
  }
}

TEST(Gemm, Bf16AccumulatesInFp32) {
  const int64_t m = 64, n = 96, k = 512;
  auto a = randn(m * k, 6), b = randn(n * k, 7);
  std::vector<float> c(m * n), ref(m * n);
  gemm(c.data(), to_bf16_vec(a).data(), to_bf16_vec(b).data(), linear_shape(m, n, k));
  // Exact products of the rounded inputs, summed in double: fp32 accumulation stays close.
  reference::gemm(ref.data(), rounded(a).data(), rounded(b).data(), m, n, k, true, 1.0f, false);
  EXPECT_LT(max_abs_diff(c, ref), 2e-3f);
}

TEST(Gemm, PackedBf16WeightsServeAnyRowCount) {
  for (auto [n, k] : {std::pair<int64_t, int64_t>{96, 512}, {37, 70}}) {
    auto b = randn(n * k, 30);
    const PackedWeights packed(to_bf16_vec(b).data(), n, k);
    EXPECT_GE(packed.bytes(), static_cast<size_t>(n * k * 2));
    for (int64_t m : {1, 7, 64}) {
      auto a = randn(m * k, 31), c0 = randn(m * n, 32);
      for (bool acc : {false, true}) {
        auto c = c0, ref = c0;
        gemm(c.data(), to_bf16_vec(a).data(), packed, linear_shape(m, n, k, acc));
        reference::gemm(ref.data(), rounded(a).data(), rounded(b).data(), m, n, k, true, 1.0f, acc);
        EXPECT_LT(max_abs_diff(c, ref), 2e-3f) << n << "x" << k << " m=" << m << " acc=" << acc;
      }
    }
  }
}

TEST(Gemm, PackedWeightsWithLongRowsSumTheirChunks) {
  // k > 512 packed whole (with its plain rows) or as chunks of 512 columns (the last one
  // shorter) summed in order: every form of the product (fp32 C, accumulated, bf16 C,
  // C = R + A·B), in and out of the batch-invariant scope, equals the reference product.
  const int64_t n = 40, k = 1100;
  auto b = randn(n * k, 40);
  const auto b16 = to_bf16_vec(b);
  for (const WeightsLayout layout : {WeightsLayout::kWhole, WeightsLayout::kChunks})
  for (bool invariant : {false, true}) {
    const PackedWeights packed(b16.data(), n, k, {{b16.data(), n}}, layout);
    EXPECT_GE(packed.bytes(), static_cast<size_t>(n * k * 2));
    const BatchInvariantScope scope(invariant);
    for (int64_t m : {1, 7, 64}) {
      auto a = randn(m * k, 41), c0 = randn(m * n, 42), r = randn(m * n, 43);
      const auto a16 = to_bf16_vec(a);
      for (bool acc : {false, true}) {
        auto c = c0, ref = c0;
        gemm(c.data(), a16.data(), packed, linear_shape(m, n, k, acc));
        reference::gemm(ref.data(), rounded(a).data(), rounded(b).data(), m, n, k, true, 1.0f, acc);
        EXPECT_LT(max_abs_diff(c, ref), 4e-3f) << "m=" << m << " acc=" << acc << " invariant=" << invariant;
      }
      std::vector<float> ref(m * n, 0.0f), c(m * n);
      reference::gemm(ref.data(), rounded(a).data(), rounded(b).data(), m, n, k, true, 1.0f, false);
      std::vector<bf16> c16(m * n);
      gemm(c16.data(), a16.data(), packed, linear_shape(m, n, k));
      for (int64_t i = 0; i < m * n; ++i) {
        EXPECT_NEAR(to_float(c16[i]), ref[i], 4e-3f + std::abs(ref[i]) / 128) << i << " bf16 C, m=" << m;
      }
      gemm_add(c.data(), a16.data(), packed, r.data(), linear_shape(m, n, k));
      for (int64_t i = 0; i < m * n; ++i) ref[i] += r[i];
      EXPECT_LT(max_abs_diff(c, ref), 4e-3f) << "R + A.B, m=" << m << " invariant=" << invariant;
    }
  }
}

TEST(Ops, RmsnormMatchesReference) {
  const int64_t rows = 9, d = 200;
  auto x = randn(rows * d, 8, 3.0f), w = randn(d, 9);
  std::vector<float> out(rows * d), ref(rows * d);
  cpu::rmsnorm(out.data(), x.data(), w.data(), rows, d, 1e-5f);
  reference::rmsnorm(ref.data(), x.data(), w.data(), rows, d, 1e-5f);
  EXPECT_LT(max_abs_diff(out, ref), 1e-5f);
}

TEST(Ops, RopeMatchesReference) {
  const int64_t rows = 11, heads = 3, hd = 32;
  auto x = randn(rows * heads * hd, 10);
  std::vector<int32_t> pos(rows);
  for (int64_t r = 0; r < rows; ++r) pos[r] = static_cast<int32_t>(r * 37 % 300);
  for (float theta : {10000.0f, 500000.0f}) {
    std::vector<float> table(300 * hd);
    cpu::rope_table(table.data(), 300, hd, theta);
    auto out = x, ref = x;
    cpu::rope(out.data(), heads * hd, pos.data(), rows, heads, hd, table.data());
    reference::rope(ref.data(), pos.data(), rows, heads, hd, theta);
    // fp32 angles at position ~300 carry ~1e-5 relative error, as in the PyTorch reference.
    EXPECT_LT(max_abs_diff(out, ref), 2e-4f) << theta;
    EXPECT_GT(max_abs_diff(out, x), 0.1f);  // it did rotate
  }
}

TEST(Ops, SwigluAndSoftmaxMatchReference) {
  const int64_t n = 1000;
  auto g = randn(n, 11, 4.0f), u = randn(n, 12);
  std::vector<float> out(n), ref(n);
  cpu::swiglu(out.data(), g.data(), u.data(), n);
  reference::swiglu(ref.data(), g.data(), u.data(), n);
  EXPECT_LT(max_abs_diff(out, ref), 1e-5f);

  auto x = randn(7 * 130, 13, 5.0f);
  auto s = x, sref = x;
  cpu::softmax_rows(s.data(), 130, 7, 130, 0.3f);
  reference::softmax_rows(sref.data(), 7, 130, 0.3f);
  EXPECT_LT(max_abs_diff(s, sref), 1e-6f);
}

struct AttnCase {
  int64_t heads, kv_heads, hd;
  std::vector<int32_t> lens;
};

void check_attention(const AttnCase& c, bool bf) {
  std::vector<int32_t> cu{0};
  for (int32_t l : c.lens) cu.push_back(cu.back() + l);
  const int64_t t = cu.back();
  auto q = randn(t * c.heads * c.hd, 14), k = randn(t * c.kv_heads * c.hd, 15),
       v = randn(t * c.kv_heads * c.hd, 16);
  std::vector<float> out(q.size(), NAN), ref(q.size());
  cpu::AttentionWorkspace ws;
  cpu::AttentionShape shape{.n_heads = c.heads, .n_kv_heads = c.kv_heads, .head_dim = c.hd,
                            .n_seqs = static_cast<int64_t>(c.lens.size()),
                            .cu_seqlens = cu.data(), .bf16 = bf};
  if (bf) {
    cpu::attention(out.data(), q.data(), k.data(), v.data(), shape, ws);
    reference::attention(ref.data(), rounded(q).data(), rounded(k).data(), rounded(v).data(),
                         c.heads, c.kv_heads, c.hd, cu.data(), shape.n_seqs);
    EXPECT_LT(max_abs_diff(out, ref), 2e-2f);  // probabilities are rounded to bf16
  } else {
    cpu::attention(out.data(), q.data(), k.data(), v.data(), shape, ws);
    reference::attention(ref.data(), q.data(), k.data(), v.data(), c.heads, c.kv_heads, c.hd,
                         cu.data(), shape.n_seqs);
    EXPECT_LT(max_abs_diff(out, ref), 1e-5f);
  }
}

TEST(Attention, PackedGqaMatchesReference) {
  for (bool bf : {false, true}) {
    check_attention({.heads = 4, .kv_heads = 4, .hd = 16, .lens = {7, 12, 5}}, bf);
    check_attention({.heads = 6, .kv_heads = 2, .hd = 32, .lens = {1, 33}}, bf);
  }
}

TEST(Attention, RunsOfEqualSequencesAreBatched) {
  for (bool bf : {false, true}) {
    check_attention({.heads = 4, .kv_heads = 2, .hd = 16, .lens = {5, 5, 5, 7, 7, 3}}, bf);
  }
}

TEST(Attention, LongSequenceUsesQueryBlocks) {
  // 2 heads x 1500^2 scores exceed one 4M-float block: the blocked path is exercised.
  check_attention({.heads = 2, .kv_heads = 1, .hd = 16, .lens = {1500, 3}}, false);
  check_attention({.heads = 2, .kv_heads = 1, .hd = 16, .lens = {1500}}, true);
}

TEST(Attention, SequencesDoNotSeeEachOther) {
  // Changing the second sequence's keys must leave the first sequence's output unchanged.
  const int64_t h = 2, hd = 8;
  std::vector<int32_t> cu{0, 4, 9};
  auto q = randn(9 * h * hd, 20), k = randn(9 * h * hd, 21), v = randn(9 * h * hd, 22);
  cpu::AttentionShape shape{.n_heads = h, .n_kv_heads = h, .head_dim = hd, .n_seqs = 2,
                            .cu_seqlens = cu.data()};
  cpu::AttentionWorkspace ws;
  std::vector<float> o1(q.size()), o2(q.size());
  cpu::attention(o1.data(), q.data(), k.data(), v.data(), shape, ws);
  for (size_t i = 4 * h * hd; i < k.size(); ++i) k[i] += 1.0f, v[i] -= 2.0f;
  cpu::attention(o2.data(), q.data(), k.data(), v.data(), shape, ws);
  for (size_t i = 0; i < 4 * h * hd; ++i) EXPECT_EQ(o1[i], o2[i]);
  EXPECT_GT(max_abs_diff(o1, o2), 0.1f);
}

}  // namespace
}  // namespace illada

#include "kernels/cpu/fast_math.h"

namespace illada {
namespace {

TEST(FastMath, ExpIsAccurateOverTheFp32Range) {
  double worst = 0;
  for (float x = -87.0f; x < 88.0f; x += 0.01237f) {
    const double want = std::exp(static_cast<double>(x));
    worst = std::max(worst, std::fabs(cpu::fast_exp(x) - want) / want);
  }
  EXPECT_LT(worst, 3e-7);
  EXPECT_EQ(cpu::fast_exp(-1000.0f), cpu::fast_exp(-87.3f));  // clamped, finite, tiny
  EXPECT_LT(cpu::fast_exp(-1000.0f), 1e-37f);
}

}  // namespace
}  // namespace illada

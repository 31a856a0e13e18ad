// The copies of the dispatched kernels, one per instruction-set level this CPU has (chosen in
// process with set_isa_cap), against the scalar twins; and the bf16 products below AVX-512,
// where they run as fp32 products on widened operands (kernels/onednn.h). ctest also runs every
// kernel test under ILLADA_ISA (CMakeLists.txt), which caps oneDNN too; this file checks the
// copies side by side in one process, with oneDNN at the CPU's own level.
#include <gtest/gtest.h>

#include <cmath>
#include <ostream>
#include <vector>

#include "../test_util.h"
#include "kernels/cpu/backward.h"
#include "kernels/cpu/bf16_ops.h"
#include "util/isa_dispatch.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu/task_gemm.h"
#include "kernels/gemm.h"
#include "kernels/onednn.h"
#include "reference/reference.h"
#include "reference/reference_backward.h"
#include "util/isa.h"

namespace illada {

// Test names and messages show the level's name.
void PrintTo(Isa isa, std::ostream* os) { *os << isa_name(isa); }

namespace {

using test::max_abs;
using test::max_abs_diff;
using test::randn;
using test::max_bf16_ulps;
using test::widen;
using test::rounded;
using test::to_bf16_vec;

std::vector<Isa> supported_levels() {
  std::vector<Isa> out;
  for (Isa i : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAvx512Bf16, Isa::kAmx}) {
    if (i <= isa_level()) out.push_back(i);
  }
  return out;
}

class IsaLevels : public ::testing::TestWithParam<Isa> {
 protected:
  void SetUp() override { previous_ = set_isa_cap(GetParam()); }
  void TearDown() override { set_isa_cap(previous_); }

 private:
  Isa previous_ = Isa::kScalar;
};

TEST_P(IsaLevels, DispatchFollowsTheCap) {
  const Isa level = GetParam();
  EXPECT_EQ(isa_level(), level);
#if ILLADA_MULTI_ISA
  EXPECT_EQ(isa_copy(), level >= Isa::kAvx512 ? 2 : level >= Isa::kAvx2 ? 1 : 0);
#else
  EXPECT_EQ(isa_copy(), 0);
#endif
  if (level < Isa::kAvx512) {
    EXPECT_FALSE(onednn::bf16_products());
  }
}

TEST_P(IsaLevels, ForwardOpsMatchTheTwins) {
  const int64_t rows = 9, d = 203;  // d: a tail after every vector width
  const auto x = randn(rows * d, 1, 3.0f), w = randn(d, 2);
  std::vector<float> out(rows * d), ref(rows * d);
  cpu::rmsnorm(out.data(), x.data(), w.data(), rows, d, 1e-5f);
  reference::rmsnorm(ref.data(), x.data(), w.data(), rows, d, 1e-5f);
  EXPECT_LT(max_abs_diff(out, ref), 1e-5f);
  std::vector<bf16> out16(rows * d);
  cpu::rmsnorm_bf16(out16.data(), x.data(), w.data(), rows, d, 1e-5f);
  EXPECT_LE(max_bf16_ulps(widen(out16), ref), 1.0f);

  const int64_t n = 1001;
  const auto g = randn(n, 3, 4.0f), u = randn(n, 4);
  std::vector<float> s(n), sref(n);
  cpu::swiglu(s.data(), g.data(), u.data(), n);
  reference::swiglu(sref.data(), g.data(), u.data(), n);
  EXPECT_LT(max_abs_diff(s, sref), 1e-5f);
  std::vector<bf16> s16(n);
  cpu::swiglu_bf16(s16.data(), g.data(), u.data(), n);
  EXPECT_LE(max_bf16_ulps(widen(s16), sref), 1.01f);

  const auto logits = randn(7 * 131, 5, 5.0f);
  auto p = logits, pref = logits, scratch = logits;
  cpu::softmax_rows(p.data(), 131, 7, 131, 0.3f);
  reference::softmax_rows(pref.data(), 7, 131, 0.3f);
  EXPECT_LT(max_abs_diff(p, pref), 1e-6f);
  std::vector<bf16> p16(p.size());
  cpu::softmax_rows_bf16(p16.data(), scratch.data(), 7, 131, 0.3f);
  EXPECT_LE(max_bf16_ulps(widen(p16), pref), 1.01f);

  const int64_t heads = 3, hd = 32;
  std::vector<int32_t> pos(rows);
  for (int64_t r = 0; r < rows; ++r) pos[r] = static_cast<int32_t>(r * 37 % 300);
  std::vector<float> table(300 * hd);
  cpu::rope_table(table.data(), 300, hd, 10000.0f);
  auto q = randn(rows * heads * hd, 6), qref = q;
  cpu::rope(q.data(), heads * hd, pos.data(), rows, heads, hd, table.data());
  reference::rope(qref.data(), pos.data(), rows, heads, hd, 10000.0f);
  EXPECT_LT(max_abs_diff(q, qref), 2e-4f);

  // NaN stays NaN in every copy (a vector clamp must not turn it into a finite value).
  std::vector<float> nan_row(40, 0.5f), gate(40, 1.0f), up(40, 2.0f);
  nan_row[17] = gate[39] = NAN;
  std::vector<bf16> o(40);
  cpu::softmax_rows_bf16(o.data(), nan_row.data(), 1, 40, 0.125f);
  for (const bf16 v : o) EXPECT_TRUE(std::isnan(to_float(v)));
  cpu::swiglu_bf16(o.data(), gate.data(), up.data(), 40);
  EXPECT_TRUE(std::isnan(to_float(o[39])));
  EXPECT_FALSE(std::isnan(to_float(o[0])));
}

TEST_P(IsaLevels, BackwardOpsMatchTheTwins) {
  const int64_t rows = 6, d = 77;
  const auto x = randn(rows * d, 11, 2.0f), w = randn(d, 12), dy = randn(rows * d, 13);
  std::vector<float> dx(rows * d), dw(d, 0.0f), dx_ref(rows * d), dw_ref(d, 0.0f);
  cpu::rmsnorm_backward(dx.data(), dw.data(), dy.data(), x.data(), w.data(), rows, d, 1e-5f,
                        false);
  reference::rmsnorm_backward(dx_ref.data(), dw_ref.data(), dy.data(), x.data(), w.data(), rows,
                              d, 1e-5f, false);
  EXPECT_LT(max_abs_diff(dx, dx_ref), 1e-4f);
  EXPECT_LT(max_abs_diff(dw, dw_ref), 1e-4f);

  const int64_t n = 515;
  const auto gate = randn(n, 14, 3.0f), up = randn(n, 15), dout = randn(n, 16);
  std::vector<float> dg(n), du(n), dg_ref(n), du_ref(n);
  cpu::swiglu_backward(dg.data(), du.data(), dout.data(), gate.data(), up.data(), n);
  reference::swiglu_backward(dg_ref.data(), du_ref.data(), dout.data(), gate.data(), up.data(),
                             n);
  EXPECT_LT(max_abs_diff(dg, dg_ref), 1e-4f);
  EXPECT_LT(max_abs_diff(du, du_ref), 1e-4f);

  const int64_t vocab = 301;
  const auto logits = randn(rows * vocab, 17, 4.0f);
  const std::vector<int32_t> targets = {0, 5, 300, 17, 17, 150};
  const std::vector<float> scale = {1.0f, 0.5f, 2.0f, 1.0f, 0.25f, 1.0f};
  std::vector<float> dl(logits.size()), dl_ref(logits.size()), loss(rows), loss_ref(rows);
  const double total = cpu::cross_entropy_backward(dl.data(), loss.data(), logits.data(),
                                                   targets.data(), scale.data(), rows, vocab);
  const double total_ref = reference::cross_entropy_backward(
      dl_ref.data(), loss_ref.data(), logits.data(), targets.data(), scale.data(), rows, vocab);
  EXPECT_NEAR(total, total_ref, 1e-4 * std::fabs(total_ref));
  EXPECT_LT(max_abs_diff(dl, dl_ref), 1e-5f);
  EXPECT_LT(max_abs_diff(loss, loss_ref), 1e-4f);
}

TEST_P(IsaLevels, Bf16ProductsMatchTheReference) {
  const int64_t m = 5, k = 2048, n = 700;  // 700 columns of k = 2048 span two fallback panels
  const auto a = randn(m * k, 21), b = randn(n * k, 22), c0 = randn(m * n, 23);
  const auto a16 = to_bf16_vec(a), b16 = to_bf16_vec(b);
  const float tol = 2e-3f * std::sqrt(static_cast<float>(k));
  for (bool nk : {true, false}) {
    for (bool acc : {false, true}) {
      auto c = c0, ref = c0;
      const GemmShape s{.m = m, .n = n, .k = k, .lda = k, .ldb = nk ? k : n, .ldc = n,
                        .b_is_nk = nk, .alpha = 0.5f, .accumulate = acc};
      gemm(c.data(), a16.data(), b16.data(), s);
      reference::gemm(ref.data(), rounded(a).data(), rounded(b).data(), m, n, k, nk, 0.5f, acc);
      EXPECT_LT(max_abs_diff(c, ref), tol) << "nk " << nk << " acc " << acc;
    }
  }
  std::vector<float> ref(m * n);
  reference::gemm(ref.data(), rounded(a).data(), rounded(b).data(), m, n, k, true, 1.0f, false);
  // Packed weights made at this level, a bf16 C, and a residual added in the store.
  const PackedWeights packed(b16.data(), n, k);
  std::vector<float> c(m * n);
  gemm(c.data(), a16.data(), packed, linear_shape(m, n, k));
  EXPECT_LT(max_abs_diff(c, ref), tol);
  std::vector<bf16> c16(m * n);
  gemm(c16.data(), a16.data(), b16.data(), linear_shape(m, n, k));
  EXPECT_LE(max_abs_diff(widen(c16), ref), tol + std::ldexp(max_abs(ref), -8));
  gemm_add(c.data(), a16.data(), b16.data(), c0.data(), linear_shape(m, n, k));
  for (int64_t i = 0; i < m * n; ++i) ASSERT_NEAR(c[i], c0[i] + ref[i], tol) << i;

  // A read transposed, a batch of two, and attention's per-task products.
  const int64_t bm = 17, bn = 24, bk = 40;
  const auto x = randn(2 * bm * bk, 24), y = randn(2 * bn * bk, 25);
  const auto x16 = to_bf16_vec(x), y16 = to_bf16_vec(y);
  std::vector<float> got(2 * bm * bn), want(2 * bm * bn);
  gemm_batched(got.data(), x16.data(), y16.data(), linear_shape(bm, bn, bk),
               GemmBatch{.count = 2, .a = bm * bk, .b = bn * bk, .c = bm * bn});
  for (int64_t i = 0; i < 2; ++i) {
    reference::gemm(want.data() + i * bm * bn, rounded(x).data() + i * bm * bk,
                    rounded(y).data() + i * bn * bk, bm, bn, bk, true, 1.0f, false);
  }
  EXPECT_LT(max_abs_diff(got, want), 1e-3f);
  std::vector<float> xt(bm * bk);  // x's first matrix stored [k, m]
  for (int64_t i = 0; i < bm; ++i)
    for (int64_t p = 0; p < bk; ++p) xt[p * bm + i] = x[i * bk + p];
  std::vector<float> at(bm * bn);
  gemm_at(at.data(), to_bf16_vec(xt).data(), y16.data(),
          GemmShape{.m = bm, .n = bn, .k = bk, .lda = bm, .ldb = bk, .ldc = bn});
  EXPECT_LT(max_abs_diff(at, std::vector<float>(want.begin(), want.begin() + bm * bn)), 1e-3f);
  Buffer<uint8_t> scratch;
  cpu::prepare_task_product(bm, bn, bk, cpu::TaskProductKind::kScores);
  std::vector<float> task(bm * bn);
  cpu::run_task_product(task.data(), x16.data(), y16.data(), bm, bn, bk,
                        cpu::TaskProductKind::kScores, scratch);
  EXPECT_LT(max_abs_diff(task, std::vector<float>(want.begin(), want.begin() + bm * bn)), 1e-3f);
}

INSTANTIATE_TEST_SUITE_P(Levels, IsaLevels, ::testing::ValuesIn(supported_levels()),
                         [](const ::testing::TestParamInfo<Isa>& info) {
                           return std::string(isa_name(info.param));
                         });

}  // namespace
}  // namespace illada

// The bf16-operand kernels of the training backward: attention_backward_heads against the
// scalar reference gradient, and the kernels that round their output (rope_backward_heads,
// the bf16 overloads of rmsnorm_backward and swiglu_backward) against their fp32 versions.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/cpu/backward.h"
#include "kernels/cpu/bf16_ops.h"
#include "kernels/cpu/ops.h"
#include "reference/reference.h"
#include "reference/reference_backward.h"
#include "util/bf16.h"
#include "../test_util.h"

namespace illada {
namespace {

using test::max_abs;
using test::max_abs_diff;
using test::rounded;

std::vector<float> randn(size_t n, uint64_t stream) { return test::randn(n, stream, 1.0f, 778); }

// Head-major [heads, ld_rows, hd] -> rows [rows, heads*hd].
std::vector<float> to_rows(const std::vector<float>& x, int64_t ld_rows, int64_t rows,
                           int64_t heads, int64_t hd) {
  std::vector<float> out(static_cast<size_t>(rows * heads * hd));
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t i = 0; i < hd; ++i) out[(r * heads + h) * hd + i] = x[(h * ld_rows + r) * hd + i];
  return out;
}

struct HeadsCase {
  int64_t n_heads, n_kv, hd;
  std::vector<int32_t> cu;
  int64_t block_rows;
};

class AttentionBackwardHeads : public ::testing::TestWithParam<HeadsCase> {};

TEST_P(AttentionBackwardHeads, MatchesReferenceOnRoundedOperands) {
  const HeadsCase c = GetParam();
  const int64_t t = c.cu.back(), n_seqs = static_cast<int64_t>(c.cu.size()) - 1;
  const int64_t ld = t + 3;  // head stride in rows larger than the rows used
  const int64_t qd = c.n_heads * c.hd, kvd = c.n_kv * c.hd;
  const auto q = rounded(randn(t * qd, 30)), k = rounded(randn(t * kvd, 31));
  const auto v = rounded(randn(t * kvd, 32)), dout = randn(t * qd, 33);
  std::vector<bf16> q16(c.n_heads * ld * c.hd), k16(c.n_kv * ld * c.hd), v16(c.n_kv * ld * c.hd);
  cpu::to_bf16_heads(q16.data(), ld, q.data(), qd, t, c.n_heads, c.hd);
  cpu::to_bf16_heads(k16.data(), ld, k.data(), kvd, t, c.n_kv, c.hd);
  cpu::to_bf16_heads(v16.data(), ld, v.data(), kvd, t, c.n_kv, c.hd);
  std::vector<float> out(t * qd);
  reference::attention(out.data(), q.data(), k.data(), v.data(), c.n_heads, c.n_kv, c.hd,
                       c.cu.data(), n_seqs);
  std::vector<bf16> out16(out.size());
  to_bf16(out16.data(), out.data(), static_cast<long>(out.size()));
  std::vector<float> dq(c.n_heads * ld * c.hd, NAN), dk(c.n_kv * ld * c.hd, NAN);
  std::vector<float> dv(c.n_kv * ld * c.hd, NAN);
  cpu::AttentionBackwardWorkspace ws;
  cpu::attention_backward_heads(dq.data(), dk.data(), dv.data(), dout.data(), q16.data(),
                                k16.data(), v16.data(), out16.data(), ld,
                                {.n_heads = c.n_heads, .n_kv_heads = c.n_kv, .head_dim = c.hd,
                                 .n_seqs = n_seqs, .cu_seqlens = c.cu.data(), .bf16 = true,
                                 .block_rows = c.block_rows},
                                ws);
  std::vector<float> dq_ref(t * qd), dk_ref(t * kvd), dv_ref(t * kvd);
  reference::attention_backward(dq_ref.data(), dk_ref.data(), dv_ref.data(), dout.data(),
                                q.data(), k.data(), v.data(), c.n_heads, c.n_kv, c.hd,
                                c.cu.data(), n_seqs);
  // bf16 products (dO, P, dS and O rounded, rel. 2^-8 each), as attention_backward's bf16 mode.
  const float tol = 2e-2f;
  EXPECT_LT(max_abs_diff(to_rows(dq, ld, t, c.n_heads, c.hd), dq_ref), tol * max_abs(dq_ref));
  EXPECT_LT(max_abs_diff(to_rows(dk, ld, t, c.n_kv, c.hd), dk_ref), tol * max_abs(dk_ref));
  EXPECT_LT(max_abs_diff(to_rows(dv, ld, t, c.n_kv, c.hd), dv_ref), tol * max_abs(dv_ref));
}

INSTANTIATE_TEST_SUITE_P(Shapes, AttentionBackwardHeads,
                         ::testing::Values(HeadsCase{4, 4, 16, {0, 9, 30, 35}, 0},
                                           HeadsCase{4, 2, 16, {0, 9, 30, 35}, 0},
                                           HeadsCase{8, 2, 32, {0, 40, 41, 100}, 7},
                                           HeadsCase{4, 1, 16, {0, 23}, 5}));

TEST(RopeBackwardHeads, RoundsRopeBackwardAndCopiesWithoutTable) {
  const int64_t rows = 11, heads = 3, hd = 32, ld = rows + 2;
  auto xh = randn(heads * ld * hd, 34);
  std::vector<int32_t> pos(rows);
  for (int64_t r = 0; r < rows; ++r) pos[r] = static_cast<int32_t>(r * 37 % 300);
  std::vector<float> table(300 * hd);
  cpu::rope_table(table.data(), 300, hd, 500000.0f);
  std::vector<bf16> out(rows * heads * hd), plain(rows * heads * hd);
  cpu::rope_backward_heads(out.data(), xh.data(), ld, pos.data(), rows, heads, hd, table.data());
  cpu::rope_backward_heads(plain.data(), xh.data(), ld, pos.data(), rows, heads, hd, nullptr);
  auto ref = to_rows(xh, ld, rows, heads, hd);
  const auto copy = ref;
  cpu::rope_backward(ref.data(), heads * hd, pos.data(), rows, heads, hd, table.data());
  for (size_t i = 0; i < ref.size(); ++i) {
    EXPECT_EQ(out[i].bits, to_bf16(ref[i]).bits) << i;
    EXPECT_EQ(plain[i].bits, to_bf16(copy[i]).bits) << i;
  }
  // With a wider output row stride: the same values in columns [5, 5 + heads*hd), the rest
  // untouched.
  const int64_t ldo = heads * hd + 9;
  std::vector<bf16> wide(rows * ldo, to_bf16(7.0f));
  cpu::rope_backward_heads(wide.data() + 5, ldo, xh.data(), ld, pos.data(), rows, heads, hd,
                           table.data());
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < ldo; ++i) {
      const bool in = i >= 5 && i < 5 + heads * hd;
      EXPECT_EQ(wide[r * ldo + i].bits,
                in ? out[r * heads * hd + i - 5].bits : to_bf16(7.0f).bits)
          << r << "," << i;
    }
  }
}

TEST(Bf16Backward, RmsnormAndSwigluRoundTheirFp32Results) {
  const int64_t rows = 9, d = 200, n = rows * d;
  const auto x = randn(n, 35), dy = randn(n, 36), w = randn(d, 37), dx0 = randn(n, 38);
  auto dx = dx0, dx_ref = dx0;
  std::vector<float> dw(d, 0.5f), dw_ref(d, 0.5f);
  std::vector<bf16> dx16(n);
  cpu::rmsnorm_backward(dx.data(), dx16.data(), dw.data(), dy.data(), x.data(), w.data(), rows,
                        d, 1e-5f, true);
  cpu::rmsnorm_backward(dx_ref.data(), dw_ref.data(), dy.data(), x.data(), w.data(), rows, d,
                        1e-5f, true);
  EXPECT_EQ(dx, dx_ref);
  EXPECT_EQ(dw, dw_ref);
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(dx16[i].bits, to_bf16(dx[i]).bits) << i;

  const auto g = randn(n, 39), u = randn(n, 40);
  std::vector<float> dg(n), du(n);
  std::vector<bf16> dg16(n), du16(n);
  cpu::swiglu_backward(dg.data(), du.data(), dy.data(), g.data(), u.data(), n);
  cpu::swiglu_backward(dg16.data(), du16.data(), dy.data(), g.data(), u.data(), n);
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_EQ(dg16[i].bits, to_bf16(dg[i]).bits) << i;
    ASSERT_EQ(du16[i].bits, to_bf16(du[i]).bits) << i;
  }
}

TEST(Bf16Backward, SwigluRowsMatchesSeparateGateAndUp) {
  const int64_t rows = 7, n = 150;
  const auto g = randn(rows * n, 41), u = randn(rows * n, 42), dy = randn(rows * n, 43);
  std::vector<float> gu(rows * 2 * n);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < n; ++i) {
      gu[r * 2 * n + i] = g[r * n + i];
      gu[r * 2 * n + n + i] = u[r * n + i];
    }
  }
  std::vector<bf16> dg16(rows * n), du16(rows * n), dgu(rows * 2 * n);
  cpu::swiglu_backward(dg16.data(), du16.data(), dy.data(), g.data(), u.data(), rows * n);
  cpu::swiglu_backward_rows(dgu.data(), dy.data(), gu.data(), rows, n);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_EQ(dgu[r * 2 * n + i].bits, dg16[r * n + i].bits) << r << "," << i;
      ASSERT_EQ(dgu[r * 2 * n + n + i].bits, du16[r * n + i].bits) << r << "," << i;
    }
  }
  // From bf16 dout and gu (products' bf16 outputs): the same as from their widened values.
  const auto dy16 = test::to_bf16_vec(dy), gu16 = test::to_bf16_vec(gu);
  std::vector<bf16> from16(rows * 2 * n), from_w(rows * 2 * n);
  cpu::swiglu_backward_rows(from16.data(), dy16.data(), gu16.data(), rows, n);
  cpu::swiglu_backward_rows(from_w.data(), rounded(dy).data(), rounded(gu).data(), rows, n);
  for (int64_t i = 0; i < rows * 2 * n; ++i) ASSERT_EQ(from16[i].bits, from_w[i].bits) << i;
}

}  // namespace
}  // namespace illada

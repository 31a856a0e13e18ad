// Every CPU backward kernel against its scalar twin (tests/kernels/reference/reference_backward.h),
// and the twins themselves against finite differences of the forward twins.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/backward.h"
#include "kernels/cpu/ops.h"
#include "reference/reference.h"
#include "reference/reference_backward.h"
#include "util/bf16.h"
#include "util/rng.h"
#include "../test_util.h"

namespace illada {
namespace {

using test::max_abs;
using test::max_abs_diff;

std::vector<float> randn(size_t n, uint64_t stream, float scale = 1.0f) {
  return test::randn(n, stream, scale, /*seed=*/777);
}

double dot(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0.0;
  for (size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

TEST(RmsnormBackward, MatchesReferenceAndAccumulates) {
  const int64_t rows = 67, d = 200;  // d not a multiple of the column block
  auto x = randn(rows * d, 1), w = randn(d, 2), dy = randn(rows * d, 3);
  for (bool acc : {false, true}) {
    auto dx = randn(rows * d, 4), dx_ref = dx;
    auto dw = randn(d, 5), dw_ref = dw;
    cpu::rmsnorm_backward(dx.data(), dw.data(), dy.data(), x.data(), w.data(), rows, d, 1e-5f, acc);
    reference::rmsnorm_backward(dx_ref.data(), dw_ref.data(), dy.data(), x.data(), w.data(), rows,
                                d, 1e-5f, acc);
    EXPECT_LT(max_abs_diff(dx, dx_ref), 1e-5f * max_abs(dx_ref)) << acc;
    EXPECT_LT(max_abs_diff(dw, dw_ref), 1e-5f * max_abs(dw_ref)) << acc;
  }
}

TEST(RmsnormBackward, ReferenceMatchesFiniteDifferences) {
  const int64_t rows = 3, d = 8;
  auto x = randn(rows * d, 6), w = randn(d, 7), dy = randn(rows * d, 8);
  std::vector<float> dx(rows * d), dw(d, 0.0f), y(rows * d);
  reference::rmsnorm_backward(dx.data(), dw.data(), dy.data(), x.data(), w.data(), rows, d, 1e-5f,
                              false);
  auto loss = [&](const std::vector<float>& xx, const std::vector<float>& ww) {
    reference::rmsnorm(y.data(), xx.data(), ww.data(), rows, d, 1e-5f);
    return dot(y, dy);
  };
  const float h = 1e-2f;
  for (int64_t i = 0; i < rows * d; ++i) {
    auto xp = x, xm = x;
    xp[i] += h;
    xm[i] -= h;
    EXPECT_NEAR((loss(xp, w) - loss(xm, w)) / (2 * h), dx[i], 2e-3) << i;
  }
  for (int64_t i = 0; i < d; ++i) {
    auto wp = w, wm = w;
    wp[i] += h;
    wm[i] -= h;
    EXPECT_NEAR((loss(x, wp) - loss(x, wm)) / (2 * h), dw[i], 2e-3) << i;
  }
}

TEST(RopeBackward, MatchesReferenceAndInvertsForward) {
  const int64_t rows = 40, heads = 3, hd = 16;
  std::vector<int32_t> pos(rows);
  for (int64_t r = 0; r < rows; ++r) pos[r] = static_cast<int32_t>((r * 7) % 50);
  std::vector<float> table(64 * hd);
  cpu::rope_table(table.data(), 64, hd, 10000.0f);
  auto g = randn(rows * heads * hd, 9), g_ref = g;
  cpu::rope_backward(g.data(), heads * hd, pos.data(), rows, heads, hd, table.data());
  reference::rope_backward(g_ref.data(), pos.data(), rows, heads, hd, 10000.0f);
  EXPECT_LT(max_abs_diff(g, g_ref), 1e-4f);
  // The rotation is orthogonal: its transpose undoes it.
  auto x = randn(rows * heads * hd, 10), y = x;
  cpu::rope(y.data(), heads * hd, pos.data(), rows, heads, hd, table.data());
  cpu::rope_backward(y.data(), heads * hd, pos.data(), rows, heads, hd, table.data());
  EXPECT_LT(max_abs_diff(x, y), 1e-5f);
}

TEST(SwigluBackward, MatchesReferenceAndFiniteDifferences) {
  const int64_t n = 1000;
  auto gate = randn(n, 11, 3.0f), up = randn(n, 12), dout = randn(n, 13);
  std::vector<float> dg(n), du(n), dg_ref(n), du_ref(n);
  cpu::swiglu_backward(dg.data(), du.data(), dout.data(), gate.data(), up.data(), n);
  reference::swiglu_backward(dg_ref.data(), du_ref.data(), dout.data(), gate.data(), up.data(), n);
  EXPECT_LT(max_abs_diff(dg, dg_ref), 1e-5f * max_abs(dg_ref));
  EXPECT_LT(max_abs_diff(du, du_ref), 1e-5f * max_abs(du_ref));
  // In place over dout.
  auto inplace = dout;
  cpu::swiglu_backward(inplace.data(), du.data(), inplace.data(), gate.data(), up.data(), n);
  EXPECT_LT(max_abs_diff(inplace, dg_ref), 1e-5f * max_abs(dg_ref));
  for (int64_t i = 0; i < 20; ++i) {
    const double h = 1e-3, g = gate[i];
    auto f = [&](double x) { return x / (1.0 + std::exp(-x)) * up[i] * dout[i]; };
    EXPECT_NEAR((f(g + h) - f(g - h)) / (2 * h), dg_ref[i], 1e-4);
  }
}

TEST(CrossEntropyBackward, MatchesReferenceInPlace) {
  const int64_t rows = 33, n = 517;
  auto logits = randn(rows * n, 14, 4.0f);
  std::vector<int32_t> tgt(rows);
  std::vector<float> scale(rows);
  for (int64_t r = 0; r < rows; ++r) {
    tgt[r] = static_cast<int32_t>((r * 131) % n);
    scale[r] = 0.5f + static_cast<float>(r) / rows;
  }
  std::vector<float> d_ref(rows * n), loss_ref(rows), loss(rows);
  const double ref = reference::cross_entropy_backward(d_ref.data(), loss_ref.data(), logits.data(),
                                                       tgt.data(), scale.data(), rows, n);
  auto d = logits;
  const double got = cpu::cross_entropy_backward(d.data(), loss.data(), d.data(), tgt.data(),
                                                 scale.data(), rows, n);
  EXPECT_NEAR(got, ref, 1e-5 * std::fabs(ref));
  EXPECT_LT(max_abs_diff(loss, loss_ref), 1e-4f);
  EXPECT_LT(max_abs_diff(d, d_ref), 1e-6f);
  // Each gradient row sums to zero (softmax minus one-hot).
  for (int64_t r = 0; r < rows; ++r) {
    double s = 0.0;
    for (int64_t i = 0; i < n; ++i) s += d[r * n + i];
    EXPECT_NEAR(s, 0.0, 1e-5);
  }
}

TEST(EmbeddingBackward, ScatterAddsRepeatedIds) {
  const int64_t rows = 50, d = 130, vocab = 9;
  auto dx = randn(rows * d, 15);
  std::vector<int32_t> ids(rows);
  for (int64_t r = 0; r < rows; ++r) ids[r] = static_cast<int32_t>((r * r) % vocab);
  auto dw = randn(vocab * d, 16), dw_ref = dw;
  cpu::embedding_backward(dw.data(), dx.data(), ids.data(), rows, d);
  reference::embedding_backward(dw_ref.data(), dx.data(), ids.data(), rows, d);
  EXPECT_EQ(max_abs_diff(dw, dw_ref), 0.0f);  // same order of additions
}

struct AttnCase {
  int64_t n_heads, n_kv, hd;
  std::vector<int32_t> cu;
  bool bf16;
  int64_t block_rows;
};

class AttentionBackward : public ::testing::TestWithParam<AttnCase> {};

TEST_P(AttentionBackward, MatchesReference) {
  const AttnCase c = GetParam();
  const int64_t t = c.cu.back(), n_seqs = static_cast<int64_t>(c.cu.size()) - 1;
  const int64_t qd = c.n_heads * c.hd, kvd = c.n_kv * c.hd;
  auto q = randn(t * qd, 20), k = randn(t * kvd, 21), v = randn(t * kvd, 22);
  auto dout = randn(t * qd, 23);
  std::vector<float> out(t * qd);
  cpu::AttentionWorkspace fws;
  cpu::attention(out.data(), q.data(), k.data(), v.data(),
                 cpu::AttentionShape{.n_heads = c.n_heads, .n_kv_heads = c.n_kv, .head_dim = c.hd,
                                     .n_seqs = n_seqs, .cu_seqlens = c.cu.data()},
                 fws);
  std::vector<float> dq(t * qd, NAN), dk(t * kvd, NAN), dv(t * kvd, NAN);
  std::vector<float> dq_ref(t * qd), dk_ref(t * kvd), dv_ref(t * kvd);
  cpu::AttentionBackwardWorkspace ws;
  cpu::attention_backward(dq.data(), dk.data(), dv.data(), dout.data(), q.data(), k.data(),
                          v.data(), out.data(),
                          {.n_heads = c.n_heads, .n_kv_heads = c.n_kv, .head_dim = c.hd,
                           .n_seqs = n_seqs, .cu_seqlens = c.cu.data(), .bf16 = c.bf16,
                           .block_rows = c.block_rows},
                          ws);
  reference::attention_backward(dq_ref.data(), dk_ref.data(), dv_ref.data(), dout.data(), q.data(),
                                k.data(), v.data(), c.n_heads, c.n_kv, c.hd, c.cu.data(), n_seqs);
  // fp32: summation order only. bf16: products of bf16-rounded operands (rel. 2^-8 each).
  const float tol = c.bf16 ? 2e-2f : 2e-5f;
  EXPECT_LT(max_abs_diff(dq, dq_ref), tol * max_abs(dq_ref));
  EXPECT_LT(max_abs_diff(dk, dk_ref), tol * max_abs(dk_ref));
  EXPECT_LT(max_abs_diff(dv, dv_ref), tol * max_abs(dv_ref));
}

INSTANTIATE_TEST_SUITE_P(
    Shapes, AttentionBackward,
    ::testing::Values(AttnCase{4, 4, 16, {0, 9, 30, 35}, false, 0},
                      AttnCase{4, 2, 16, {0, 9, 30, 35}, false, 0},
                      AttnCase{8, 2, 32, {0, 40, 41, 100}, false, 7},  // several blocks
                      AttnCase{4, 1, 16, {0, 23}, false, 5},
                      AttnCase{4, 2, 16, {0, 9, 30, 35}, true, 0},
                      AttnCase{8, 2, 32, {0, 40, 41, 100}, true, 7}));

TEST(AttentionBackwardReference, MatchesFiniteDifferences) {
  const int64_t nh = 2, nkv = 1, hd = 4;
  const std::vector<int32_t> cu = {0, 3, 5};
  const int64_t t = 5, qd = nh * hd, kvd = nkv * hd;
  auto q = randn(t * qd, 30), k = randn(t * kvd, 31), v = randn(t * kvd, 32);
  auto dout = randn(t * qd, 33);
  std::vector<float> dq(t * qd), dk(t * kvd), dv(t * kvd), out(t * qd);
  reference::attention_backward(dq.data(), dk.data(), dv.data(), dout.data(), q.data(), k.data(),
                                v.data(), nh, nkv, hd, cu.data(), 2);
  auto loss = [&] {
    reference::attention(out.data(), q.data(), k.data(), v.data(), nh, nkv, hd, cu.data(), 2);
    return dot(out, dout);
  };
  const float h = 1e-2f;
  auto check = [&](std::vector<float>& x, const std::vector<float>& g, const char* what) {
    for (size_t i = 0; i < x.size(); ++i) {
      const float x0 = x[i];
      x[i] = x0 + h;
      const double lp = loss();
      x[i] = x0 - h;
      const double lm = loss();
      x[i] = x0;
      EXPECT_NEAR((lp - lm) / (2 * h), g[i], 2e-3) << what << " " << i;
    }
  };
  check(q, dq, "q");
  check(k, dk, "k");
  check(v, dv, "v");
}

}  // namespace
}  // namespace illada

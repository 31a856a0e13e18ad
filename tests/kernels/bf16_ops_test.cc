// The fused bf16-output kernels of the inference forward against their scalar
// twins in tests/kernels/reference followed by one rounding to bf16.
#include "kernels/cpu/bf16_ops.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "../test_util.h"
#include "kernels/cpu/attention_bf16.h"
#include "kernels/cpu/ops.h"
#include "reference/reference.h"

namespace illada {
namespace {

using test::max_abs_diff;
using test::randn;
using test::max_bf16_ulps;
using test::widen;
using test::rounded;
using test::to_bf16_vec;

TEST(Bf16Ops, RmsnormRoundsTheReference) {
  const int64_t rows = 9, d = 200;
  auto x = randn(rows * d, 40, 3.0f), w = randn(d, 41);
  std::vector<bf16> out(rows * d);
  std::vector<float> ref(rows * d);
  cpu::rmsnorm_bf16(out.data(), x.data(), w.data(), rows, d, 1e-5f);
  reference::rmsnorm(ref.data(), x.data(), w.data(), rows, d, 1e-5f);
  EXPECT_LE(max_bf16_ulps(widen(out), ref), 1.0f);
}

// Row r, head h of a head-major [heads, out_rows, hd] buffer, widened.
std::vector<float> row_major(const std::vector<bf16>& hm, int64_t out_rows, int64_t rows,
                             int64_t heads, int64_t hd) {
  std::vector<float> out(rows * heads * hd);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < hd; ++i)
        out[(r * heads + h) * hd + i] = to_float(hm[(h * out_rows + r) * hd + i]);
  return out;
}

TEST(Bf16Ops, RopeWritesHeadMajorAndLeavesTheInputAlone) {
  // q of a fused [rows, 3 * 96] buffer: row stride 288, into head-major rows
  // of 13.
  const int64_t rows = 11, heads = 3, hd = 32, ld = 3 * heads * hd, out_rows = 13;
  auto buf = randn(rows * ld, 42);
  const auto before = buf;
  std::vector<int32_t> pos(rows);
  for (int64_t r = 0; r < rows; ++r) pos[r] = static_cast<int32_t>(r * 37 % 300);
  std::vector<float> table(300 * hd);
  cpu::rope_table(table.data(), 300, hd, 500000.0f);
  std::vector<bf16> out(heads * out_rows * hd);
  cpu::rope_bf16_heads(out.data(), out_rows, buf.data() + 5, ld, pos.data(), rows, heads, hd,
                       table.data());
  std::vector<float> ref(rows * heads * hd), plain(ref.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t i = 0; i < heads * hd; ++i) ref[r * heads * hd + i] = buf[r * ld + 5 + i];
  plain = ref;
  reference::rope(ref.data(), pos.data(), rows, heads, hd, 500000.0f);
  EXPECT_EQ(buf, before);
  const auto got = row_major(out, out_rows, rows, heads, hd);
  // RoPE's fp32 angles differ from the double twin by ~1e-5 relative (see
  // kernels_test).
  EXPECT_LT(max_abs_diff(got, ref), 2e-2f);
  EXPECT_LE(max_bf16_ulps(got, ref), 1.5f);

  std::vector<bf16> vh(heads * out_rows * hd);
  cpu::to_bf16_heads(vh.data(), out_rows, buf.data() + 5, ld, rows, heads, hd);
  EXPECT_EQ(row_major(vh, out_rows, rows, heads, hd), rounded(plain));

  // From bf16 rows (a product's bf16 output): the same as from their widened values.
  const auto buf16 = to_bf16_vec(buf);
  const auto wide = rounded(buf);
  std::vector<bf16> from16(out.size()), from_w(out.size());
  cpu::rope_bf16_heads(from16.data(), out_rows, buf16.data() + 5, ld, pos.data(), rows, heads, hd,
                       table.data());
  cpu::rope_bf16_heads(from_w.data(), out_rows, wide.data() + 5, ld, pos.data(), rows, heads, hd,
                       table.data());
  EXPECT_EQ(row_major(from16, out_rows, rows, heads, hd), row_major(from_w, out_rows, rows, heads, hd));
  cpu::to_bf16_heads(from16.data(), out_rows, buf16.data() + 5, ld, rows, heads, hd);
  EXPECT_EQ(row_major(from16, out_rows, rows, heads, hd), rounded(plain));
}

TEST(Bf16Ops, SwigluAndSoftmaxRoundTheReference) {
  const int64_t n = 1000;
  auto g = randn(n, 43, 4.0f), u = randn(n, 44);
  std::vector<bf16> out(n);
  std::vector<float> ref(n);
  cpu::swiglu_bf16(out.data(), g.data(), u.data(), n);
  reference::swiglu(ref.data(), g.data(), u.data(), n);
  EXPECT_LE(max_bf16_ulps(widen(out), ref), 1.01f);

  // From bf16 rows [gate | up]: the same as from the widened values, row by row.
  const int64_t rows = 5, half = n / rows;
  const auto gu16 = to_bf16_vec(randn(rows * 2 * half, 47, 4.0f));
  const auto gu = widen(gu16);
  std::vector<bf16> out16(rows * half), out_w(half);
  cpu::swiglu_bf16_rows(out16.data(), gu16.data(), rows, half);
  for (int64_t r = 0; r < rows; ++r) {
    cpu::swiglu_bf16(out_w.data(), gu.data() + r * 2 * half, gu.data() + r * 2 * half + half, half);
    for (int64_t i = 0; i < half; ++i) ASSERT_EQ(out16[r * half + i].bits, out_w[i].bits) << r << "," << i;
  }

  auto x = randn(7 * 130, 45, 5.0f);
  auto sref = x;
  std::vector<bf16> p(x.size());
  cpu::softmax_rows_bf16(p.data(), x.data(), 7, 130, 0.3f);
  reference::softmax_rows(sref.data(), 7, 130, 0.3f);
  EXPECT_LE(max_bf16_ulps(widen(p), sref), 1.01f);
}

struct RowsCase {
  int64_t heads, kv_heads, hd;
  std::vector<int32_t> lens;
};

// Head-major [heads, rows, hd] bf16 copy of row-major [rows, heads*hd] values.
std::vector<bf16> head_major(const std::vector<float>& x, int64_t rows, int64_t heads, int64_t hd) {
  std::vector<bf16> out(x.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < hd; ++i)
        out[(h * rows + r) * hd + i] = to_bf16(x[(r * heads + h) * hd + i]);
  return out;
}

// attention_bf16_heads against the reference on the same rounded inputs.
void check_rows_attention(const RowsCase& c) {
  std::vector<int32_t> cu{0};
  for (int32_t l : c.lens) cu.push_back(cu.back() + l);
  const int64_t t = cu.back(), qd = c.heads * c.hd, kvd = c.kv_heads * c.hd;
  auto q = rounded(randn(t * qd, 46)), k = rounded(randn(t * kvd, 47)),
       v = rounded(randn(t * kvd, 48));
  const auto q16 = head_major(q, t, c.heads, c.hd), k16 = head_major(k, t, c.kv_heads, c.hd),
             v16 = head_major(v, t, c.kv_heads, c.hd);
  std::vector<bf16> out(t * qd);
  std::vector<float> ref(t * qd);
  cpu::Bf16AttentionWorkspace ws;
  const cpu::AttentionShape shape{.n_heads = c.heads,
                                  .n_kv_heads = c.kv_heads,
                                  .head_dim = c.hd,
                                  .n_seqs = static_cast<int64_t>(c.lens.size()),
                                  .cu_seqlens = cu.data(),
                                  .bf16 = true};
  for (int rep = 0; rep < 2; ++rep) {  // a reused workspace gives the same result
    cpu::attention_bf16_heads(out.data(), q16.data(), t, k16.data(), v16.data(), t, shape, ws);
    reference::attention(ref.data(), q.data(), k.data(), v.data(), c.heads, c.kv_heads, c.hd,
                         cu.data(), shape.n_seqs);
    EXPECT_LT(max_abs_diff(widen(out), ref),
              3e-2f);  // probabilities and output are rounded
  }
  // The head-major kernel with the same roundings agrees to the output's own
  // rounding (a sum in another order may flip the rounding of a probability,
  // hence a margin).
  std::vector<float> hm(t * qd);
  cpu::AttentionWorkspace hws;
  cpu::attention(hm.data(), q.data(), k.data(), v.data(), shape, hws);
  EXPECT_LT(max_abs_diff(widen(out), hm), 2.0f * std::ldexp(test::max_abs(hm), -8));
}

TEST(RowAttention, MhaGqaAndPackedSequences) {
  check_rows_attention({.heads = 4, .kv_heads = 4, .hd = 16, .lens = {7, 12, 5}});
  check_rows_attention({.heads = 6, .kv_heads = 2, .hd = 32, .lens = {1, 33, 0, 4}});
}

TEST(RowAttention, LongSequenceUsesQueryBlocks) {
  // 1500 keys allow 174 query rows per task: nine blocks per head, the last one
  // short.
  check_rows_attention({.heads = 2, .kv_heads = 1, .hd = 16, .lens = {1500, 3}});
}

TEST(RowAttention, CachedKeysMayOutnumberQueries) {
  // Queries of rows [4, 9) of a 9-row sequence attend to all 9 keys (a KV-cache
  // step).
  const int64_t h = 2, hd = 16, qd = h * hd;
  auto q = rounded(randn(9 * qd, 47)), k = rounded(randn(9 * qd, 48)),
       v = rounded(randn(9 * qd, 49));
  std::vector<int32_t> cu{0, 5}, cu_kv{0, 9};
  const auto q16 = head_major(std::vector<float>(q.begin() + 4 * qd, q.end()), 5, h, hd);
  const auto k16 = head_major(k, 9, h, hd), v16 = head_major(v, 9, h, hd);
  std::vector<bf16> out(5 * qd);
  cpu::Bf16AttentionWorkspace ws;
  cpu::attention_bf16_heads(out.data(), q16.data(), 5, k16.data(), v16.data(), 9,
                            {.n_heads = h,
                             .n_kv_heads = h,
                             .head_dim = hd,
                             .n_seqs = 1,
                             .cu_seqlens = cu.data(),
                             .cu_seqlens_kv = cu_kv.data()},
                            ws);
  std::vector<int32_t> full{0, 9};
  std::vector<float> ref(9 * qd);
  reference::attention(ref.data(), q.data(), k.data(), v.data(), h, h, hd, full.data(), 1);
  EXPECT_LT(max_abs_diff(widen(out), std::vector<float>(ref.begin() + 4 * qd, ref.end())), 3e-2f);
}

// NaN in, NaN out: a vectorised clamp must not turn a NaN into a finite value, or NaN weights
// would give finite garbage instead of the non-finite logits the forward pass reports.
TEST(Bf16Ops, NaNPropagatesThroughSoftmaxAndSwiglu) {
  for (int64_t n : {7, 16, 40}) {
    std::vector<float> x(n, 0.5f);
    x[n / 2] = NAN;
    std::vector<bf16> out(n);
    cpu::softmax_rows_bf16(out.data(), x.data(), 1, n, 0.125f);
    for (int64_t i = 0; i < n; ++i) EXPECT_TRUE(std::isnan(to_float(out[i]))) << "n " << n << " i " << i;
    std::vector<float> gate(n, 1.0f), up(n, 2.0f);
    gate[n - 1] = NAN;
    cpu::swiglu_bf16(out.data(), gate.data(), up.data(), n);
    EXPECT_TRUE(std::isnan(to_float(out[n - 1]))) << "n " << n;
    EXPECT_FALSE(std::isnan(to_float(out[0]))) << "n " << n;
  }
}

}  // namespace
}  // namespace illada

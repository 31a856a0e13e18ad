// run_task_product: the four per-task product kinds against the scalar reference on the same
// bf16 inputs, with operands moved between calls of one shape (the per-thread bound memory
// objects must follow the pointers) and from two threads at once.
#include <gtest/gtest.h>

#include <omp.h>

#include <vector>

#include "kernels/cpu/task_gemm.h"
#include "reference/reference.h"
#include "../test_util.h"

namespace illada {
namespace {

using cpu::TaskProductKind;
using test::max_abs_diff;
using test::randn;
using test::rounded;
using test::to_bf16_vec;

// The product of one kind on fp32 copies of the bf16 inputs: C (+)= op(A) · op(B).
std::vector<float> expected(const std::vector<float>& a, const std::vector<float>& b,
                            std::vector<float> c, int64_t m, int64_t n, int64_t k,
                            TaskProductKind kind) {
  std::vector<float> at(m * k);  // A as [m, k]
  const bool a_t = kind == TaskProductKind::kAtNN || kind == TaskProductKind::kAtNNAcc;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < k; ++j) at[i * k + j] = a_t ? a[j * m + i] : a[i * k + j];
  reference::gemm(c.data(), at.data(), b.data(), m, n, k, kind == TaskProductKind::kScores, 1.0f,
                  kind == TaskProductKind::kAtNNAcc);
  return c;
}

TEST(TaskProduct, EveryKindMatchesTheReferenceAndFollowsItsOperands) {
  const int64_t m = 37, n = 64, k = 45;
  Buffer<uint8_t> scratch;
  for (TaskProductKind kind : {TaskProductKind::kScores, TaskProductKind::kNN,
                               TaskProductKind::kAtNN, TaskProductKind::kAtNNAcc}) {
    cpu::prepare_task_product(m, n, k, kind);
    // Operands of three calls, all alive at once so that each call sees other addresses.
    std::vector<std::vector<bf16>> a16s, b16s;
    for (uint64_t rep = 0; rep < 3; ++rep) {
      a16s.push_back(to_bf16_vec(randn(m * k, 60 + rep)));
      b16s.push_back(to_bf16_vec(randn(n * k, 70 + rep)));
    }
    for (uint64_t rep = 0; rep < 3; ++rep) {
      const auto a = randn(m * k, 60 + rep), b = randn(n * k, 70 + rep);
      const auto c0 = randn(m * n, 80 + rep);
      std::vector<float> c = c0;
      cpu::run_task_product(c.data(), a16s[rep].data(), b16s[rep].data(), m, n, k, kind, scratch);
      EXPECT_LT(max_abs_diff(c, expected(rounded(a), rounded(b), c0, m, n, k, kind)), 1e-3f)
          << "kind " << static_cast<int>(kind) << " rep " << rep;
    }
  }
}

TEST(TaskProduct, TwoThreadsAtOnce) {
  const int64_t m = 64, n = 96, k = 80;
  cpu::prepare_task_product(m, n, k, TaskProductKind::kScores);
  std::vector<std::vector<float>> out(8), want(8);
  int threads_seen = 0;
#pragma omp parallel num_threads(2) reduction(+ : threads_seen)
  {
    threads_seen = 1;
    Buffer<uint8_t> scratch;  // each thread its own, as the attention tasks do
#pragma omp for schedule(dynamic)
    for (int i = 0; i < 8; ++i) {
      const auto a = randn(m * k, 90 + i), b = randn(n * k, 100 + i);
      out[i].assign(m * n, 0.0f);
      cpu::run_task_product(out[i].data(), to_bf16_vec(a).data(), to_bf16_vec(b).data(), m, n, k,
                            TaskProductKind::kScores, scratch);
      want[i] = expected(rounded(a), rounded(b), std::vector<float>(m * n, 0.0f), m, n, k,
                         TaskProductKind::kScores);
    }
  }
  EXPECT_EQ(threads_seen, 2);
  for (int i = 0; i < 8; ++i) EXPECT_LT(max_abs_diff(out[i], want[i]), 1e-3f) << i;
}

}  // namespace
}  // namespace illada

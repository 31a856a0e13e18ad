// Head-major bf16 attention. Called inside the task loop's parallel region,
// oneDNN runs each product on the calling thread, so one fork per layer
// replaces the product, softmax, conversion and scatter passes, and a task's
// scores never leave its core's L2.
#include "kernels/cpu/attention_bf16.h"

#include <omp.h>

#include <algorithm>
#include <cmath>

#include "kernels/cpu/bf16_ops.h"
#include "kernels/cpu/task_gemm.h"
#include "util/check.h"
#include "util/profile.h"

namespace illada::cpu {
namespace {

// Scores of one task stay within this many floats (1 MiB), half of one core's
// L2.
constexpr int64_t kTaskScoreFloats = int64_t{1} << 18;


}  // namespace

void attention_bf16_heads(bf16* out, const bf16* q, int64_t q_rows, const bf16* k, const bf16* v,
                          int64_t kv_rows, const AttentionShape& s, Bf16AttentionWorkspace& ws) {
  ProfileScope prof("attention_bf16");
  ILLADA_CHECK(s.n_heads > 0 && s.n_kv_heads > 0 && s.n_heads % s.n_kv_heads == 0);
  ILLADA_CHECK(s.k_seq == nullptr && s.v_seq == nullptr,
               "attention_bf16_heads reads k, v directly");
  const int64_t hd = s.head_dim, group = s.n_heads / s.n_kv_heads, ldo = s.n_heads * hd;
  const int32_t* cu_kv = s.cu_seqlens_kv ? s.cu_seqlens_kv : s.cu_seqlens;
  ILLADA_CHECK(q_rows >= s.cu_seqlens[s.n_seqs] && kv_rows >= cu_kv[s.n_seqs], "head rows");
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));

  ws.tasks.clear();
  for (int64_t b = 0; b < s.n_seqs; ++b) {
    const int64_t lq = s.cu_seqlens[b + 1] - s.cu_seqlens[b], lk = cu_kv[b + 1] - cu_kv[b];
    if (lq == 0) continue;
    ILLADA_CHECK(lk > 0, "sequence ", b, " has queries but no keys");
    // Query blocks of at least 32 rows keep the products efficient on long
    // sequences.
    const int64_t block = std::clamp<int64_t>(kTaskScoreFloats / lk, 32, lq);
    for (int64_t h = 0; h < s.n_heads; ++h) {
      for (int64_t r0 = 0; r0 < lq; r0 += block) {
        ws.tasks.push_back({b, h, r0, std::min(block, lq - r0)});
      }
    }
  }
  const int64_t n_tasks = static_cast<int64_t>(ws.tasks.size());
  // Create (JIT-compile) every product here, so that no task waits on another's
  // creation and an error is thrown outside the parallel region.
  for (const auto& t : ws.tasks) {
    const int64_t lk = cu_kv[t.seq + 1] - cu_kv[t.seq];
    prepare_task_product(t.rows, lk, hd, TaskProductKind::kScores);
    prepare_task_product(t.rows, hd, lk, TaskProductKind::kNN);
  }
  const int threads =
      std::max(1, static_cast<int>(std::min<int64_t>(omp_get_max_threads(), n_tasks)));
  if (static_cast<int>(ws.scratch.size()) < threads) ws.scratch.resize(threads);

#pragma omp parallel for schedule(dynamic) num_threads(threads)
  for (int64_t i = 0; i < n_tasks; ++i) {
    const Bf16AttentionWorkspace::Task& t = ws.tasks[i];
    Bf16AttentionWorkspace::Scratch& sc = ws.scratch[omp_get_thread_num()];
    const int64_t q0 = s.cu_seqlens[t.seq] + t.row0, k0 = cu_kv[t.seq];
    const int64_t lk = cu_kv[t.seq + 1] - k0, g = t.head / group;
    float* scores = sized(sc.scores, t.rows * lk);
    bf16* probs = sized(sc.probs, t.rows * lk);
    float* o = sized(sc.out, t.rows * hd);
    const bf16* kg = k + (g * kv_rows + k0) * hd;
    // S [rows, lk] = Q_h [rows, hd] · K_g^T (K_g [lk, hd]).
    run_task_product(scores, q + (t.head * q_rows + q0) * hd, kg, t.rows, lk, hd,
                     TaskProductKind::kScores, sc.onednn);
    softmax_rows_bf16(probs, scores, t.rows, lk, scale);
    // O [rows, hd] = P [rows, lk] · V_g [lk, hd].
    run_task_product(o, probs, v + (g * kv_rows + k0) * hd, t.rows, hd, lk,
                     TaskProductKind::kNN, sc.onednn);
    for (int64_t r = 0; r < t.rows; ++r) {
      bf16* dst = out + (q0 + r) * ldo + t.head * hd;
      const float* src = o + r * hd;
#pragma omp simd
      for (int64_t j = 0; j < hd; ++j) dst[j] = to_bf16(src[j]);
    }
  }
}

}  // namespace illada::cpu

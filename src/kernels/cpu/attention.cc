// Blocked attention: per sequence, head and block of queries, S = Q K^T (oneDNN), softmax
// (fp32), O = P V (oneDNN).
#include "kernels/cpu/attention.h"

#include <algorithm>
#include <cmath>

#include "kernels/cpu/ops.h"
#include "kernels/gemm.h"
#include "util/check.h"

namespace illada::cpu {
namespace {

constexpr int64_t kMaxScoreFloats = int64_t{1} << 20;  // 4 MB of scores per block

template <class T>
void attention_impl(float* out, const T* q, const T* k, const T* v, const AttentionShape& s,
                    AttentionWorkspace& ws) {
  ILLADA_CHECK(s.n_heads > 0 && s.n_kv_heads > 0 && s.n_heads % s.n_kv_heads == 0);
  const int32_t* cu_kv = s.cu_seqlens_kv ? s.cu_seqlens_kv : s.cu_seqlens;
  const int64_t hd = s.head_dim, group = s.n_heads / s.n_kv_heads;
  const int64_t ldq = s.n_heads * hd, ldk = s.n_kv_heads * hd;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  for (int64_t b = 0; b < s.n_seqs; ++b) {
    const int64_t q0 = s.cu_seqlens[b], lq = s.cu_seqlens[b + 1] - q0;
    const int64_t k0 = cu_kv[b], lk = cu_kv[b + 1] - k0;
    if (lq == 0) continue;
    ILLADA_CHECK(lk > 0, "sequence ", b, " has queries but no keys");
    const int64_t block = std::clamp<int64_t>(kMaxScoreFloats / lk, 1, lq);
    ws.scores.resize(static_cast<size_t>(block * lk));
    if constexpr (std::is_same_v<T, bf16>) ws.probs.resize(static_cast<size_t>(block * lk));
    for (int64_t h = 0; h < s.n_heads; ++h) {
      const int64_t g = h / group;
      for (int64_t r0 = 0; r0 < lq; r0 += block) {
        const int64_t rows = std::min(block, lq - r0);
        float* sc = ws.scores.data();
        gemm(sc, q + (q0 + r0) * ldq + h * hd, k + k0 * ldk + g * hd,
             GemmShape{.m = rows, .n = lk, .k = hd, .lda = ldq, .ldb = ldk, .ldc = lk,
                       .b_is_nk = true});
        softmax_rows(sc, lk, rows, lk, scale);
        float* o = out + (q0 + r0) * ldq + h * hd;
        const GemmShape pv{.m = rows, .n = hd, .k = lk, .lda = lk, .ldb = ldk, .ldc = ldq,
                           .b_is_nk = false};
        if constexpr (std::is_same_v<T, bf16>) {
          to_bf16(ws.probs.data(), sc, rows * lk);
          gemm(o, ws.probs.data(), v + k0 * ldk + g * hd, pv);
        } else {
          gemm(o, sc, v + k0 * ldk + g * hd, pv);
        }
      }
    }
  }
}

}  // namespace

void attention(float* out, const float* q, const float* k, const float* v,
               const AttentionShape& s, AttentionWorkspace& ws) {
  attention_impl(out, q, k, v, s, ws);
}

void attention(float* out, const bf16* q, const bf16* k, const bf16* v,
               const AttentionShape& s, AttentionWorkspace& ws) {
  attention_impl(out, q, k, v, s, ws);
}

}  // namespace illada::cpu

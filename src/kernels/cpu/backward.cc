// CPU backward kernels (see backward.h). Element-wise loops vectorise; attention's products go
// through gemm() per kv head, like the forward's blocked layout (query heads of one kv group
// stacked row-wise, so a kv head's dK and dV sum over its group inside one product).
#include "kernels/cpu/backward.h"
#include "kernels/cpu/fast_math.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "kernels/cpu/bf16_ops.h"
#include "kernels/cpu/head_layout.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu/task_gemm.h"
#include "kernels/gemm.h"
#include "util/check.h"
#include "util/profile.h"

namespace illada::cpu {
namespace {

constexpr int64_t kParallelMin = 1 << 15;
constexpr int64_t kColBlock = 64;                      // columns per task of column reductions
constexpr int64_t kMaxScoreFloats = int64_t{1} << 21;  // 8 MB per score-sized buffer

// Scores of one task's query block stay within this many floats (1 MiB).
constexpr int64_t kTaskScoreFloats = int64_t{1} << 18;



 // dst [kv, hd, group*rows] <- the same rows, transposed per kv group: column j*rows + r holds
// query head g*group + j at row r (the transpose of gather_heads' [kv, group*rows, hd]).
template <class T>
void gather_groups_t(T* dst, const float* src, int64_t row0, int64_t rows, int64_t kv,
                     int64_t group, int64_t hd) {
  const int64_t heads = kv * group, m = group * rows;
#pragma omp parallel for collapse(2) schedule(static) if (heads * rows * hd >= kParallelMin)
  for (int64_t g = 0; g < kv; ++g) {
    for (int64_t i = 0; i < hd; ++i) {
      T* d = dst + (g * hd + i) * m;
      for (int64_t j = 0; j < group; ++j) {
        const float* s = src + row0 * heads * hd + (g * group + j) * hd + i;
        for (int64_t r = 0; r < rows; ++r) store(d + j * rows + r, s[r * heads * hd]);
      }
    }
  }
}

template <class T>
void transpose_impl(T* out, int64_t ld_out, const float* in, int64_t ld_in, int64_t m, int64_t n) {
  constexpr int64_t kTile = 32;
  const int64_t tm = (m + kTile - 1) / kTile, tn = (n + kTile - 1) / kTile;
#pragma omp parallel for collapse(2) schedule(static) if (m * n >= kParallelMin)
  for (int64_t bi = 0; bi < tm; ++bi) {
    for (int64_t bj = 0; bj < tn; ++bj) {
      const int64_t i1 = std::min(m, (bi + 1) * kTile), j1 = std::min(n, (bj + 1) * kTile);
      for (int64_t j = bj * kTile; j < j1; ++j) {
        for (int64_t i = bi * kTile; i < i1; ++i) store(out + j * ld_out + i, in[i * ld_in + j]);
      }
    }
  }
}

template <class T>
void attention_backward_impl(float* dq, float* dk, float* dv, const float* dout, const float* q,
                             const float* k, const float* v, const float* out,
                             const AttentionBackwardShape& s, AttentionBackwardWorkspace& ws,
                             Buffer<T>& qbuf, Buffer<T>& qtbuf, Buffer<T>& kbuf,
                             Buffer<T>& vbuf, Buffer<T>& dobuf, Buffer<T>& dotbuf,
                             Buffer<T>& pbuf, Buffer<T>& dsbuf) {
  const int64_t hd = s.head_dim, kv = s.n_kv_heads, group = s.n_heads / kv;
  const int64_t ldq = s.n_heads * hd, ldk = kv * hd;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  constexpr bool kBf = std::is_same_v<T, bf16>;
  for (int64_t b = 0; b < s.n_seqs; ++b) {
    const int64_t s0 = s.cu_seqlens[b], len = s.cu_seqlens[b + 1] - s0;
    if (len == 0) continue;
    T* kg = sized(kbuf, kv * len * hd);
    T* vg = sized(vbuf, kv * len * hd);
    gather_heads(kg, k, s0, len, kv, hd);
    gather_heads(vg, v, s0, len, kv, hd);
    float* dkt = sized(ws.dkt, kv * hd * len);  // [kv, hd, len]
    float* dvt = sized(ws.dvt, kv * hd * len);
    const int64_t block = std::clamp<int64_t>(
        s.block_rows > 0 ? s.block_rows : kMaxScoreFloats / (s.n_heads * len), 1, len);
    for (int64_t r0 = 0; r0 < len; r0 += block) {
      const int64_t rows = std::min(block, len - r0);
      const int64_t m = group * rows;
      const int64_t row0 = s0 + r0;
      T* qg = sized(qbuf, s.n_heads * rows * hd);
      T* qgt = sized(qtbuf, s.n_heads * rows * hd);
      T* dog = sized(dobuf, s.n_heads * rows * hd);
      T* dogt = sized(dotbuf, s.n_heads * rows * hd);
      gather_heads(qg, q, row0, rows, s.n_heads, hd);
      gather_groups_t(qgt, q, row0, rows, kv, group, hd);
      gather_heads(dog, dout, row0, rows, s.n_heads, hd);
      gather_groups_t(dogt, dout, row0, rows, kv, group, hd);
      float* p = sized(ws.probs, kv * m * len);
      float* dp = sized(ws.dprobs, kv * m * len);
      // Every product is batched over the kv heads.
      const GemmShape score{.m = m, .n = len, .k = hd, .lda = hd, .ldb = hd, .ldc = len,
                            .b_is_nk = true};
      const GemmBatch by_head{.count = kv, .a = m * hd, .b = len * hd, .c = m * len};
      gemm_batched(p, qg, kg, score, by_head);
      gemm_batched(dp, dog, vg, score, by_head);
      // Per score row (head-major (h, r)), in one pass while the row is in cache:
      // P = softmax(scale * S), dS = P * (dP - sum_i dO*O) * scale, both stored straight into
      // the operands of the next products (in place over S and dP in fp32).
      T* pm;
      T* dsm;
      if constexpr (kBf) {
        pm = sized(pbuf, kv * m * len);
        dsm = sized(dsbuf, kv * m * len);
      } else {
        pm = p;
        dsm = dp;
      }
#pragma omp parallel for collapse(2) schedule(static) if (s.n_heads * rows * len >= kParallelMin)
      for (int64_t h = 0; h < s.n_heads; ++h) {
        for (int64_t r = 0; r < rows; ++r) {
          const float* o = out + (row0 + r) * ldq + h * hd;
          const float* dor = dout + (row0 + r) * ldq + h * hd;
          float dsum = 0.0f;
          for (int64_t i = 0; i < hd; ++i) dsum += dor[i] * o[i];
          const int64_t idx = (h * rows + r) * len;
          float* sr = p + idx;
          const float* dpr = dp + idx;
          const float inv = softmax_exp_row(sr, len, scale);
          T* pr = pm + idx;
          T* dsr = dsm + idx;
#pragma omp simd
          for (int64_t j = 0; j < len; ++j) {
            const float pj = sr[j] * inv;
            store(dsr + j, pj * (dpr[j] - dsum) * scale);
            store(pr + j, pj);
          }
        }
      }
      float* dqg = sized(ws.dq, kv * m * hd);
      const bool acc = r0 > 0;
      // dQ = dS K: [m, len] x [len, hd].
      gemm_batched(dqg, dsm, kg,
                   GemmShape{.m = m, .n = hd, .k = len, .lda = len, .ldb = hd, .ldc = hd,
                             .b_is_nk = false},
                   GemmBatch{.count = kv, .a = m * len, .b = len * hd, .c = m * hd});
      // dK^T += Q^T dS: [hd, m] x [m, len]; dV^T += dO^T P.
      const GemmShape kv_grad{.m = hd, .n = len, .k = m, .lda = m, .ldb = len, .ldc = len,
                              .b_is_nk = false, .accumulate = acc};
      const GemmBatch kv_batch{.count = kv, .a = hd * m, .b = m * len, .c = hd * len};
      gemm_batched(dkt, qgt, dsm, kv_grad, kv_batch);
      gemm_batched(dvt, dogt, pm, kv_grad, kv_batch);
#pragma omp parallel for collapse(2) schedule(static) if (s.n_heads * rows * hd >= kParallelMin)
      for (int64_t h = 0; h < s.n_heads; ++h) {
        for (int64_t r = 0; r < rows; ++r) {
          std::copy_n(dqg + (h * rows + r) * hd, hd, dq + (row0 + r) * ldq + h * hd);
        }
      }
    }
    // [kv * hd, len] -> rows of dk, dv.
    transpose_impl(dk + s0 * ldk, ldk, dkt, len, kv * hd, len);
    transpose_impl(dv + s0 * ldk, ldk, dvt, len, kv * hd, len);
  }
}

// dx16 (nullable) gets bf16(dx) after the update.
void rmsnorm_backward_impl(float* dx, bf16* dx16, float* dw, const float* dy, const float* x,
                           const float* w, int64_t rows, int64_t d, float eps,
                           bool accumulate_dx) {
  ProfileScope prof("rmsnorm_backward");
  thread_local std::vector<float> inv_buf;
  float* inv = sized(inv_buf, rows);
#pragma omp parallel for schedule(static) if (rows * d >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * d;
    const float* g = dy + r * d;
    float ss = 0.0f, gx = 0.0f;
#pragma omp simd reduction(+ : ss, gx)
    for (int64_t i = 0; i < d; ++i) {
      ss += xr[i] * xr[i];
      gx += g[i] * w[i] * xr[i];
    }
    const float iv = 1.0f / std::sqrt(ss / static_cast<float>(d) + eps);
    inv[r] = iv;
    // dx = inv * (dy*w - x * inv^2 * mean(dy*w*x))
    const float c = iv * iv * gx / static_cast<float>(d);
    float* o = dx + r * d;
    if (accumulate_dx) {
#pragma omp simd
      for (int64_t i = 0; i < d; ++i) o[i] += iv * (g[i] * w[i] - xr[i] * c);
    } else {
#pragma omp simd
      for (int64_t i = 0; i < d; ++i) o[i] = iv * (g[i] * w[i] - xr[i] * c);
    }
    if (dx16) {
      bf16* o16 = dx16 + r * d;
#pragma omp simd
      for (int64_t i = 0; i < d; ++i) o16[i] = to_bf16(o[i]);
    }
  }
  const int64_t nblk = (d + kColBlock - 1) / kColBlock;
#pragma omp parallel for schedule(static) if (rows * d >= kParallelMin)
  for (int64_t blk = 0; blk < nblk; ++blk) {
    const int64_t c0 = blk * kColBlock, c1 = std::min(d, c0 + kColBlock);
    float acc[kColBlock] = {};
    for (int64_t r = 0; r < rows; ++r) {
      const float* xr = x + r * d;
      const float* g = dy + r * d;
      const float iv = inv[r];
      for (int64_t i = c0; i < c1; ++i) acc[i - c0] += g[i] * xr[i] * iv;
    }
    for (int64_t i = c0; i < c1; ++i) dw[i] += acc[i - c0];
  }
}

template <class T>
void swiglu_backward_impl(T* dgate, T* dup, const float* dout, const float* gate,
                          const float* up, int64_t n) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i], u = up[i], d = dout[i];
    const float sg = 1.0f / (1.0f + fast_exp(-g));
    store(dup + i, d * g * sg);
    store(dgate + i, d * u * sg * (1.0f + g * (1.0f - sg)));
  }
}

}  // namespace

void rmsnorm_backward(float* dx, float* dw, const float* dy, const float* x, const float* w,
                      int64_t rows, int64_t d, float eps, bool accumulate_dx) {
  rmsnorm_backward_impl(dx, nullptr, dw, dy, x, w, rows, d, eps, accumulate_dx);
}

void rmsnorm_backward(float* dx, bf16* dx16, float* dw, const float* dy, const float* x,
                      const float* w, int64_t rows, int64_t d, float eps, bool accumulate_dx) {
  rmsnorm_backward_impl(dx, dx16, dw, dy, x, w, rows, d, eps, accumulate_dx);
}

void rope_backward(float* dx, int64_t ld, const int32_t* pos, int64_t rows, int64_t n_heads,
                   int64_t hd, const float* cos_sin) {
  const int64_t half = hd / 2;
#pragma omp parallel for schedule(static) if (rows * n_heads * hd >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const float* cs = cos_sin + static_cast<int64_t>(pos[r]) * hd;
    for (int64_t h = 0; h < n_heads; ++h) {
      float* v = dx + r * ld + h * hd;
#pragma omp simd
      for (int64_t i = 0; i < half; ++i) {
        const float a = v[i], b = v[i + half];
        v[i] = a * cs[i] + b * cs[half + i];
        v[i + half] = b * cs[i] - a * cs[half + i];
      }
    }
  }
}

void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate,
                     const float* up, int64_t n) {
  swiglu_backward_impl(dgate, dup, dout, gate, up, n);
}

void swiglu_backward(bf16* dgate, bf16* dup, const float* dout, const float* gate,
                     const float* up, int64_t n) {
  swiglu_backward_impl(dgate, dup, dout, gate, up, n);
}

namespace {

template <class T>
void swiglu_backward_rows_impl(bf16* dgu, const T* dout, const T* gu, int64_t rows, int64_t n) {
#pragma omp parallel for schedule(static) if (rows * n >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const T* gate = gu + r * 2 * n;
    const T* up = gate + n;
    const T* dr = dout + r * n;
    bf16* dgate = dgu + r * 2 * n;
    bf16* dup = dgate + n;
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) {
      const float g = to_float(gate[i]), u = to_float(up[i]), d = to_float(dr[i]);
      const float sg = 1.0f / (1.0f + fast_exp(-g));
      dup[i] = to_bf16(d * g * sg);
      dgate[i] = to_bf16(d * u * sg * (1.0f + g * (1.0f - sg)));
    }
  }
}

}  // namespace

void swiglu_backward_rows(bf16* dgu, const float* dout, const float* gu, int64_t rows,
                          int64_t n) {
  swiglu_backward_rows_impl(dgu, dout, gu, rows, n);
}

void swiglu_backward_rows(bf16* dgu, const bf16* dout, const bf16* gu, int64_t rows,
                          int64_t n) {
  swiglu_backward_rows_impl(dgu, dout, gu, rows, n);
}

double cross_entropy_backward(float* dlogits, float* row_loss, const float* logits,
                              const int32_t* targets, const float* row_scale, int64_t rows,
                              int64_t n) {
  ProfileScope prof("cross_entropy");
  thread_local std::vector<double> losses;
  losses.resize(static_cast<size_t>(rows));
  double* ls = losses.data();
#pragma omp parallel for schedule(static) if (rows * n >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = logits + r * n;
    float* dx = dlogits + r * n;
    const int32_t tgt = targets[r];
    ILLADA_DCHECK(tgt >= 0 && tgt < n, "target ", tgt, " outside [0, ", n, ")");
    const float x_tgt = x[tgt];
    float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
    for (int64_t i = 0; i < n; ++i) mx = x[i] > mx ? x[i] : mx;
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int64_t i = 0; i < n; ++i) {
      const float e = fast_exp(x[i] - mx);
      dx[i] = e;
      sum += e;
    }
    ls[r] = static_cast<double>(mx) + std::log(static_cast<double>(sum)) - x_tgt;
    const float c = row_scale[r] / sum;
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) dx[i] *= c;
    dx[tgt] -= row_scale[r];
  }
  double total = 0.0;
  for (int64_t r = 0; r < rows; ++r) {
    if (row_loss) row_loss[r] = static_cast<float>(ls[r]);
    total += static_cast<double>(row_scale[r]) * ls[r];
  }
  return total;
}

void embedding_backward(float* dwte, const float* dx, const int32_t* ids, int64_t rows, int64_t d) {
  const int64_t nblk = (d + kColBlock - 1) / kColBlock;
#pragma omp parallel for schedule(static) if (rows * d >= kParallelMin)
  for (int64_t blk = 0; blk < nblk; ++blk) {
    const int64_t c0 = blk * kColBlock, c1 = std::min(d, c0 + kColBlock);
    for (int64_t r = 0; r < rows; ++r) {
      float* dst = dwte + static_cast<int64_t>(ids[r]) * d;
      const float* src = dx + r * d;
      for (int64_t i = c0; i < c1; ++i) dst[i] += src[i];
    }
  }
}

void transpose(float* out, int64_t ld_out, const float* in, int64_t ld_in, int64_t m, int64_t n) {
  transpose_impl(out, ld_out, in, ld_in, m, n);
}

void transpose(bf16* out, int64_t ld_out, const float* in, int64_t ld_in, int64_t m, int64_t n) {
  transpose_impl(out, ld_out, in, ld_in, m, n);
}

void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q,
                        const float* k, const float* v, const float* out,
                        const AttentionBackwardShape& s, AttentionBackwardWorkspace& ws) {
  ProfileScope prof("attention_backward");
  ILLADA_CHECK(s.n_heads > 0 && s.n_kv_heads > 0 && s.n_heads % s.n_kv_heads == 0);
  if (s.bf16) {
    attention_backward_impl<bf16>(dq, dk, dv, dout, q, k, v, out, s, ws, ws.qb, ws.qtb, ws.kb,
                                  ws.vb, ws.dob, ws.dotb, ws.pb, ws.dsb);
  } else {
    attention_backward_impl<float>(dq, dk, dv, dout, q, k, v, out, s, ws, ws.qf, ws.qtf, ws.kf,
                                   ws.vf, ws.dof, ws.dotf, ws.pf, ws.dsf);
  }
}

void attention_backward_heads(float* dq, float* dk, float* dv, const float* dout, const bf16* q,
                              const bf16* k, const bf16* v, const bf16* out16, int64_t ld_rows,
                              const AttentionBackwardShape& s, AttentionBackwardWorkspace& ws) {
  ProfileScope prof("attention_backward");
  ILLADA_CHECK(s.n_heads > 0 && s.n_kv_heads > 0 && s.n_heads % s.n_kv_heads == 0);
  const int64_t hd = s.head_dim, kv = s.n_kv_heads, nh = s.n_heads, group = nh / kv;
  const int64_t ldq = nh * hd;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  // One task per (sequence, kv head): it owns that head's dK and dV rows, so it can sum over
  // its query heads and query blocks in a fixed order with no other task touching them.
  ws.tasks.clear();
  for (int64_t b = 0; b < s.n_seqs; ++b) {
    const int64_t len = s.cu_seqlens[b + 1] - s.cu_seqlens[b];
    if (len == 0) continue;
    const int64_t block = std::clamp<int64_t>(
        s.block_rows > 0 ? s.block_rows : kTaskScoreFloats / len, 1, len);
    for (int64_t g = 0; g < kv; ++g) ws.tasks.push_back({b, g, block});
    // Create (JIT-compile) every product outside the parallel region.
    for (int64_t r0 = 0; r0 < len; r0 += block) {
      const int64_t rows = std::min(block, len - r0);
      prepare_task_product(rows, len, hd, TaskProductKind::kScores);
      prepare_task_product(rows, hd, len, TaskProductKind::kNN);
      prepare_task_product(len, hd, rows, TaskProductKind::kAtNN);
      prepare_task_product(len, hd, rows, TaskProductKind::kAtNNAcc);
    }
  }
  const int64_t n_tasks = static_cast<int64_t>(ws.tasks.size());
  if (n_tasks == 0) return;
  const int threads =
      std::max(1, static_cast<int>(std::min<int64_t>(omp_get_max_threads(), n_tasks)));
  if (static_cast<int>(ws.scratch.size()) < threads) ws.scratch.resize(threads);

#pragma omp parallel for schedule(dynamic) num_threads(threads)
  for (int64_t i = 0; i < n_tasks; ++i) {
    const AttentionBackwardWorkspace::Task& tk = ws.tasks[i];
    AttentionBackwardWorkspace::Scratch& sc = ws.scratch[omp_get_thread_num()];
    const int64_t s0 = s.cu_seqlens[tk.seq], len = s.cu_seqlens[tk.seq + 1] - s0;
    const int64_t g = tk.kv_head, block = tk.block;
    const bf16* kg = k + (g * ld_rows + s0) * hd;  // [len, hd]
    const bf16* vg = v + (g * ld_rows + s0) * hd;
    float* dkg = dk + (g * ld_rows + s0) * hd;
    float* dvg = dv + (g * ld_rows + s0) * hd;
    bf16* doh = sized(sc.dout, len * hd);  // this head's dO rows in bf16
    float* dsum = sized(sc.dsum, len);     // D[r] = sum_i dO*O
    float* sp = sized(sc.scores, block * len);
    float* dp = sized(sc.dprobs, block * len);
    bf16* pm = sized(sc.probs, block * len);
    bf16* dsm = sized(sc.dscores, block * len);
    for (int64_t j = 0; j < group; ++j) {
      const int64_t h = g * group + j;
      for (int64_t r = 0; r < len; ++r) {
        const float* dor = dout + (s0 + r) * ldq + h * hd;
        const bf16* o = out16 + (s0 + r) * ldq + h * hd;
        bf16* dst = doh + r * hd;
        float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
        for (int64_t c = 0; c < hd; ++c) {
          acc += dor[c] * to_float(o[c]);
          dst[c] = to_bf16(dor[c]);
        }
        dsum[r] = acc;
      }
      const bf16* qh = q + (h * ld_rows + s0) * hd;
      for (int64_t r0 = 0; r0 < len; r0 += block) {
        const int64_t rows = std::min(block, len - r0);
        const bool first = j == 0 && r0 == 0;
        run_task_product(sp, qh + r0 * hd, kg, rows, len, hd, TaskProductKind::kScores,
                         sc.onednn);
        run_task_product(dp, doh + r0 * hd, vg, rows, len, hd, TaskProductKind::kScores,
                         sc.onednn);
        // P = softmax(scale * S), dS = P * (dP - D) * scale, rounded for the next products.
        for (int64_t r = 0; r < rows; ++r) {
          float* sr = sp + r * len;
          const float* dpr = dp + r * len;
          const float d = dsum[r0 + r];
          const float inv = softmax_exp_row(sr, len, scale);
          bf16* pr = pm + r * len;
          bf16* dsr = dsm + r * len;
#pragma omp simd
          for (int64_t c = 0; c < len; ++c) {
            const float pc = sr[c] * inv;
            pr[c] = to_bf16(pc);
            dsr[c] = to_bf16(pc * (dpr[c] - d) * scale);
          }
        }
        // dQ = dS K: [rows, len] x [len, hd], straight into dq's head-major rows.
        run_task_product(dq + (h * ld_rows + s0 + r0) * hd, dsm, kg, rows, hd, len,
                         TaskProductKind::kNN, sc.onednn);
        // dK (+)= dS^T Q and dV (+)= P^T dO: [len, rows] x [rows, hd].
        const TaskProductKind acc = first ? TaskProductKind::kAtNN : TaskProductKind::kAtNNAcc;
        run_task_product(dkg, dsm, qh + r0 * hd, len, hd, rows, acc, sc.onednn);
        run_task_product(dvg, pm, doh + r0 * hd, len, hd, rows, acc, sc.onednn);
      }
    }
  }
}

void rope_backward_heads(bf16* out, const float* dx, int64_t ld_rows, const int32_t* pos,
                         int64_t rows, int64_t n_heads, int64_t hd, const float* cos_sin) {
  rope_backward_heads(out, n_heads * hd, dx, ld_rows, pos, rows, n_heads, hd, cos_sin);
}

void rope_backward_heads(bf16* out, int64_t ld, const float* dx, int64_t ld_rows,
                         const int32_t* pos, int64_t rows, int64_t n_heads, int64_t hd,
                         const float* cos_sin) {
  const int64_t half = hd / 2;
#pragma omp parallel for schedule(static) if (rows * ld >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t h = 0; h < n_heads; ++h) {
      const float* x = dx + (h * ld_rows + r) * hd;
      bf16* o = out + r * ld + h * hd;
      if (!cos_sin) {
#pragma omp simd
        for (int64_t i = 0; i < hd; ++i) o[i] = to_bf16(x[i]);
        continue;
      }
      const float* cs = cos_sin + static_cast<int64_t>(pos[r]) * hd;
#pragma omp simd
      for (int64_t i = 0; i < half; ++i) {
        const float a = x[i], b = x[i + half];
        o[i] = to_bf16(a * cs[i] + b * cs[half + i]);
        o[i + half] = to_bf16(b * cs[i] - a * cs[half + i]);
      }
    }
  }
}

}  // namespace illada::cpu

// CPU backward kernels (see backward.h). Element-wise loops vectorise; attention's products go
// through gemm() per kv head, like the forward's blocked layout (query heads of one kv group
// stacked row-wise, so a kv head's dK and dV sum over its group inside one product).
#include "kernels/cpu/backward.h"
#include "kernels/cpu/fast_math.h"

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "kernels/cpu/head_layout.h"
#include "kernels/cpu/ops.h"
#include "kernels/gemm.h"
#include "util/check.h"
#include "util/profile.h"

namespace illada::cpu {
namespace {

constexpr int64_t kParallelMin = 1 << 15;
constexpr int64_t kColBlock = 64;                      // columns per task of column reductions
constexpr int64_t kMaxScoreFloats = int64_t{1} << 21;  // 8 MB per score-sized buffer


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
void convert(T* dst, const float* src, int64_t n) {
  if constexpr (std::is_same_v<T, bf16>) {
    to_bf16(dst, src, n);
  } else {
    std::copy_n(src, n, dst);
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
                             std::vector<T>& qbuf, std::vector<T>& qtbuf, std::vector<T>& kbuf,
                             std::vector<T>& vbuf, std::vector<T>& dobuf, std::vector<T>& dotbuf,
                             std::vector<T>& pbuf, std::vector<T>& dsbuf) {
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
      for (int64_t g = 0; g < kv; ++g) {
        gemm(p + g * m * len, qg + g * m * hd, kg + g * len * hd,
             GemmShape{.m = m, .n = len, .k = hd, .lda = hd, .ldb = hd, .ldc = len, .b_is_nk = true});
        gemm(dp + g * m * len, dog + g * m * hd, vg + g * len * hd,
             GemmShape{.m = m, .n = len, .k = hd, .lda = hd, .ldb = hd, .ldc = len, .b_is_nk = true});
      }
      softmax_rows(p, len, kv * m, len, scale);
      // dS = P * (dP - sum_j dO*O) * scale, in place over dP; head-major row (h, r).
#pragma omp parallel for collapse(2) schedule(static) if (s.n_heads * rows * len >= kParallelMin)
      for (int64_t h = 0; h < s.n_heads; ++h) {
        for (int64_t r = 0; r < rows; ++r) {
          const float* o = out + (row0 + r) * ldq + h * hd;
          const float* dor = dout + (row0 + r) * ldq + h * hd;
          float dsum = 0.0f;
          for (int64_t i = 0; i < hd; ++i) dsum += dor[i] * o[i];
          const int64_t idx = (h * rows + r) * len;
          float* dpr = dp + idx;
          const float* pr = p + idx;
#pragma omp simd
          for (int64_t j = 0; j < len; ++j) dpr[j] = pr[j] * (dpr[j] - dsum) * scale;
        }
      }
      const T* pm;
      const T* dsm;
      if constexpr (kBf) {
        convert(sized(pbuf, kv * m * len), p, kv * m * len);
        convert(sized(dsbuf, kv * m * len), dp, kv * m * len);
        pm = pbuf.data();
        dsm = dsbuf.data();
      } else {
        pm = p;
        dsm = dp;
      }
      float* dqg = sized(ws.dq, kv * m * hd);
      const bool acc = r0 > 0;
      for (int64_t g = 0; g < kv; ++g) {
        const T* dsg = dsm + g * m * len;
        const T* pg = pm + g * m * len;
        // dQ = dS K: [m, len] x [len, hd].
        gemm(dqg + g * m * hd, dsg, kg + g * len * hd,
             GemmShape{.m = m, .n = hd, .k = len, .lda = len, .ldb = hd, .ldc = hd, .b_is_nk = false});
        // dK^T += Q^T dS: [hd, m] x [m, len]; dV^T += dO^T P.
        gemm(dkt + g * hd * len, qgt + g * hd * m, dsg,
             GemmShape{.m = hd, .n = len, .k = m, .lda = m, .ldb = len, .ldc = len,
                       .b_is_nk = false, .accumulate = acc});
        gemm(dvt + g * hd * len, dogt + g * hd * m, pg,
             GemmShape{.m = hd, .n = len, .k = m, .lda = m, .ldb = len, .ldc = len,
                       .b_is_nk = false, .accumulate = acc});
      }
#pragma omp parallel for collapse(2) schedule(static) if (s.n_heads * rows * hd >= kParallelMin)
      for (int64_t h = 0; h < s.n_heads; ++h) {
        for (int64_t r = 0; r < rows; ++r) {
          std::copy_n(dqg + (h * rows + r) * hd, hd, dq + (row0 + r) * ldq + h * hd);
        }
      }
    }
    // [kv, hd, len] -> rows of dk, dv.
    for (int64_t g = 0; g < kv; ++g) {
      transpose_impl(dk + s0 * ldk + g * hd, ldk, dkt + g * hd * len, len, hd, len);
      transpose_impl(dv + s0 * ldk + g * hd, ldk, dvt + g * hd * len, len, hd, len);
    }
  }
}

}  // namespace

void rmsnorm_backward(float* dx, float* dw, const float* dy, const float* x, const float* w,
                      int64_t rows, int64_t d, float eps, bool accumulate_dx) {
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
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i], u = up[i], d = dout[i];
    const float sg = 1.0f / (1.0f + fast_exp(-g));
    dup[i] = d * g * sg;
    dgate[i] = d * u * sg * (1.0f + g * (1.0f - sg));
  }
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

}  // namespace illada::cpu

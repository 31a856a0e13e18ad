// CPU implementations of the bf16-output ops; loops are written so GCC
// vectorises them.
#include "kernels/cpu/bf16_ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "kernels/cpu/avx512_math.h"
#include "kernels/cpu/fast_math.h"

namespace illada::cpu {
namespace {

// Below this many elements a parallel region costs more than it saves (as in
// ops.cc).
constexpr int64_t kParallelMin = 1 << 15;

}  // namespace

void rmsnorm_bf16(bf16* out, const float* x, const float* w, int64_t rows, int64_t d, float eps) {
#pragma omp parallel for schedule(static) if (rows * d >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * d;
    bf16* o = out + r * d;
#ifdef ILLADA_HAVE_AVX512
    __m512 vss = _mm512_setzero_ps();
    for (int64_t i = 0; i < d; i += 16) {
      const __m512 v = _mm512_maskz_loadu_ps(avx512::tail_mask(d - i), xr + i);
      vss = _mm512_fmadd_ps(v, v, vss);
    }
    const float ss = _mm512_reduce_add_ps(vss);
    const __m512 inv = _mm512_set1_ps(1.0f / std::sqrt(ss / static_cast<float>(d) + eps));
    for (int64_t i = 0; i < d; i += 16) {
      const __mmask16 m = avx512::tail_mask(d - i);
      const __m512 v = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, xr + i), inv);
      avx512::store_bf16(o + i, _mm512_mul_ps(v, _mm512_maskz_loadu_ps(m, w + i)), m);
    }
#else
    float ss = 0.0f;
#pragma omp simd reduction(+ : ss)
    for (int64_t i = 0; i < d; ++i) ss += xr[i] * xr[i];
    const float inv = 1.0f / std::sqrt(ss / static_cast<float>(d) + eps);
#pragma omp simd
    for (int64_t i = 0; i < d; ++i) o[i] = to_bf16(xr[i] * inv * w[i]);
#endif
  }
}

namespace {

template <class T>
void rope_bf16_heads_impl(bf16* out, int64_t out_rows, const T* x, int64_t ldx,
                          const int32_t* pos, int64_t rows, int64_t n_heads, int64_t hd,
                          const float* cos_sin) {
  const int64_t half = hd / 2;
#pragma omp parallel for schedule(static) if (rows * n_heads * hd >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const float* cs = cos_sin + static_cast<int64_t>(pos[r]) * hd;
    for (int64_t h = 0; h < n_heads; ++h) {
      const T* v = x + r * ldx + h * hd;
      bf16* o = out + (h * out_rows + r) * hd;
#pragma omp simd
      for (int64_t i = 0; i < half; ++i) {
        const float a = to_float(v[i]), b = to_float(v[i + half]);
        o[i] = to_bf16(a * cs[i] - b * cs[half + i]);
        o[i + half] = to_bf16(b * cs[i] + a * cs[half + i]);
      }
    }
  }
}

template <class T>
void to_bf16_heads_impl(bf16* out, int64_t out_rows, const T* x, int64_t ldx, int64_t rows,
                        int64_t n_heads, int64_t hd) {
#pragma omp parallel for schedule(static) if (rows * n_heads * hd >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t h = 0; h < n_heads; ++h) {
      const T* v = x + r * ldx + h * hd;
      bf16* o = out + (h * out_rows + r) * hd;
      if constexpr (std::is_same_v<T, bf16>) {
        std::memcpy(o, v, static_cast<size_t>(hd) * sizeof(bf16));
      } else {
#pragma omp simd
        for (int64_t i = 0; i < hd; ++i) o[i] = to_bf16(v[i]);
      }
    }
  }
}

}  // namespace

void rope_bf16_heads(bf16* out, int64_t out_rows, const float* x, int64_t ldx, const int32_t* pos,
                     int64_t rows, int64_t n_heads, int64_t hd, const float* cos_sin) {
  rope_bf16_heads_impl(out, out_rows, x, ldx, pos, rows, n_heads, hd, cos_sin);
}

void rope_bf16_heads(bf16* out, int64_t out_rows, const bf16* x, int64_t ldx, const int32_t* pos,
                     int64_t rows, int64_t n_heads, int64_t hd, const float* cos_sin) {
  rope_bf16_heads_impl(out, out_rows, x, ldx, pos, rows, n_heads, hd, cos_sin);
}

void to_bf16_heads(bf16* out, int64_t out_rows, const float* x, int64_t ldx, int64_t rows,
                   int64_t n_heads, int64_t hd) {
  to_bf16_heads_impl(out, out_rows, x, ldx, rows, n_heads, hd);
}

void to_bf16_heads(bf16* out, int64_t out_rows, const bf16* x, int64_t ldx, int64_t rows,
                   int64_t n_heads, int64_t hd) {
  to_bf16_heads_impl(out, out_rows, x, ldx, rows, n_heads, hd);
}

void swiglu_bf16(bf16* out, const float* gate, const float* up, int64_t n) {
#ifdef ILLADA_HAVE_AVX512
  // Chunks of 1024 keep the static split 64-byte aligned for each thread.
  const int64_t chunks = (n + 1023) / 1024;
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t end = std::min(n, (c + 1) * 1024);
    for (int64_t i = c * 1024; i < end; i += 16) {
      const __mmask16 m = avx512::tail_mask(end - i);
      const __m512 g = _mm512_maskz_loadu_ps(m, gate + i), u = _mm512_maskz_loadu_ps(m, up + i);
      const __m512 e = avx512::exp(_mm512_sub_ps(_mm512_setzero_ps(), g));
      const __m512 silu = _mm512_div_ps(g, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
      avx512::store_bf16(out + i, _mm512_mul_ps(silu, u), m);
    }
  }
#else
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = to_bf16(g / (1.0f + fast_exp(-g)) * up[i]);
  }
#endif
}

void swiglu_bf16_rows(bf16* out, const bf16* gu, int64_t rows, int64_t n) {
  // Blocks of rows per thread: a call per row would enter a (disabled) parallel region per
  // row, which cost more than the row's arithmetic.
#pragma omp parallel for schedule(static) if (rows * n >= kParallelMin)
  for (int64_t r = 0; r < rows; ++r) {
    const bf16* g = gu + r * 2 * n;
#ifdef ILLADA_HAVE_AVX512
    for (int64_t i = 0; i < n; i += 16) {
      const __mmask16 m = avx512::tail_mask(n - i);
      const __m512 gv = avx512::load_bf16(g + i, m), uv = avx512::load_bf16(g + n + i, m);
      const __m512 e = avx512::exp(_mm512_sub_ps(_mm512_setzero_ps(), gv));
      const __m512 silu = _mm512_div_ps(gv, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
      avx512::store_bf16(out + r * n + i, _mm512_mul_ps(silu, uv), m);
    }
#else
    bf16* o = out + r * n;
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) {
      const float gi = to_float(g[i]);
      o[i] = to_bf16(gi / (1.0f + fast_exp(-gi)) * to_float(g[n + i]));
    }
#endif
  }
}

void softmax_rows_bf16(bf16* out, float* x, int64_t rows, int64_t n, float scale) {
#ifdef ILLADA_HAVE_AVX512
  for (int64_t r = 0; r < rows; ++r) {
    float* v = x + r * n;
    bf16* o = out + r * n;
    __m512 vmx = _mm512_set1_ps(-INFINITY);
    for (int64_t i = 0; i < n; i += 16) {
      vmx = _mm512_max_ps(vmx, _mm512_mask_loadu_ps(vmx, avx512::tail_mask(n - i), v + i));
    }
    const __m512 mx = _mm512_set1_ps(_mm512_reduce_max_ps(vmx)), vs = _mm512_set1_ps(scale);
    __m512 vsum = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
      const __mmask16 m = avx512::tail_mask(n - i);
      const __m512 e =
          avx512::exp(_mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, v + i), mx), vs));
      _mm512_mask_storeu_ps(v + i, m, e);
      vsum = _mm512_add_ps(vsum, _mm512_maskz_mov_ps(m, e));
    }
    const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(vsum));
    for (int64_t i = 0; i < n; i += 16) {
      const __mmask16 m = avx512::tail_mask(n - i);
      avx512::store_bf16(o + i, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, v + i), inv), m);
    }
  }
#else
  for (int64_t r = 0; r < rows; ++r) {
    float* v = x + r * n;
    bf16* o = out + r * n;
    const float inv = softmax_exp_row(v, n, scale);
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) o[i] = to_bf16(v[i] * inv);
  }
#endif
}

}  // namespace illada::cpu

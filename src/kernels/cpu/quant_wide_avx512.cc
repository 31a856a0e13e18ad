// The quantisers' AVX-512 forms (see quant_wide.h). Every line mirrors a line of the scalar
// code in kernels/quant.cc (fit_scale_min, fit_scale_symmetric, quantize_row_q8_0): the same
// products and sums in the same order, conditions as lane masks. Built with -ffp-contract=off.
#include "kernels/cpu/quant_wide.h"

#include <immintrin.h>

#include <cstring>

#include "kernels/quant.h"
#include "util/isa.h"
#include "util/isa_dispatch.h"

namespace illada::quant_wide {

bool wide_available() {
#if ILLADA_MULTI_ISA
  return isa_level() >= Isa::kAvx512;
#else
  return false;
#endif
}

#if ILLADA_MULTI_ISA
// GCC 12 reports its own _mm512_undefined_ps (a self-initialised variable) as uninitialised
// once inlined: a false positive.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq")  // = ILLADA_TARGET_AVX512

// Everything compiled for AVX-512 lives in namespace avx512 (tests/cli/portable_binary.sh).
namespace avx512 {
namespace {

// nearest_int of quant.cc: add 1.5 * 2^23 and read the low mantissa bits.
inline __m512i nearest_int(__m512 v) {
  const __m512i bits = _mm512_castps_si512(_mm512_add_ps(v, _mm512_set1_ps(12582912.0f)));
  return _mm512_sub_epi32(_mm512_and_si512(bits, _mm512_set1_epi32(0x007fffff)), _mm512_set1_epi32(0x00400000));
}
inline __m512i clamp(__m512i l, int lo, int hi) {
  return _mm512_max_epi32(_mm512_set1_epi32(lo), _mm512_min_epi32(_mm512_set1_epi32(hi), l));
}
inline __m512 ld(const float* p) { return _mm512_loadu_ps(p); }
inline __m512 mul(__m512 a, __m512 b) { return _mm512_mul_ps(a, b); }
inline __m512 add(__m512 a, __m512 b) { return _mm512_add_ps(a, b); }
inline __m512 sub(__m512 a, __m512 b) { return _mm512_sub_ps(a, b); }
inline __m512 div(__m512 a, __m512 b) { return _mm512_div_ps(a, b); }
inline __m512 set1(float v) { return _mm512_set1_ps(v); }
inline __m512 fl(__m512i l) { return _mm512_cvtepi32_ps(l); }
inline __mmask16 lt(__m512 a, __m512 b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
inline __mmask16 gt(__m512 a, __m512 b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
inline __m512 sel(__m512 a, __mmask16 m, __m512 b) { return _mm512_mask_mov_ps(a, m, b); }  // m ? b : a
inline __m512 neg(__m512 a) { return _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(a), _mm512_set1_epi32(INT32_MIN))); }

constexpr int kMinN = 32, kMinNmax = 15, kMinSteps = 20;
constexpr float kMinRmin = -1.0f, kMinRdelta = 0.1f;

}  // namespace

void fit_scale_min16(const float* x, const float* w, int32_t* L, float* scale_out, float* neg_min_out) {
  __m512 lo = ld(x), hi = lo;
  __m512 sum_w = ld(w);
  __m512 sum_x = mul(sum_w, ld(x));
  for (int i = 1; i < kMinN; ++i) {
    const __m512 xi = ld(x + 16 * i), wi = ld(w + 16 * i);
    lo = sel(lo, lt(xi, lo), xi);
    hi = sel(hi, gt(xi, hi), xi);
    sum_w = add(sum_w, wi);
    sum_x = add(sum_x, mul(wi, xi));
  }
  const __m512 zero = _mm512_setzero_ps();
  lo = sel(lo, gt(lo, zero), zero);
  const __mmask16 flat = _mm512_cmp_ps_mask(hi, lo, _CMP_EQ_OQ);
  __m512 iscale = div(set1(static_cast<float>(kMinNmax)), sub(hi, lo));
  __m512 scale = div(set1(1.0f), iscale);
  __m512 best_error = zero;
  for (int i = 0; i < kMinN; ++i) {
    const __m512 xi = ld(x + 16 * i);
    const __m512i l = clamp(nearest_int(mul(iscale, sub(xi, lo))), 0, kMinNmax);
    _mm512_storeu_si512(L + 16 * i, l);
    __m512 diff = sub(add(mul(scale, fl(l)), lo), xi);
    diff = mul(diff, diff);
    best_error = add(best_error, mul(ld(w + 16 * i), diff));
  }
  alignas(64) int32_t L_try[kMinN * 16];
  for (int is = 0; is <= kMinSteps; ++is) {
    // The grid starts at the best min so far (lo moves with each better fit, as in ggml).
    iscale = div(set1(kMinRmin + kMinRdelta * static_cast<float>(is) + static_cast<float>(kMinNmax)), sub(hi, lo));
    __m512 sum_l = zero, sum_l2 = zero, sum_xl = zero;
    for (int i = 0; i < kMinN; ++i) {
      const __m512 xi = ld(x + 16 * i), wi = ld(w + 16 * i);
      const __m512i l = clamp(nearest_int(mul(iscale, sub(xi, lo))), 0, kMinNmax);
      _mm512_store_si512(L_try + 16 * i, l);
      const __m512 lf = fl(l);
      sum_l = add(sum_l, mul(wi, lf));
      sum_l2 = add(sum_l2, mul(mul(wi, lf), lf));
      sum_xl = add(sum_xl, mul(mul(wi, lf), xi));
    }
    const __m512 det = sub(mul(sum_w, sum_l2), mul(sum_l, sum_l));
    const __mmask16 det_pos = gt(det, zero) & ~flat;
    if (!det_pos) continue;
    __m512 try_scale = div(sub(mul(sum_w, sum_xl), mul(sum_x, sum_l)), det);
    __m512 try_min = div(sub(mul(sum_l2, sum_x), mul(sum_l, sum_xl)), det);
    const __mmask16 min_pos = gt(try_min, zero);
    try_min = sel(try_min, min_pos, zero);
    try_scale = sel(try_scale, min_pos, div(sum_xl, sum_l2));
    __m512 error = zero;
    for (int i = 0; i < kMinN; ++i) {
      __m512 diff = sub(add(mul(try_scale, fl(_mm512_load_si512(L_try + 16 * i))), try_min), ld(x + 16 * i));
      diff = mul(diff, diff);
      error = add(error, mul(ld(w + 16 * i), diff));
    }
    const __mmask16 better = det_pos & lt(error, best_error);
    if (!better) continue;
    for (int i = 0; i < kMinN; ++i) {
      _mm512_mask_storeu_epi32(L + 16 * i, better, _mm512_load_si512(L_try + 16 * i));
    }
    best_error = sel(best_error, better, error);
    scale = sel(scale, better, try_scale);
    lo = sel(lo, better, try_min);
  }
  // A flat sub-block (max == min after the min is capped at 0) is all zeros.
  for (int i = 0; i < kMinN; ++i) _mm512_mask_storeu_epi32(L + 16 * i, flat, _mm512_setzero_si512());
  _mm512_storeu_ps(scale_out, sel(scale, flat, zero));
  _mm512_storeu_ps(neg_min_out, neg(lo));
}

namespace {
constexpr int kSymN = 16, kSymNmax = 32;
constexpr float kGroupMaxEps = 1e-15f;
}  // namespace

void fit_scale_symmetric16(const float* x, int32_t* L, float* scale_out) {
  const __m512 zero = _mm512_setzero_ps();
  __m512 max = zero, amax = zero;
  for (int i = 0; i < kSymN; ++i) {
    const __m512 xi = ld(x + 16 * i);
    const __m512 ax = _mm512_abs_ps(xi);
    const __mmask16 m = gt(ax, amax);
    amax = sel(amax, m, ax);
    max = sel(max, m, xi);
  }
  const __mmask16 flat = lt(amax, set1(kGroupMaxEps));
  __m512 iscale = div(set1(static_cast<float>(-kSymNmax)), max);
  __m512 sumlx = zero, suml2 = zero;
  for (int i = 0; i < kSymN; ++i) {
    const __m512 xi = ld(x + 16 * i);
    const __m512i l = clamp(nearest_int(mul(iscale, xi)), -kSymNmax, kSymNmax - 1);
    _mm512_storeu_si512(L + 16 * i, _mm512_add_epi32(l, _mm512_set1_epi32(kSymNmax)));
    const __m512 wx = mul(xi, xi), lf = fl(l);
    sumlx = add(sumlx, mul(mul(wx, xi), lf));
    suml2 = add(suml2, mul(mul(wx, lf), lf));
  }
  // suml2 ? sumlx / suml2 : 0 (a NaN counts as true, as in C).
  __m512 scale = sel(zero, _mm512_cmp_ps_mask(suml2, zero, _CMP_NEQ_UQ), div(sumlx, suml2));
  __m512 best = mul(scale, sumlx);
  alignas(64) int32_t L_try[kSymN * 16];
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = div(set1(-(static_cast<float>(kSymNmax) + 0.1f * static_cast<float>(is))), max);
    sumlx = suml2 = zero;
    for (int i = 0; i < kSymN; ++i) {
      const __m512 xi = ld(x + 16 * i);
      const __m512i l = clamp(nearest_int(mul(iscale, xi)), -kSymNmax, kSymNmax - 1);
      _mm512_store_si512(L_try + 16 * i, _mm512_add_epi32(l, _mm512_set1_epi32(kSymNmax)));
      const __m512 wx = mul(xi, xi), lf = fl(l);
      sumlx = add(sumlx, mul(mul(wx, xi), lf));
      suml2 = add(suml2, mul(mul(wx, lf), lf));
    }
    const __mmask16 better = gt(suml2, zero) & gt(mul(sumlx, sumlx), mul(best, suml2)) & ~flat;
    if (!better) continue;
    for (int i = 0; i < kSymN; ++i) {
      _mm512_mask_storeu_epi32(L + 16 * i, better, _mm512_load_si512(L_try + 16 * i));
    }
    scale = sel(scale, better, div(sumlx, suml2));
    best = sel(best, better, mul(scale, sumlx));
  }
  for (int i = 0; i < kSymN; ++i) _mm512_mask_storeu_epi32(L + 16 * i, flat, _mm512_setzero_si512());
  _mm512_storeu_ps(scale_out, sel(scale, flat, zero));
}


void quantize_row_q8_0(const float* x, std::byte* out, int64_t n) {
  const __m512 abs_mask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
  for (int64_t b = 0; b < n / 32; ++b, x += 32) {
    const __m512 a = ld(x), c = ld(x + 16);
    // The largest |x| (a maximum: the order of the comparisons does not change it).
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_and_ps(a, abs_mask), _mm512_and_ps(c, abs_mask)));
    const float d = amax / ((1 << 7) - 1);
    const float id = d ? 1.0f / d : 0.0f;
    const uint16_t dh = fp32_to_fp16(d);
    std::memcpy(out + 34 * b, &dh, 2);
    // std::round: half-way cases away from zero. t = trunc(v) and v - t are exact here
    // (|v| <= 127), so t + sign(v) where |v - t| >= 0.5.
    const __m512 vid = set1(id);
    __m512i q[2];
    for (int h = 0; h < 2; ++h) {
      const __m512 v = mul(h ? c : a, vid);
      const __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
      const __mmask16 up = _mm512_cmp_ps_mask(_mm512_and_ps(sub(v, t), abs_mask), set1(0.5f), _CMP_GE_OQ);
      const __m512 one = _mm512_or_ps(set1(1.0f), _mm512_andnot_ps(abs_mask, v));  // copysign(1, v)
      q[h] = _mm512_cvttps_epi32(_mm512_mask_add_ps(t, up, t, one));
    }
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 34 * b + 2), _mm512_cvtsepi32_epi8(q[0]));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 34 * b + 18), _mm512_cvtsepi32_epi8(q[1]));
  }
}

}  // namespace avx512

#pragma GCC pop_options
#endif

}  // namespace illada::quant_wide

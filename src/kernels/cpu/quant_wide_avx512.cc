// The quantisers' AVX-512 forms (see quant_wide.h): the k-quants' scale searches on 16 lanes
// (quant_wide_isa.inc) and q8_0 rows. Every line mirrors a line of the scalar code in
// kernels/quant.cc: the same products and sums in the same order, conditions as lane masks.
// Built with -ffp-contract=off.
#include <immintrin.h>

#include <cstring>

#include "kernels/cpu/quant_wide.h"
#include "kernels/quant.h"
#include "util/isa.h"
#include "util/isa_dispatch.h"

namespace illada::quant_wide {

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

constexpr int kLanes = 16;
using F = __m512;
using I = __m512i;
using M = __mmask16;

inline F ld(const float* p) { return _mm512_loadu_ps(p); }
inline void st(float* p, F v) { _mm512_storeu_ps(p, v); }
inline I ldi(const int32_t* p) { return _mm512_loadu_si512(p); }
inline void sti(int32_t* p, I v) { _mm512_storeu_si512(p, v); }
inline void msti(int32_t* p, M m, I v) { _mm512_mask_storeu_epi32(p, m, v); }
inline F mul(F a, F b) { return _mm512_mul_ps(a, b); }
inline F add(F a, F b) { return _mm512_add_ps(a, b); }
inline F sub(F a, F b) { return _mm512_sub_ps(a, b); }
inline F div(F a, F b) { return _mm512_div_ps(a, b); }
inline F set1(float v) { return _mm512_set1_ps(v); }
inline F fzero() { return _mm512_setzero_ps(); }
inline I izero() { return _mm512_setzero_si512(); }
inline F fl(I l) { return _mm512_cvtepi32_ps(l); }
// nearest_int of quant.cc: add 1.5 * 2^23 and read the low mantissa bits.
inline I nearest_int(F v) {
  const I bits = _mm512_castps_si512(_mm512_add_ps(v, _mm512_set1_ps(12582912.0f)));
  return _mm512_sub_epi32(_mm512_and_si512(bits, _mm512_set1_epi32(0x007fffff)), _mm512_set1_epi32(0x00400000));
}
inline I clamp(I l, int lo, int hi) {
  return _mm512_max_epi32(_mm512_set1_epi32(lo), _mm512_min_epi32(_mm512_set1_epi32(hi), l));
}
inline I addi(I a, int b) { return _mm512_add_epi32(a, _mm512_set1_epi32(b)); }
inline M lt(F a, F b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
inline M gt(F a, F b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
inline M eq(F a, F b) { return _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ); }
inline M neq(F a, F b) { return _mm512_cmp_ps_mask(a, b, _CMP_NEQ_UQ); }  // C's != (true for NaN)
inline F sel(F a, M m, F b) { return _mm512_mask_mov_ps(a, m, b); }        // m ? b : a
inline M mand(M a, M b) { return a & b; }
inline M andnot(M a, M b) { return a & static_cast<M>(~b); }  // a and not b
inline bool any(M m) { return m != 0; }
inline F neg(F a) { return _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(a), _mm512_set1_epi32(INT32_MIN))); }
inline F abs(F a) { return _mm512_abs_ps(a); }

}  // namespace

#include "kernels/cpu/quant_wide_isa.inc"

void fit_scale_min16(const float* x, const float* w, int32_t* L, float* scale, float* neg_min) {
  fit_scale_min_lanes(x, w, L, scale, neg_min);
}

void fit_scale_symmetric16(const float* x, int32_t* L, float* scale) { fit_scale_symmetric_lanes(x, L, scale); }

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

const Kernels* kernels() {
#if ILLADA_MULTI_ISA
  static const Kernels wide512{avx512::fit_scale_min16, avx512::fit_scale_symmetric16, avx512::quantize_row_q8_0};
  static const Kernels wide256{avx2::fit_scale_min16, avx2::fit_scale_symmetric16, avx2::quantize_row_q8_0};
  switch (isa_copy()) {  // the same levels as the dispatched loops
    case 2: return &wide512;
    case 1: return &wide256;
    default: break;
  }
#endif
  return nullptr;
}

}  // namespace illada::quant_wide

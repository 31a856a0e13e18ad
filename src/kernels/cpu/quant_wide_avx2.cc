// The k-quants' scale searches on AVX2 (see quant_wide.h): quant_wide_isa.inc on 8 lanes, run
// twice for 16 sub-blocks. Every operation is the scalar code's, in its order; masks are
// all-ones lanes. Built with -ffp-contract=off.
#include <immintrin.h>

#include "kernels/cpu/quant_wide.h"
#include "util/isa_dispatch.h"

namespace illada::quant_wide {

#if ILLADA_MULTI_ISA
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")  // = ILLADA_TARGET_AVX2

// Everything compiled for AVX2 lives in namespace avx2 (tests/cli/portable_binary.sh).
namespace avx2 {
namespace {

constexpr int kLanes = 8;
using F = __m256;
using I = __m256i;
using M = __m256;  // a lane is all ones where true

inline F ld(const float* p) { return _mm256_loadu_ps(p); }
inline void st(float* p, F v) { _mm256_storeu_ps(p, v); }
inline I ldi(const int32_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
inline void sti(int32_t* p, I v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v); }
inline void msti(int32_t* p, M m, I v) { _mm256_maskstore_epi32(p, _mm256_castps_si256(m), v); }
inline F mul(F a, F b) { return _mm256_mul_ps(a, b); }
inline F add(F a, F b) { return _mm256_add_ps(a, b); }
inline F sub(F a, F b) { return _mm256_sub_ps(a, b); }
inline F div(F a, F b) { return _mm256_div_ps(a, b); }
inline F set1(float v) { return _mm256_set1_ps(v); }
inline F fzero() { return _mm256_setzero_ps(); }
inline I izero() { return _mm256_setzero_si256(); }
inline F fl(I l) { return _mm256_cvtepi32_ps(l); }
inline I nearest_int(F v) {  // as quant.cc's
  const I bits = _mm256_castps_si256(_mm256_add_ps(v, _mm256_set1_ps(12582912.0f)));
  return _mm256_sub_epi32(_mm256_and_si256(bits, _mm256_set1_epi32(0x007fffff)), _mm256_set1_epi32(0x00400000));
}
inline I clamp(I l, int lo, int hi) {
  return _mm256_max_epi32(_mm256_set1_epi32(lo), _mm256_min_epi32(_mm256_set1_epi32(hi), l));
}
inline I addi(I a, int b) { return _mm256_add_epi32(a, _mm256_set1_epi32(b)); }
inline M lt(F a, F b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
inline M gt(F a, F b) { return _mm256_cmp_ps(a, b, _CMP_GT_OQ); }
inline M eq(F a, F b) { return _mm256_cmp_ps(a, b, _CMP_EQ_OQ); }
inline M neq(F a, F b) { return _mm256_cmp_ps(a, b, _CMP_NEQ_UQ); }  // C's != (true for NaN)
inline F sel(F a, M m, F b) { return _mm256_blendv_ps(a, b, m); }    // m ? b : a
inline M mand(M a, M b) { return _mm256_and_ps(a, b); }
inline M andnot(M a, M b) { return _mm256_andnot_ps(b, a); }  // a and not b
inline bool any(M m) { return _mm256_movemask_ps(m) != 0; }
inline F neg(F a) { return _mm256_xor_ps(a, _mm256_castsi256_ps(_mm256_set1_epi32(INT32_MIN))); }
inline F abs(F a) { return _mm256_and_ps(a, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff))); }

}  // namespace

#include "kernels/cpu/quant_wide_isa.inc"

void fit_scale_min16(const float* x, const float* w, int32_t* L, float* scale, float* neg_min) {
  for (int c = 0; c < 16; c += kLanes) fit_scale_min_lanes(x + c, w + c, L + c, scale + c, neg_min + c);
}

void fit_scale_symmetric16(const float* x, int32_t* L, float* scale) {
  for (int c = 0; c < 16; c += kLanes) fit_scale_symmetric_lanes(x + c, L + c, scale + c);
}

}  // namespace avx2

#pragma GCC pop_options
#endif

}  // namespace illada::quant_wide

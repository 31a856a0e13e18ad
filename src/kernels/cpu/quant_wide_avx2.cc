// The quantisers' AVX2 forms (see quant_wide.h): the k-quants' scale searches
// (quant_wide_isa.inc on 8 lanes, run twice for 16 sub-blocks) and q8_0 rows. Every operation is
// the scalar code's, in its order; masks are all-ones lanes. Built with -ffp-contract=off.
#include <immintrin.h>

#include <cstring>

#include "kernels/cpu/quant_wide.h"
#include "kernels/quant.h"
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

void quantize_row_q8_0(const float* x, std::byte* out, int64_t n) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  for (int64_t b = 0; b < n / 32; ++b, x += 32) {
    __m256 v[4];
    for (int h = 0; h < 4; ++h) v[h] = ld(x + 8 * h);
    // The largest |x| (a maximum: the order of the comparisons does not change it).
    const __m256 m = _mm256_max_ps(_mm256_max_ps(_mm256_and_ps(v[0], abs_mask), _mm256_and_ps(v[1], abs_mask)),
                                   _mm256_max_ps(_mm256_and_ps(v[2], abs_mask), _mm256_and_ps(v[3], abs_mask)));
    __m128 r = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    r = _mm_max_ps(r, _mm_movehl_ps(r, r));
    r = _mm_max_ss(r, _mm_movehdup_ps(r));
    const float amax = _mm_cvtss_f32(r);
    const float d = amax / ((1 << 7) - 1);
    const float id = d ? 1.0f / d : 0.0f;
    const uint16_t dh = fp32_to_fp16(d);
    std::memcpy(out + 34 * b, &dh, 2);
    // std::round as in the AVX-512 form: trunc, plus sign(v) where |v - trunc(v)| >= 0.5.
    I q[4];
    for (int h = 0; h < 4; ++h) {
      const __m256 y = mul(v[h], set1(id));
      const __m256 t = _mm256_round_ps(y, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
      const __m256 up = _mm256_cmp_ps(_mm256_and_ps(sub(y, t), abs_mask), set1(0.5f), _CMP_GE_OQ);
      const __m256 one = _mm256_or_ps(set1(1.0f), _mm256_andnot_ps(abs_mask, y));  // copysign(1, y)
      q[h] = _mm256_cvttps_epi32(add(t, _mm256_and_ps(up, one)));
    }
    // packs interleave the 128-bit lanes: dwords come out as q0[0:4] q1[0:4] q2[0:4] q3[0:4]
    // q0[4:8] q1[4:8] q2[4:8] q3[4:8]; the permutation puts them in order.
    const I bytes = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
    sti(reinterpret_cast<int32_t*>(out + 34 * b + 2),
        _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
  }
}

}  // namespace avx2

#pragma GCC pop_options
#endif

}  // namespace illada::quant_wide

// AVX-512 versions of fast_exp() and the bf16 rounding store, 16 lanes at a
// time, for the exp-bound inference loops (softmax, SiLU): 2x the width GCC picks for these
// loops on its own, with the same arithmetic. Only the avx512 copies of the kernels call them
// (util/isa_dispatch.h); each function carries that copy's target, so the header compiles in any
// translation unit.
#pragma once

#include "util/isa_dispatch.h"

#if ILLADA_MULTI_ISA
// GCC 12 reports its own _mm512_undefined_*() placeholders as maybe
// uninitialised.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <cstdint>

#include "util/bf16.h"

#define ILLADA_AVX512_INLINE [[gnu::always_inline, gnu::target(ILLADA_TARGET_AVX512)]] inline

namespace illada::cpu::simd512 {

// fast_exp() on 16 lanes: the same clamp, Cody-Waite reduction and degree-7
// polynomial; 2^n is applied with vscalefps instead of building the exponent
// bits. The clamp's operand order matters: vmaxps/vminps return their second
// operand when either is NaN, so x goes second and a NaN stays a NaN, as in the
// scalar twin (with x first, NaN became exp(-87.3) and NaN weights gave finite
// garbage instead of the non-finite logits the forward pass reports).
ILLADA_AVX512_INLINE __m512 exp(__m512 x) {
  x = _mm512_min_ps(_mm512_set1_ps(88.0f), _mm512_max_ps(_mm512_set1_ps(-87.3f), x));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145751953125f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.42860682030941723212e-6f), r);
  __m512 p = _mm512_set1_ps(1.0f / 5040.0f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 720.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

// 16 floats rounded to bf16 exactly as to_bf16(float) does (nearest even, NaN
// kept quiet), stored to dst under mask m (lanes off are not written).
ILLADA_AVX512_INLINE void store_bf16(bf16* dst, __m512 v, __mmask16 m = 0xffff) {
  const __m512i u = _mm512_castps_si512(v);
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  __m512i r =
      _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
  const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)),
                                                _mm512_set1_epi32(0x7f800000));
  r = _mm512_mask_or_epi32(r, nan, _mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40));
  _mm256_mask_storeu_epi16(dst, m, _mm512_cvtepi32_epi16(r));
}

// 16 bf16 values widened to floats (exact), lanes off m read as 0.
ILLADA_AVX512_INLINE __m512 load_bf16(const bf16* src, __mmask16 m = 0xffff) {
  const __m256i h = _mm256_maskz_loadu_epi16(m, src);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

ILLADA_AVX512_INLINE __mmask16 tail_mask(int64_t left) {
  return left >= 16 ? __mmask16(0xffff) : static_cast<__mmask16>((1u << left) - 1);
}

}  // namespace illada::cpu::simd512

#undef ILLADA_AVX512_INLINE
#endif

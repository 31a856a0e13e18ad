// Vector forms of the slow parts of the quantisers (kernels/quant.cc): the k-quants' scale
// searches for 16 sub-blocks at once, one per lane (AVX-512: 16 lanes; AVX2: 8 lanes, twice),
// and the q8_0 rows (finite values). Each lane runs
// the scalar code's float operations in the scalar order (no fused multiply-adds: the file is
// built with -ffp-contract=off), so the bytes written are those of the scalar twins in quant.cc,
// which reproduce ggml's quantisers.
#pragma once

#include <cstddef>
#include <cstdint>

namespace illada::quant_wide {

// Lane layout: value i of sub-block j at x[16 * i + j] (the sub-blocks transposed).
namespace avx512 {
// q4_K: 16 sub-blocks of 32 values with weights w (same layout); integers in [0, 15], a scale
// and a min, searching 21 grid widths around the min/max grid (ggml's make_qkx2_quants with
// rmin -1, rdelta 0.1, nstep 20). L[16 * i + j] receives value i of sub-block j.
void fit_scale_min16(const float* x, const float* w, int32_t* L, float* scale, float* neg_min);
// q6_K: 16 sub-blocks of 16 values, integers in [-32, 31] stored + 32 in L, weights x^2, 19
// scales around 32 / max|x| (ggml's make_qx_quants with rmse_type 1).
void fit_scale_symmetric16(const float* x, int32_t* L, float* scale);
// q8_0: n values (a multiple of 32) into n / 32 blocks of 34 bytes, as quantize_row_q8_0.
void quantize_row_q8_0(const float* x, std::byte* out, int64_t n);
}  // namespace avx512

namespace avx2 {
void fit_scale_min16(const float* x, const float* w, int32_t* L, float* scale, float* neg_min);
void fit_scale_symmetric16(const float* x, int32_t* L, float* scale);
void quantize_row_q8_0(const float* x, std::byte* out, int64_t n);
}  // namespace avx2

// The functions above of the level the calling thread may run (AVX-512 or AVX2, from
// isa_copy(): the CPU's level, capped by ILLADA_ISA or set_isa_cap), or nullptr for the scalar
// code: always in a build without the wide copies (ILLADA_MULTI_ISA 0: Clang).
struct Kernels {
  void (*fit_scale_min16)(const float* x, const float* w, int32_t* L, float* scale, float* neg_min);
  void (*fit_scale_symmetric16)(const float* x, int32_t* L, float* scale);
  void (*quantize_row_q8_0)(const float* x, std::byte* out, int64_t n);
};
const Kernels* kernels();

}  // namespace illada::quant_wide

// CPU implementations of the bf16-output ops: the loops live in bf16_ops_isa.inc, compiled
// once per instruction set; each function here runs the copy for isa_level() (util/isa_dispatch.h).
#include "kernels/cpu/bf16_ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "kernels/cpu/avx512_math.h"
#include "kernels/cpu/fast_math.h"
#include "util/isa_dispatch.h"

#define ILLADA_ISA_BODY "kernels/cpu/bf16_ops_isa.inc"
#include "util/foreach_isa.inc"

namespace illada::cpu {

void rmsnorm_bf16(bf16* out, const float* x, const float* w, int64_t rows, int64_t d, float eps) {
  ILLADA_DISPATCH(rmsnorm_bf16, out, x, w, rows, d, eps)
}

void rope_bf16_heads(bf16* out, int64_t out_rows, const float* x, int64_t ldx, const int32_t* pos,
                     int64_t rows, int64_t n_heads, int64_t hd, const float* cos_sin) {
  ILLADA_DISPATCH(rope_bf16_heads, out, out_rows, x, ldx, pos, rows, n_heads, hd, cos_sin)
}

void rope_bf16_heads(bf16* out, int64_t out_rows, const bf16* x, int64_t ldx, const int32_t* pos,
                     int64_t rows, int64_t n_heads, int64_t hd, const float* cos_sin) {
  ILLADA_DISPATCH(rope_bf16_heads, out, out_rows, x, ldx, pos, rows, n_heads, hd, cos_sin)
}

void to_bf16_heads(bf16* out, int64_t out_rows, const float* x, int64_t ldx, int64_t rows,
                   int64_t n_heads, int64_t hd) {
  ILLADA_DISPATCH(to_bf16_heads, out, out_rows, x, ldx, rows, n_heads, hd)
}

void to_bf16_heads(bf16* out, int64_t out_rows, const bf16* x, int64_t ldx, int64_t rows,
                   int64_t n_heads, int64_t hd) {
  ILLADA_DISPATCH(to_bf16_heads, out, out_rows, x, ldx, rows, n_heads, hd)
}

void swiglu_bf16(bf16* out, const float* gate, const float* up, int64_t n) {
  ILLADA_DISPATCH(swiglu_bf16, out, gate, up, n)
}

void swiglu_bf16_rows(bf16* out, const bf16* gu, int64_t rows, int64_t n) {
  ILLADA_DISPATCH(swiglu_bf16_rows, out, gu, rows, n)
}

void softmax_rows_bf16(bf16* out, float* x, int64_t rows, int64_t n, float scale) {
  ILLADA_DISPATCH(softmax_rows_bf16, out, x, rows, n, scale)
}

}  // namespace illada::cpu

// CPU backward kernels (see backward.h): the loops live in backward_isa.inc, compiled once per
// instruction set; each function here runs the copy for isa_level() (util/isa_dispatch.h).
#include "kernels/cpu/backward.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "kernels/cpu/bf16_ops.h"
#include "kernels/cpu/fast_math.h"
#include "util/isa_dispatch.h"
#include "kernels/cpu/ops.h"
#include "kernels/cpu/task_gemm.h"
#include "kernels/gemm.h"
#include "util/check.h"
#include "util/profile.h"

#define ILLADA_ISA_BODY "kernels/cpu/backward_isa.inc"
#include "util/foreach_isa.inc"

namespace illada::cpu {

void rmsnorm_backward(float* dx, float* dw, const float* dy, const float* x, const float* w,
                      int64_t rows, int64_t d, float eps, bool accumulate_dx) {
  ILLADA_DISPATCH(rmsnorm_backward, dx, dw, dy, x, w, rows, d, eps, accumulate_dx)
}

void rmsnorm_backward(float* dx, bf16* dx16, float* dw, const float* dy, const float* x,
                      const float* w, int64_t rows, int64_t d, float eps, bool accumulate_dx) {
  ILLADA_DISPATCH(rmsnorm_backward, dx, dx16, dw, dy, x, w, rows, d, eps, accumulate_dx)
}

void rope_backward(float* dx, int64_t ld, const int32_t* pos, int64_t rows, int64_t n_heads,
                   int64_t hd, const float* cos_sin) {
  ILLADA_DISPATCH(rope_backward, dx, ld, pos, rows, n_heads, hd, cos_sin)
}

void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate,
                     const float* up, int64_t n) {
  ILLADA_DISPATCH(swiglu_backward, dgate, dup, dout, gate, up, n)
}

void swiglu_backward(bf16* dgate, bf16* dup, const float* dout, const float* gate,
                     const float* up, int64_t n) {
  ILLADA_DISPATCH(swiglu_backward, dgate, dup, dout, gate, up, n)
}

void swiglu_backward_rows(bf16* dgu, const float* dout, const float* gu, int64_t rows,
                          int64_t n) {
  ILLADA_DISPATCH(swiglu_backward_rows, dgu, dout, gu, rows, n)
}

void swiglu_backward_rows(bf16* dgu, const bf16* dout, const bf16* gu, int64_t rows,
                          int64_t n) {
  ILLADA_DISPATCH(swiglu_backward_rows, dgu, dout, gu, rows, n)
}

double cross_entropy_backward(float* dlogits, float* row_loss, const float* logits,
                              const int32_t* targets, const float* row_scale, int64_t rows,
                              int64_t n) {
  ILLADA_DISPATCH(cross_entropy_backward, dlogits, row_loss, logits, targets, row_scale, rows, n)
}

void embedding_backward(float* dwte, const float* dx, const int32_t* ids, int64_t rows,
                        int64_t d) {
  ILLADA_DISPATCH(embedding_backward, dwte, dx, ids, rows, d)
}

void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q,
                        const float* k, const float* v, const float* out,
                        const AttentionBackwardShape& s, AttentionBackwardWorkspace& ws) {
  ILLADA_DISPATCH(attention_backward, dq, dk, dv, dout, q, k, v, out, s, ws)
}

void attention_backward_heads(float* dq, float* dk, float* dv, const float* dout, const bf16* q,
                              const bf16* k, const bf16* v, const bf16* out16, int64_t ld_rows,
                              const AttentionBackwardShape& s, AttentionBackwardWorkspace& ws) {
  ILLADA_DISPATCH(attention_backward_heads, dq, dk, dv, dout, q, k, v, out16, ld_rows, s, ws)
}

void rope_backward_heads(bf16* out, const float* dx, int64_t ld_rows, const int32_t* pos,
                         int64_t rows, int64_t n_heads, int64_t hd, const float* cos_sin) {
  ILLADA_DISPATCH(rope_backward_heads, out, dx, ld_rows, pos, rows, n_heads, hd, cos_sin)
}

void rope_backward_heads(bf16* out, int64_t ld, const float* dx, int64_t ld_rows,
                         const int32_t* pos, int64_t rows, int64_t n_heads, int64_t hd,
                         const float* cos_sin) {
  ILLADA_DISPATCH(rope_backward_heads, out, ld, dx, ld_rows, pos, rows, n_heads, hd, cos_sin)
}

}  // namespace illada::cpu

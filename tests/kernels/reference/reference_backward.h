// Scalar twins of the CPU backward kernels (kernels/cpu/backward.h): the definitions they are
// tested against, in double where sums are long. Same argument conventions as the optimised
// versions (dw accumulated; dx written or accumulated).
#pragma once

#include <cstdint>

namespace illada::reference {

void rmsnorm_backward(float* dx, float* dw, const float* dy, const float* x, const float* w,
                      int64_t rows, int64_t d, float eps, bool accumulate_dx);
// Rotation by -angle, angles from theta as in reference::rope; dx [rows, n_heads*hd] dense.
void rope_backward(float* dx, const int32_t* pos, int64_t rows, int64_t n_heads, int64_t hd,
                   float theta);
void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate,
                     const float* up, int64_t n);
double cross_entropy_backward(float* dlogits, float* row_loss, const float* logits,
                              const int32_t* targets, const float* row_scale, int64_t rows,
                              int64_t n);
void embedding_backward(float* dwte, const float* dx, const int32_t* ids, int64_t rows, int64_t d);
// Gradient of reference::attention; dq, dk, dv written.
void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* q,
                        const float* k, const float* v, int64_t n_heads, int64_t n_kv_heads,
                        int64_t hd, const int32_t* cu_seqlens, int64_t n_seqs);

}  // namespace illada::reference

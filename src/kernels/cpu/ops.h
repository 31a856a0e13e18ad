// Element-wise and row-wise ops of the Transformer on the CPU (OpenMP over rows). Free
// functions on raw buffers, output first; fp32 math as the LLaDA reference does it.
#pragma once

#include <cstdint>
#include <span>

#include "util/bf16.h"

namespace illada::cpu {

// out[r, :] = x[r, :] * rsqrt(mean(x[r, :]^2) + eps) * w      x, out: [rows, d]; w: [d]
void rmsnorm(float* out, const float* x, const float* w, int64_t rows, int64_t d, float eps);

// Rotary embedding in place, rotate-half layout: x [rows, n_heads * hd] (row stride ld),
// row r at position pos[r]; cos_sin [max_pos, hd] holds cos for i < hd/2 and sin after.
void rope(float* x, int64_t ld, const int32_t* pos, int64_t rows, int64_t n_heads, int64_t hd,
          const float* cos_sin);

// Fills the table used by rope(): inv_freq[i] = theta^(-2i/hd), angle = pos * inv_freq, fp32.
void rope_table(float* cos_sin, int64_t max_pos, int64_t hd, float theta);

// out = silu(gate) * up, all [n].
void swiglu(float* out, const float* gate, const float* up, int64_t n);

// Row-wise softmax in place, with the logits scaled first: x [rows, n] (row stride ld).
void softmax_rows(float* x, int64_t ld, int64_t rows, int64_t n, float scale);


}  // namespace illada::cpu

// Fused row-wise ops of the bf16 inference forward: each computes in fp32
// exactly as its fp32 twin in ops.h does and rounds the result to bf16 on the
// store, so the input of the next matrix product is written once instead of
// written in fp32, read and converted. Results equal to_bf16(twin(...)) up to
// the summation order of the row reductions.
#pragma once

#include <cstdint>

#include "util/bf16.h"

namespace illada::cpu {

// bf16(rmsnorm(x)): out [rows, d], x [rows, d], w [d].
void rmsnorm_bf16(bf16* out, const float* x, const float* w, int64_t rows, int64_t d, float eps);

// bf16(rope(x)) in head-major layout, without touching x: x has `rows` rows of
// stride ldx, n_heads heads of hd each; head h of row r goes to out[(h *
// out_rows + r) * hd] (out_rows
// >= rows: the rows of every head are contiguous, as attention's products want
// them). Same rotation and table as rope().
void rope_bf16_heads(bf16* out, int64_t out_rows, const float* x, int64_t ldx, const int32_t* pos,
                     int64_t rows, int64_t n_heads, int64_t hd, const float* cos_sin);

// bf16(x) in the same head-major layout (values, cached keys), without RoPE.
void to_bf16_heads(bf16* out, int64_t out_rows, const float* x, int64_t ldx, int64_t rows,
                   int64_t n_heads, int64_t hd);
// The same two from bf16 rows (a product's bf16 output): RoPE computed in fp32 on the widened
// values, values copied.
void rope_bf16_heads(bf16* out, int64_t out_rows, const bf16* x, int64_t ldx, const int32_t* pos,
                     int64_t rows, int64_t n_heads, int64_t hd, const float* cos_sin);
void to_bf16_heads(bf16* out, int64_t out_rows, const bf16* x, int64_t ldx, int64_t rows,
                   int64_t n_heads, int64_t hd);

// bf16(silu(gate) * up), all [n].
void swiglu_bf16(bf16* out, const float* gate, const float* up, int64_t n);
// The same from bf16 rows holding gate and up side by side: gu [rows, 2n] (gate | up), out
// [rows, n] (the fused gate/up product's output), parallel over rows.
void swiglu_bf16_rows(bf16* out, const bf16* gu, int64_t rows, int64_t n);

// bf16(softmax(scale * x)) row-wise, x [rows, n] dense (used as scratch). Runs
// on the calling thread: it is meant for one task of an already parallel loop.
void softmax_rows_bf16(bf16* out, float* x, int64_t rows, int64_t n, float scale);

}  // namespace illada::cpu

// Plain scalar twins of the optimised kernels: the definition each optimised kernel is tested
// against, written for clarity (double accumulation where the sum is long). Test code only:
// compiled into kernels_tests, never into the library.
#pragma once

#include <cstdint>

namespace illada::reference {

// C[m, n] = alpha * A[m, k] · B^T (B [n, k]) or A · B (B [k, n]); plus C if accumulate.
void gemm(float* c, const float* a, const float* b, int64_t m, int64_t n, int64_t k,
          bool b_is_nk, float alpha, bool accumulate);
void rmsnorm(float* out, const float* x, const float* w, int64_t rows, int64_t d, float eps);
// Rotary embedding, rotate-half layout; positions given per row; theta as in the config.
void rope(float* x, const int32_t* pos, int64_t rows, int64_t n_heads, int64_t hd, float theta);
void swiglu(float* out, const float* gate, const float* up, int64_t n);
void softmax_rows(float* x, int64_t rows, int64_t n, float scale);
// Non-causal GQA over packed sequences; dense rows as in cpu::attention.
void attention(float* out, const float* q, const float* k, const float* v, int64_t n_heads,
               int64_t n_kv_heads, int64_t hd, const int32_t* cu_seqlens, int64_t n_seqs);

}  // namespace illada::reference

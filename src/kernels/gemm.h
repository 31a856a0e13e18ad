// Matrix products through oneDNN: fp32 on AVX-512, bf16 on AMX with fp32 accumulation.
// Row-major throughout; B is either [n, k] (a PyTorch Linear weight, "NT") or [k, n] ("NN").
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "util/bf16.h"

namespace illada {

struct GemmShape {
  int64_t m = 0, n = 0, k = 0;
  int64_t lda = 0;  // row stride of A [m, k]
  int64_t ldb = 0;  // row stride of B: [n, k] when b_is_nk, else [k, n]
  int64_t ldc = 0;  // row stride of C [m, n]
  bool b_is_nk = true;
  float alpha = 1.0f;
  bool accumulate = false;  // C += alpha*A·B instead of C = alpha*A·B
};

// C[m, n] = alpha * A · op(B)   (op(B) = B^T for [n, k], B for [k, n]); C is always fp32.
void gemm(float* c, const float* a, const float* b, const GemmShape& s);
void gemm(float* c, const bf16* a, const bf16* b, const GemmShape& s);
// The same with C in bf16: fp32 accumulation, rounded once on the store (half the memory
// traffic of an fp32 C that the next op would read and round anyway); no accumulate.
void gemm(bf16* c, const bf16* a, const bf16* b, const GemmShape& s);
// C = R + A · op(B), R fp32 with C's shape and row stride (a residual connection: R is read
// in the product's store instead of being copied into C first); s.accumulate must be false.
void gemm_add(float* c, const bf16* a, const bf16* b, const float* r, const GemmShape& s);

// The same with A read transposed: A is stored [k, m] (row stride s.lda), so a weight
// gradient dW = dY^T X reads dY [T, n] in place instead of a transposed copy (oneDNN's AMX
// matmul reads it at the plain layout's rate).
void gemm_at(float* c, const float* a, const float* b, const GemmShape& s);
void gemm_at(float* c, const bf16* a, const bf16* b, const GemmShape& s);

// A batch of products of one shape: product i reads A at a + i*a, B at b + i*b and writes C
// at c + i*c (strides in elements).
struct GemmBatch {
  int64_t count = 1;
  int64_t a = 0, b = 0, c = 0;
};

// C[i] (+)= alpha * A[i] · op(B[i]) for i < batch.count, each product as s describes: one
// oneDNN call, parallel over the batch, instead of many small calls (attention's per-head
// products).
void gemm_batched(float* c, const float* a, const float* b, const GemmShape& s,
                  const GemmBatch& batch);
void gemm_batched(float* c, const bf16* a, const bf16* b, const GemmShape& s,
                  const GemmBatch& batch);

// Convenience for activations [m, k] times a Linear weight [n, k], all dense.
inline GemmShape linear_shape(int64_t m, int64_t n, int64_t k, bool accumulate = false) {
  return GemmShape{.m = m, .n = n, .k = k, .lda = k, .ldb = k, .ldc = n, .b_is_nk = true,
                   .alpha = 1.0f, .accumulate = accumulate};
}

// Rows of a packed matrix that stay readable in the plain row-major layout [rows, k] (the
// source a matrix was packed from, or each part of a stacked one, in order).
struct PlainRows {
  const bf16* data = nullptr;
  int64_t rows = 0;
};

// How a packed matrix with k > 512 is laid out.
enum class WeightsLayout {
  // One blocked matrix: the fastest products outside the batch-invariant scope; inside it they
  // are reduced in chunks of 512 columns over the plain rows (`plain`, read again: mapped pages
  // fault back in next to the packed copy).
  kWhole,
  // Column chunks of 512 (the last shorter), each its own blocked matrix, summed in order:
  // batch-invariant products read them directly (each chunk one reduction block), so the plain
  // rows are never read again; other products are a few percent slower than kWhole.
  kChunks,
};

// A bf16 weight matrix [n, k] (a PyTorch Linear weight) reordered once into the blocked
// layout oneDNN's AMX matmul reads fastest: 1.3-1.6x the plain layout's rate at 32-320 rows.
// The layout is chosen for the matrix alone and serves any number of rows. `plain`, when given,
// are the same rows in the plain layout, read by batch-invariant products of a kWhole matrix
// with k > 512.
class PackedWeights {
 public:
  PackedWeights(const bf16* w, int64_t n, int64_t k, std::vector<PlainRows> plain = {},
                WeightsLayout layout = WeightsLayout::kWhole);  // w: row-major [n, k]
  ~PackedWeights();
  PackedWeights(const PackedWeights&) = delete;
  PackedWeights& operator=(const PackedWeights&) = delete;
  int64_t n() const { return n_; }
  int64_t k() const { return k_; }
  size_t bytes() const;
  const std::vector<PlainRows>& plain() const { return plain_; }
  struct Impl;
  const Impl& impl() const { return *impl_; }

 private:
  int64_t n_, k_;
  std::vector<PlainRows> plain_;
  std::unique_ptr<Impl> impl_;
};

// C[m, n] (+)= A[m, k] · B^T with B packed; s.n and s.k must match B, s.ldb is ignored. The
// bf16 C and the residual form (C = R + A·B^T) as for plain B.
void gemm(float* c, const bf16* a, const PackedWeights& b, const GemmShape& s);
void gemm(bf16* c, const bf16* a, const PackedWeights& b, const GemmShape& s);
void gemm_add(float* c, const bf16* a, const PackedWeights& b, const float* r, const GemmShape& s);

// Batch-invariant products. oneDNN picks its kernel and the blocking of the reduction over k
// from the whole shape, so a row of C = A·B can come out in different bits when A has other
// rows beside it (measured on AMX bf16: rows 1-4 take another kernel, and k > 512 is blocked
// by the number of rows); fp32 was invariant in the same measurements. While a
// BatchInvariantScope(true) lives on a thread, every product of gemm()/gemm_add() that thread
// runs (not the batched or transposed forms) computes each row in an order fixed by n and k
// alone: rows run in buckets of 16 (whole buckets in place, the rest padded to 16 with zero
// rows, so that fewer than 8 rows never take their own kernel and a server's changing row
// counts need one primitive per bucket), and k > 512 is reduced in chunks of 512 columns
// (fp32 partial sums, each chunk one reduction block): over the plain weights, a kChunks packed
// matrix's chunks, or a kWhole one's PlainRows. Costs: the padding, and for k > 512 a pass
// over C per chunk (docs/serve.md has the measurement). Scopes nest; the default is off.
class BatchInvariantScope {
 public:
  explicit BatchInvariantScope(bool on = true);
  ~BatchInvariantScope();
  BatchInvariantScope(const BatchInvariantScope&) = delete;
  BatchInvariantScope& operator=(const BatchInvariantScope&) = delete;

 private:
  bool saved_;
};
bool batch_invariant_products();  // whether this thread is inside an active scope

// Number of oneDNN primitives created so far, and held now. The cache keeps one per distinct
// shape (row count included), at most the limit: past it the least recently used goes (a
// later product of that shape creates it again, ~0.1-1 ms).
inline constexpr int64_t kGemmCacheDefaultLimit = 512;
int64_t gemm_primitives_created();
int64_t gemm_primitives_cached();
int64_t set_gemm_cache_limit(int64_t limit);  // returns the previous limit

}  // namespace illada

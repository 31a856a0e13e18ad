// Matrix products on block-quantised weights: y[t, n] (+)= x[t, k] · W^T for a weight W [n, k]
// stored as ggml stores it (q8_0, q4_0, q5_0, q4_K, q6_K rows, as in a GGUF file or a mapping of
// one), x in fp32 or bf16, y in fp32 (or bf16, rounded once). The activations are quantised to
// int8 in blocks along k and every product is an integer dot product; the kernel (AMX-int8,
// AVX512-VNNI, AVX-VNNI, AVX2, scalar) is chosen at run time from the CPU and isa_level(). All
// kernels give the same bits (see "Numerics"), whatever the thread count.
//
// Numerics (tests/kernels/qgemm_reference.h is the readable twin):
// - Activations: each row of x is cut into blocks of 32 values (for q8_0 / q4_0 weights, as
//   ggml's q8_0; for q5_0 too) or 256 values (for q4_K / q6_K, as ggml's q8_K). A block's scale is
//   d = amax / 127 in fp32 (ggml keeps q8_0's in fp16: ours is finer) and its values are
//   q = round-to-nearest-even(x * (1 / d)), |q| <= 127. A block below 2^-100 in magnitude is
//   zero; a block holding Inf or NaN makes its rows' outputs NaN.
// - Per sub-block of the weights (32 values; 16 for q6_K) the integer sum c = Σ w_int * q is
//   exact (w_int: the stored integer minus its offset: q8_0 q, q4_0 q - 8, q5_0 q - 16, q4_K q,
//   q6_K q - 32).
// - q8_0, q4_0, q5_0: acc = fma(dx * dw, c, acc) block after block.
//   k-quants, per super-block of 256 (as ggml: integers first, then d and dmin in float):
//   q4_K: P = Σ_j sc_j c_j, Q = Σ_j m_j Σq_j (exact int32); acc = fma(dx, fma(-dmin, Q, d*P), acc).
//   q6_K: P = Σ_j sc_j c_j over the 16 sub-blocks; acc = fma(dx, d*P, acc).
// - y = acc, or y += acc with accumulate.
#pragma once

#include <cstddef>
#include <cstdint>

#include "io/ggml_types.h"
#include "util/bf16.h"

namespace illada {

// How the blocks of a quantised matrix are arranged in memory.
enum class QuantLayout {
  // ggml's (a GGUF file's): row r's blocks one after another at data + r * row_bytes, where
  // row_bytes = ggml_row_bytes(type, k).
  kRows,
  // qgemm_pack's: the rows in panels of 16 (the last padded with zero rows), each panel
  // 16 * row_bytes bytes at data + (r / 16) * 16 * row_bytes, holding block 0 of its 16 rows,
  // then block 1, ...; inside each group of 16 blocks every field of ggml's block (the scale d,
  // the integers qs, ...) is stored for the 16 rows side by side: the field at byte `off` of a
  // block, `size` bytes long, of row r's block b is at
  //   panel + b * 16 * block_bytes + 16 * off + (r % 16) * size.
  // Same size as the rows; each panel is one sequential stream, the 16 scales of a block are
  // contiguous and an AMX tile of 16 rows' integers is one contiguous load.
  kPanels16,
};

// A weight matrix W [n, k] (a PyTorch Linear weight) in a ggml block format.
struct QuantMatrix {
  GgmlType type = GgmlType::Q8_0;
  const std::byte* data = nullptr;
  int64_t n = 0;  // rows (outputs)
  int64_t k = 0;  // values per row (inputs): a multiple of the type's block size
  QuantLayout layout = QuantLayout::kRows;
};

// kPanels16: its size (rows rounded up to 16) and the conversions both ways. The layout's
// version, for caches that store packed matrices: bumped whenever the arrangement changes.
constexpr int kQuantPanelsVersion = 1;
uint64_t qgemm_packed_bytes(GgmlType t, int64_t n, int64_t k);
// rows: n rows of ggml_row_bytes(t, k) bytes; packed: qgemm_packed_bytes(t, n, k) bytes.
void qgemm_pack(GgmlType t, const std::byte* rows, int64_t n, int64_t k, std::byte* packed);
void qgemm_unpack(GgmlType t, const std::byte* packed, int64_t n, int64_t k, std::byte* rows);

// The instruction sets the products can run on.
enum class QuantKernel {
  kAuto,        // the best one this CPU has, under isa_level()
  kScalar,      // plain C++
  kAvx2,        // 256-bit, vpmaddubsw (Haswell .. Zen 3)
  kAvxVnni,     // 256-bit, VEX vpdpbusd (Alder Lake, Zen 5 and others with AVX-VNNI)
  kAvx512Vnni,  // 512-bit, vpdpbusd (Cascade Lake .. Zen 4/5)
  kAmx,         // AMX-int8 tiles (Sapphire Rapids and later)
};

struct QGemmOptions {
  int64_t ldx = 0;          // row stride of x in elements (0: k)
  int64_t ldy = 0;          // row stride of y in elements (0: n)
  bool accumulate = false;  // y += x · W^T instead of y = x · W^T
  QuantKernel kernel = QuantKernel::kAuto;  // tests and benchmarks pick one
};

// y[t, n] (+)= x[t, k] · W^T. Throws Error when W's type is not supported (qgemm_supports),
// k is not a whole number of blocks, or the kernel asked for is not available on this CPU.
void qgemm(float* y, const float* x, const QuantMatrix& w, int64_t t, const QGemmOptions& o = {});
void qgemm(float* y, const bf16* x, const QuantMatrix& w, int64_t t, const QGemmOptions& o = {});
// The same products stored as bf16: each value is to_bf16() of the fp32 output above, without the
// fp32 rows in between. Not accumulated (o.accumulate throws Error).
void qgemm(bf16* y, const float* x, const QuantMatrix& w, int64_t t, const QGemmOptions& o = {});
void qgemm(bf16* y, const bf16* x, const QuantMatrix& w, int64_t t, const QGemmOptions& o = {});

// Whether qgemm multiplies weights of type t (q8_0, q4_0, q5_0, q4_K, q6_K; q5_0 is what
// llama.cpp's quantiser writes for q4_K rows that are not whole 256-value blocks).
bool qgemm_supports(GgmlType t);

// The kernel kAuto runs on this CPU (isa_level() and cpu_features()).
QuantKernel qgemm_kernel();
// Whether this CPU and OS can run kernel k (ignores the ILLADA_ISA cap: tests run every one).
bool qgemm_kernel_available(QuantKernel k);
const char* quant_kernel_name(QuantKernel k);  // "auto", "scalar", "avx2", "avx_vnni", ...

}  // namespace illada

// ggml's element formats on raw buffers: f32, f16, bf16 and the block-quantised q8_0, q4_0,
// q5_0, q4_K and q6_K, quantised and dequantised so that the bytes equal those of llama.cpp's
// reference quantisation (ggml-quants.c of commit de3ff815, the code path llama_model_quantize
// takes without an importance matrix) bit for bit. The compiler must not fuse or reorder the
// float arithmetic here (this file is built with -ffp-contract=off).
//
// Block layouts (little-endian; "d" fields are IEEE half precision):
//   q8_0  32 values, 34 bytes: d, qs[32] int8                       x = d*q
//   q4_0  32 values, 18 bytes: d, qs[16] (low nibble value j, high j+16)   x = d*(q-8)
//   q5_0  32 values, 22 bytes: d, qh u32 (5th bits), qs[16]         x = d*(q-16)
//   q4_K 256 values, 144 bytes: d, dmin, scales[12] (8 x 6-bit scale + 6-bit min), qs[128]
//                               x = d*sc*q - dmin*m over 8 sub-blocks of 32
//   q6_K 256 values, 210 bytes: ql[128] (low 4 bits), qh[64] (high 2 bits), scales[16] int8, d
//                               x = d*sc*(q-32) over 16 sub-blocks of 16
#pragma once

#include <cstddef>
#include <cstdint>

#include "io/ggml_types.h"

namespace illada {

// IEEE half precision with round-to-nearest-even (ggml's GGML_FP32_TO_FP16: NaN becomes the
// quiet NaN 0x7e00 with the sign kept, magnitudes from 65520 up become infinity).
uint16_t fp32_to_fp16(float f);
float fp16_to_fp32(uint16_t h);

// Whether quantize_rows / dequantize_rows handle `t` (f32, f16, bf16, q8_0, q4_0, q5_0, q4_K,
// q6_K).
bool quant_supported(GgmlType t);

// Writes rows x cols values of `x` (row-major) into `out` in format `t`: rows *
// ggml_row_bytes(t, cols) bytes. cols must be a multiple of t's block size and the values
// finite (ILLADA_CHECK). Rows are independent; large calls run rows in parallel, which does not
// change the bytes.
void quantize_rows(GgmlType t, const float* x, std::byte* out, int64_t rows, int64_t cols);

// The inverse: rows x cols floats from data in format `t`.
void dequantize_rows(GgmlType t, const std::byte* in, float* y, int64_t rows, int64_t cols);

// Rows whose scales are finite (what ggml checks before it keeps quantised data); false when a
// block scale is Inf or NaN (e.g. values beyond half precision's range in q8_0).
bool quant_scales_finite(GgmlType t, const std::byte* data, int64_t rows, int64_t cols);

// One row of each format: n values (a multiple of the block size).
void quantize_row_q8_0(const float* x, std::byte* y, int64_t n);
void quantize_row_q4_0(const float* x, std::byte* y, int64_t n);
void quantize_row_q5_0(const float* x, std::byte* y, int64_t n);
void quantize_row_q4_K(const float* x, std::byte* y, int64_t n);
void quantize_row_q6_K(const float* x, std::byte* y, int64_t n);
void dequantize_row_q8_0(const std::byte* x, float* y, int64_t n);
void dequantize_row_q4_0(const std::byte* x, float* y, int64_t n);
void dequantize_row_q5_0(const std::byte* x, float* y, int64_t n);
void dequantize_row_q4_K(const std::byte* x, float* y, int64_t n);
void dequantize_row_q6_K(const std::byte* x, float* y, int64_t n);

}  // namespace illada

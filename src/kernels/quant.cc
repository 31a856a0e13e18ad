// Block quantisation that reproduces ggml's reference quantisers byte for byte. The search for
// scales (the k-quants try several candidate scales and keep the one with the least weighted
// squared error) is written out in the same order of float operations as ggml, because any
// change of rounding (a fused multiply-add, a reordered sum, a double intermediate) can flip a
// quantised value and with it the bytes.
#include "kernels/quant.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/cpu/quant_wide.h"
#include "util/bf16.h"
#include "util/check.h"

namespace illada {
namespace {

constexpr int kQK = 32;    // values per q8_0 / q4_0 / q5_0 block
constexpr int kQK_K = 256; // values per k-quant super-block
constexpr float kGroupMaxEps = 1e-15f;  // a group with |x| below this everywhere is all zero

struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[kQK];
};
struct BlockQ4_0 {
  uint16_t d;
  uint8_t qs[kQK / 2];
};
struct BlockQ5_0 {
  uint16_t d;
  uint8_t qh[4];
  uint8_t qs[kQK / 2];
};
struct BlockQ4_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[12];
  uint8_t qs[kQK_K / 2];
};
struct BlockQ6_K {
  uint8_t ql[kQK_K / 2];
  uint8_t qh[kQK_K / 4];
  int8_t scales[kQK_K / 16];
  uint16_t d;
};
static_assert(sizeof(BlockQ8_0) == 34 && sizeof(BlockQ4_0) == 18 && sizeof(BlockQ5_0) == 22);
static_assert(sizeof(BlockQ4_K) == 144 && sizeof(BlockQ6_K) == 210);

// Round to the nearest integer, ties to even, by letting the float adder do it: adding
// 1.5 * 2^23 leaves the integer in the low mantissa bits (valid for |v| < 2^22).
inline int nearest_int(float v) {
  const float shifted = v + 12582912.0f;
  int32_t bits;
  std::memcpy(&bits, &shifted, 4);
  return (bits & 0x007fffff) - 0x00400000;
}

// Quantises x[0..n) to integers in [0, nmax] with a scale and an offset (the q4_K sub-blocks):
// starts from the min/max grid, then tries nstep+1 other grid widths around it and keeps the
// least weighted squared error. Returns the scale; *neg_min receives -offset (>= 0).
float fit_scale_min(int n, int nmax, const float* x, const float* w, uint8_t* L, float* neg_min,
                    uint8_t* L_try, float rmin, float rdelta, int nstep) {
  float lo = x[0], hi = x[0];
  float sum_w = w[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < lo) lo = x[i];
    if (x[i] > hi) hi = x[i];
    const float wi = w[i];
    sum_w += wi;
    sum_x += wi * x[i];
  }
  if (lo > 0) lo = 0;
  if (hi == lo) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    *neg_min = -lo;
    return 0.0f;
  }
  float iscale = nmax / (hi - lo);
  float scale = 1 / iscale;
  float best_error = 0;
  for (int i = 0; i < n; ++i) {
    const int l = nearest_int(iscale * (x[i] - lo));
    L[i] = static_cast<uint8_t>(std::max(0, std::min(nmax, l)));
    float diff = scale * L[i] + lo - x[i];
    diff = diff * diff;
    best_error += w[i] * diff;
  }
  if (nstep < 1) {
    *neg_min = -lo;
    return scale;
  }
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * is + nmax) / (hi - lo);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      int l = nearest_int(iscale * (x[i] - lo));
      l = std::max(0, std::min(nmax, l));
      L_try[i] = static_cast<uint8_t>(l);
      const float wi = w[i];
      sum_l += wi * l;
      sum_l2 += wi * l * l;
      sum_xl += wi * l * x[i];
    }
    const float det = sum_w * sum_l2 - sum_l * sum_l;
    if (det > 0) {
      float try_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
      float try_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
      if (try_min > 0) {
        try_min = 0;
        try_scale = sum_xl / sum_l2;
      }
      float error = 0;
      for (int i = 0; i < n; ++i) {
        float diff = try_scale * L_try[i] + try_min - x[i];
        diff = diff * diff;
        error += w[i] * diff;
      }
      if (error < best_error) {
        for (int i = 0; i < n; ++i) L[i] = L_try[i];
        best_error = error;
        scale = try_scale;
        lo = try_min;
      }
    }
  }
  *neg_min = -lo;
  return scale;
}

// Quantises x[0..n) to signed integers in [-nmax, nmax) around zero (the q6_K sub-blocks),
// weighting each value by x^2: tries 19 scales around nmax/max|x| and keeps the one with the
// best weighted least-squares fit. L receives q + nmax; returns the fitted scale.
float fit_scale_symmetric(int n, int nmax, const float* x, int8_t* L) {
  float max = 0, amax = 0;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  if (amax < kGroupMaxEps) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.0f;
  }
  auto clamp = [nmax](int l) { return std::max(-nmax, std::min(nmax - 1, l)); };
  float iscale = -nmax / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = clamp(nearest_int(iscale * x[i]));
    L[i] = static_cast<int8_t>(l + nmax);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * l;
    suml2 += w * l * l;
  }
  float scale = suml2 ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(nmax + 0.1f * is) / max;
    sumlx = suml2 = 0;
    for (int i = 0; i < n; ++i) {
      const int l = clamp(nearest_int(iscale * x[i]));
      const float w = x[i] * x[i];
      sumlx += w * x[i] * l;
      suml2 += w * l * l;
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(nmax + clamp(nearest_int(iscale * x[i])));
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

// The 6-bit scale and min of sub-block j of a q4_K block (8 of each packed in 12 bytes: the
// first four in the low 6 bits of bytes 0-3 / 4-7, the last four split across bytes 8-11 and
// the top 2 bits of bytes 0-7).
inline void q4k_scale_min(int j, const uint8_t* s, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
    *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

// Runs rows [0, rows) through fn(row) in parallel when there is enough work.
template <class Fn>
void for_rows(int64_t rows, int64_t cols, Fn&& fn) {
#pragma omp parallel for schedule(dynamic, 16) if (rows * cols >= (int64_t{1} << 16))
  for (int64_t r = 0; r < rows; ++r) fn(r);
}

}  // namespace

uint16_t fp32_to_fp16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const auto sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return sign | 0x7e00u;  // NaN
  if (a >= 0x477ff000u) return sign | 0x7c00u;  // >= 65520 (and Inf) round to Inf
  if (a < 0x38800000u) {                        // below 2^-14: a subnormal half (or zero)
    if (a < 0x33000000u) return sign;           // at most 2^-25: rounds to zero
    const uint32_t e = a >> 23;                 // 102..112
    const uint32_t m = (a & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126 - e;             // value * 2^24 = m >> shift
    uint32_t q = m >> shift;
    const uint32_t rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1u))) ++q;
    return static_cast<uint16_t>(sign | q);
  }
  uint32_t r = a - (112u << 23);  // exponent bias 127 -> 15
  r += 0xfffu + ((r >> 13) & 1u);  // round the 13 dropped bits, ties to even (may carry)
  return static_cast<uint16_t>(sign | (r >> 13));
}

float fp16_to_fp32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t em = h & 0x7fffu;
  uint32_t bits;
  if (em >= 0x7c00u) {
    bits = sign | 0x7f800000u | ((em & 0x3ffu) << 13);  // Inf / NaN
    if (em != 0x7c00u) bits |= 0x00400000u;              // NaNs come out quiet, as in ggml
  } else if (em >= 0x0400u) {
    bits = sign | ((em << 13) + (112u << 23));
  } else {
    const float v = static_cast<float>(em) * 0x1p-24f;  // subnormal (exact)
    std::memcpy(&bits, &v, 4);
    bits |= sign;
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// ---- q8_0 ----

void quantize_row_q8_0(const float* x, std::byte* out, int64_t n) {
  if (const quant_wide::Kernels* wide = quant_wide::kernels()) return wide->quantize_row_q8_0(x, out, n);
  auto* y = reinterpret_cast<BlockQ8_0*>(out);
  for (int64_t b = 0; b < n / kQK; ++b, x += kQK) {
    float amax = 0.0f;
    for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / ((1 << 7) - 1);
    const float id = d ? 1.0f / d : 0.0f;
    BlockQ8_0 blk;
    blk.d = fp32_to_fp16(d);
    for (int j = 0; j < kQK; ++j) blk.qs[j] = static_cast<int8_t>(std::round(x[j] * id));
    std::memcpy(&y[b], &blk, sizeof(blk));
  }
}

void dequantize_row_q8_0(const std::byte* in, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b) {
    BlockQ8_0 blk;
    std::memcpy(&blk, in + b * sizeof(BlockQ8_0), sizeof(blk));
    const float d = fp16_to_fp32(blk.d);
    for (int j = 0; j < kQK; ++j) y[b * kQK + j] = blk.qs[j] * d;
  }
}

// ---- q4_0 / q5_0: the value of largest magnitude maps to -8 / -16 ----

// The signed value of largest magnitude of a block (the first one on ties).
inline float signed_absmax(const float* x, int n) {
  float amax = 0.0f, max = 0.0f;
  for (int j = 0; j < n; ++j) {
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
  return max;
}

void quantize_row_q4_0(const float* x, std::byte* out, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b, x += kQK) {
    const float d = signed_absmax(x, kQK) / -8;
    const float id = d ? 1.0f / d : 0.0f;
    BlockQ4_0 blk;
    blk.d = fp32_to_fp16(d);
    for (int j = 0; j < kQK / 2; ++j) {
      const auto lo = static_cast<uint8_t>(std::min<int>(15, static_cast<int8_t>(x[j] * id + 8.5f)));
      const auto hi =
          static_cast<uint8_t>(std::min<int>(15, static_cast<int8_t>(x[j + kQK / 2] * id + 8.5f)));
      blk.qs[j] = static_cast<uint8_t>(lo | (hi << 4));
    }
    std::memcpy(out + b * sizeof(BlockQ4_0), &blk, sizeof(blk));
  }
}

void dequantize_row_q4_0(const std::byte* in, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b) {
    BlockQ4_0 blk;
    std::memcpy(&blk, in + b * sizeof(BlockQ4_0), sizeof(blk));
    const float d = fp16_to_fp32(blk.d);
    for (int j = 0; j < kQK / 2; ++j) {
      y[b * kQK + j] = ((blk.qs[j] & 0x0F) - 8) * d;
      y[b * kQK + j + kQK / 2] = ((blk.qs[j] >> 4) - 8) * d;
    }
  }
}

void quantize_row_q5_0(const float* x, std::byte* out, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b, x += kQK) {
    const float d = signed_absmax(x, kQK) / -16;
    const float id = d ? 1.0f / d : 0.0f;
    BlockQ5_0 blk;
    blk.d = fp32_to_fp16(d);
    uint32_t qh = 0;
    for (int j = 0; j < kQK / 2; ++j) {
      const auto lo = static_cast<uint8_t>(std::min<int>(31, static_cast<int8_t>(x[j] * id + 16.5f)));
      const auto hi =
          static_cast<uint8_t>(std::min<int>(31, static_cast<int8_t>(x[j + kQK / 2] * id + 16.5f)));
      blk.qs[j] = static_cast<uint8_t>((lo & 0x0F) | ((hi & 0x0F) << 4));
      qh |= static_cast<uint32_t>((lo & 0x10u) >> 4) << j;
      qh |= static_cast<uint32_t>((hi & 0x10u) >> 4) << (j + kQK / 2);
    }
    std::memcpy(blk.qh, &qh, 4);
    std::memcpy(out + b * sizeof(BlockQ5_0), &blk, sizeof(blk));
  }
}

void dequantize_row_q5_0(const std::byte* in, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK; ++b) {
    BlockQ5_0 blk;
    std::memcpy(&blk, in + b * sizeof(BlockQ5_0), sizeof(blk));
    const float d = fp16_to_fp32(blk.d);
    uint32_t qh;
    std::memcpy(&qh, blk.qh, 4);
    for (int j = 0; j < kQK / 2; ++j) {
      const int lo = (blk.qs[j] & 0x0F) | static_cast<int>(((qh >> j) << 4) & 0x10);
      const int hi = (blk.qs[j] >> 4) | static_cast<int>((qh >> (j + 12)) & 0x10);
      y[b * kQK + j] = (lo - 16) * d;
      y[b * kQK + j + kQK / 2] = (hi - 16) * d;
    }
  }
}

// ---- q4_K ----

namespace {

// The rest of a q4_K super-block once its sub-blocks are fitted: 6-bit scales and mins, the
// values requantised against them, the nibbles packed.
void finish_q4_K(const float* x, const float* scales, const float* mins, uint8_t* L, std::byte* out) {
  BlockQ4_K blk{};
  float max_scale = 0, max_min = 0;
  for (int j = 0; j < kQK_K / 32; ++j) {
    if (scales[j] > max_scale) max_scale = scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  const float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
  const float inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
  for (int j = 0; j < kQK_K / 32; ++j) {
    const uint8_t ls = std::min<uint8_t>(63, static_cast<uint8_t>(nearest_int(inv_scale * scales[j])));
    const uint8_t lm = std::min<uint8_t>(63, static_cast<uint8_t>(nearest_int(inv_min * mins[j])));
    if (j < 4) {
      blk.scales[j] = ls;
      blk.scales[j + 4] = lm;
    } else {
      blk.scales[j + 4] = static_cast<uint8_t>((ls & 0xF) | ((lm & 0xF) << 4));
      blk.scales[j - 4] |= static_cast<uint8_t>((ls >> 4) << 6);
      blk.scales[j] |= static_cast<uint8_t>((lm >> 4) << 6);
    }
  }
  blk.d = fp32_to_fp16(max_scale / 63.0f);
  blk.dmin = fp32_to_fp16(max_min / 63.0f);
  // Requantise every value against the scales as stored (6-bit and half precision).
  for (int j = 0; j < kQK_K / 32; ++j) {
    uint8_t sc, m;
    q4k_scale_min(j, blk.scales, &sc, &m);
    const float d = fp16_to_fp32(blk.d) * sc;
    if (!d) continue;
    const float dm = fp16_to_fp32(blk.dmin) * m;
    for (int i = 0; i < 32; ++i) {
      const int l = nearest_int((x[32 * j + i] + dm) / d);
      L[32 * j + i] = static_cast<uint8_t>(std::max(0, std::min(15, l)));
    }
  }
  // Bytes 32k..32k+31 hold sub-block 2k in the low nibbles and 2k+1 in the high ones.
  for (int j = 0, q = 0; j < kQK_K; j += 64, q += 32) {
    for (int l = 0; l < 32; ++l) blk.qs[q + l] = static_cast<uint8_t>(L[j + l] | (L[j + l + 32] << 4));
  }
  std::memcpy(out, &blk, sizeof(blk));
}

}  // namespace

void quantize_row_q4_K(const float* x, std::byte* out, int64_t n) {
  const int64_t nb = n / kQK_K;
  const quant_wide::Kernels* wide = quant_wide::kernels();
  // Two super-blocks (16 sub-blocks) per pass: the wide search fits one sub-block per lane.
  alignas(64) float w[2 * kQK_K], xt[2 * kQK_K], wt[2 * kQK_K];
  alignas(64) int32_t Lt[2 * kQK_K];
  alignas(64) float scales[16], mins[16];
  uint8_t L[2 * kQK_K], L_try[32];
  for (int64_t b0 = 0; b0 < nb; b0 += 2, x += 2 * kQK_K) {
    const int nsub = static_cast<int>(std::min<int64_t>(2, nb - b0)) * (kQK_K / 32);
    for (int j = 0; j < nsub; ++j) {
      const float* xs = x + 32 * j;
      float sum_x2 = 0;
      for (int l = 0; l < 32; ++l) sum_x2 += xs[l] * xs[l];
      const float av_x = std::sqrt(sum_x2 / 32);
      for (int l = 0; l < 32; ++l) w[32 * j + l] = av_x + std::fabs(xs[l]);
    }
    if (wide) {
      for (int j = 0; j < 16; ++j) {
        for (int l = 0; l < 32; ++l) {
          xt[16 * l + j] = j < nsub ? x[32 * j + l] : 0.0f;  // missing sub-blocks: zeros
          wt[16 * l + j] = j < nsub ? w[32 * j + l] : 0.0f;
        }
      }
      wide->fit_scale_min16(xt, wt, Lt, scales, mins);
      for (int j = 0; j < nsub; ++j) {
        for (int l = 0; l < 32; ++l) L[32 * j + l] = static_cast<uint8_t>(Lt[16 * l + j]);
      }
    } else {
      for (int j = 0; j < nsub; ++j) {
        scales[j] = fit_scale_min(32, 15, x + 32 * j, w + 32 * j, L + 32 * j, &mins[j], L_try, -1.0f, 0.1f, 20);
      }
    }
    for (int s = 0; s < nsub / 8; ++s) {
      finish_q4_K(x + s * kQK_K, scales + 8 * s, mins + 8 * s, L + s * kQK_K,
                  out + (b0 + s) * sizeof(BlockQ4_K));
    }
  }
}

void dequantize_row_q4_K(const std::byte* in, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    BlockQ4_K blk;
    std::memcpy(&blk, in + b * sizeof(BlockQ4_K), sizeof(blk));
    const float d = fp16_to_fp32(blk.d), dmin = fp16_to_fp32(blk.dmin);
    const uint8_t* q = blk.qs;
    for (int j = 0, is = 0; j < kQK_K; j += 64, is += 2, q += 32) {
      uint8_t sc, m;
      q4k_scale_min(is, blk.scales, &sc, &m);
      const float d1 = d * sc, m1 = dmin * m;
      q4k_scale_min(is + 1, blk.scales, &sc, &m);
      const float d2 = d * sc, m2 = dmin * m;
      for (int l = 0; l < 32; ++l) *y++ = d1 * (q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * (q[l] >> 4) - m2;
    }
  }
}

// ---- q6_K ----

void quantize_row_q6_K(const float* x, std::byte* out, int64_t n) {
  int8_t L[kQK_K];
  alignas(64) float scales[kQK_K / 16], xt[kQK_K];
  alignas(64) int32_t Lt[kQK_K];
  const quant_wide::Kernels* wide = quant_wide::kernels();
  for (int64_t b = 0; b < n / kQK_K; ++b, x += kQK_K) {
    BlockQ6_K blk{};
    if (wide) {  // the 16 sub-blocks of 16 values, one per lane
      for (int ib = 0; ib < 16; ++ib) {
        for (int i = 0; i < 16; ++i) xt[16 * i + ib] = x[16 * ib + i];
      }
      wide->fit_scale_symmetric16(xt, Lt, scales);
      for (int ib = 0; ib < 16; ++ib) {
        for (int i = 0; i < 16; ++i) L[16 * ib + i] = static_cast<int8_t>(Lt[16 * i + ib]);
      }
    } else {
      for (int ib = 0; ib < kQK_K / 16; ++ib) scales[ib] = fit_scale_symmetric(16, 32, x + 16 * ib, L + 16 * ib);
    }
    float max_scale = 0, max_abs_scale = 0;
    for (int ib = 0; ib < kQK_K / 16; ++ib) {
      const float scale = scales[ib];
      if (std::fabs(scale) > max_abs_scale) {
        max_abs_scale = std::fabs(scale);
        max_scale = scale;
      }
    }
    if (max_abs_scale < kGroupMaxEps) {  // an all-zero block
      blk.d = fp32_to_fp16(0.0f);
      std::memcpy(out + b * sizeof(BlockQ6_K), &blk, sizeof(blk));
      continue;
    }
    const float iscale = -128.0f / max_scale;
    blk.d = fp32_to_fp16(1 / iscale);
    for (int ib = 0; ib < kQK_K / 16; ++ib) {
      blk.scales[ib] = static_cast<int8_t>(std::min(127, nearest_int(iscale * scales[ib])));
    }
    for (int j = 0; j < kQK_K / 16; ++j) {
      const float d = fp16_to_fp32(blk.d) * blk.scales[j];
      if (!d) continue;
      for (int i = 0; i < 16; ++i) {
        const int l = nearest_int(x[16 * j + i] / d);
        L[16 * j + i] = static_cast<int8_t>(std::max(-32, std::min(31, l)) + 32);
      }
    }
    // Per 128 values: ql holds the low nibbles of values l and l+64 (bytes l) and of l+32 and
    // l+96 (bytes l+32); qh the top two bits of all four.
    for (int j = 0, ql = 0, qh = 0; j < kQK_K; j += 128, ql += 64, qh += 32) {
      for (int l = 0; l < 32; ++l) {
        const auto q1 = static_cast<uint8_t>(L[j + l] & 0xF);
        const auto q2 = static_cast<uint8_t>(L[j + l + 32] & 0xF);
        const auto q3 = static_cast<uint8_t>(L[j + l + 64] & 0xF);
        const auto q4 = static_cast<uint8_t>(L[j + l + 96] & 0xF);
        blk.ql[ql + l] = static_cast<uint8_t>(q1 | (q3 << 4));
        blk.ql[ql + l + 32] = static_cast<uint8_t>(q2 | (q4 << 4));
        blk.qh[qh + l] = static_cast<uint8_t>((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) |
                                              ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6));
      }
    }
    std::memcpy(out + b * sizeof(BlockQ6_K), &blk, sizeof(blk));
  }
}

void dequantize_row_q6_K(const std::byte* in, float* y, int64_t n) {
  for (int64_t b = 0; b < n / kQK_K; ++b) {
    BlockQ6_K blk;
    std::memcpy(&blk, in + b * sizeof(BlockQ6_K), sizeof(blk));
    const float d = fp16_to_fp32(blk.d);
    const uint8_t* ql = blk.ql;
    const uint8_t* qh = blk.qh;
    const int8_t* sc = blk.scales;
    for (int j = 0; j < kQK_K; j += 128, y += 128, ql += 64, qh += 32, sc += 8) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = static_cast<int8_t>((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = static_cast<int8_t>((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = static_cast<int8_t>((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = static_cast<int8_t>((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l] = d * sc[is] * q1;
        y[l + 32] = d * sc[is + 2] * q2;
        y[l + 64] = d * sc[is + 4] * q3;
        y[l + 96] = d * sc[is + 6] * q4;
      }
    }
  }
}

// ---- dispatch ----

bool quant_supported(GgmlType t) {
  switch (t) {
    case GgmlType::F32:
    case GgmlType::F16:
    case GgmlType::BF16:
    case GgmlType::Q8_0:
    case GgmlType::Q4_0:
    case GgmlType::Q5_0:
    case GgmlType::Q4_K:
    case GgmlType::Q6_K:
      return true;
    default:
      return false;
  }
}

void quantize_rows(GgmlType t, const float* x, std::byte* out, int64_t rows, int64_t cols) {
  ILLADA_CHECK(quant_supported(t), "quantize_rows: unsupported type ", ggml_type_name(t));
  ILLADA_CHECK(cols % ggml_traits(t).block_size == 0, "quantize_rows: ", cols,
               " values per row is not a multiple of the block size of ", ggml_type_name(t));
  const uint64_t row_bytes = ggml_row_bytes(t, cols);
  for_rows(rows, cols, [&](int64_t r) {
    const float* xr = x + r * cols;
    std::byte* o = out + r * row_bytes;
    switch (t) {
      case GgmlType::F32:
        std::memcpy(o, xr, cols * sizeof(float));
        break;
      case GgmlType::F16:
        for (int64_t i = 0; i < cols; ++i) {
          const uint16_t h = fp32_to_fp16(xr[i]);
          std::memcpy(o + 2 * i, &h, 2);
        }
        break;
      case GgmlType::BF16:
        for (int64_t i = 0; i < cols; ++i) {
          const bf16 h = to_bf16(xr[i]);
          std::memcpy(o + 2 * i, &h, 2);
        }
        break;
      case GgmlType::Q8_0: quantize_row_q8_0(xr, o, cols); break;
      case GgmlType::Q4_0: quantize_row_q4_0(xr, o, cols); break;
      case GgmlType::Q5_0: quantize_row_q5_0(xr, o, cols); break;
      case GgmlType::Q4_K: quantize_row_q4_K(xr, o, cols); break;
      case GgmlType::Q6_K: quantize_row_q6_K(xr, o, cols); break;
      default: break;
    }
  });
}

void dequantize_rows(GgmlType t, const std::byte* in, float* y, int64_t rows, int64_t cols) {
  ILLADA_CHECK(quant_supported(t), "dequantize_rows: unsupported type ", ggml_type_name(t));
  ILLADA_CHECK(cols % ggml_traits(t).block_size == 0, "dequantize_rows: bad row length ", cols);
  const uint64_t row_bytes = ggml_row_bytes(t, cols);
  for_rows(rows, cols, [&](int64_t r) {
    const std::byte* ir = in + r * row_bytes;
    float* yr = y + r * cols;
    switch (t) {
      case GgmlType::F32:
        std::memcpy(yr, ir, cols * sizeof(float));
        break;
      case GgmlType::F16:
        for (int64_t i = 0; i < cols; ++i) {
          uint16_t h;
          std::memcpy(&h, ir + 2 * i, 2);
          yr[i] = fp16_to_fp32(h);
        }
        break;
      case GgmlType::BF16:
        for (int64_t i = 0; i < cols; ++i) {
          bf16 h;
          std::memcpy(&h, ir + 2 * i, 2);
          yr[i] = to_float(h);
        }
        break;
      case GgmlType::Q8_0: dequantize_row_q8_0(ir, yr, cols); break;
      case GgmlType::Q4_0: dequantize_row_q4_0(ir, yr, cols); break;
      case GgmlType::Q5_0: dequantize_row_q5_0(ir, yr, cols); break;
      case GgmlType::Q4_K: dequantize_row_q4_K(ir, yr, cols); break;
      case GgmlType::Q6_K: dequantize_row_q6_K(ir, yr, cols); break;
      default: break;
    }
  });
}

bool quant_scales_finite(GgmlType t, const std::byte* data, int64_t rows, int64_t cols) {
  auto finite = [](uint16_t h) { return (h & 0x7c00u) != 0x7c00u; };
  const int64_t blocks = rows * (cols / static_cast<int64_t>(ggml_traits(t).block_size));
  for (int64_t b = 0; b < blocks; ++b) {
    uint16_t d = 0, dmin = 0;
    switch (t) {
      case GgmlType::Q8_0: std::memcpy(&d, data + b * sizeof(BlockQ8_0), 2); break;
      case GgmlType::Q4_0: std::memcpy(&d, data + b * sizeof(BlockQ4_0), 2); break;
      case GgmlType::Q5_0: std::memcpy(&d, data + b * sizeof(BlockQ5_0), 2); break;
      case GgmlType::Q4_K:
        std::memcpy(&d, data + b * sizeof(BlockQ4_K), 2);
        std::memcpy(&dmin, data + b * sizeof(BlockQ4_K) + 2, 2);
        break;
      case GgmlType::Q6_K: std::memcpy(&d, data + b * sizeof(BlockQ6_K) + offsetof(BlockQ6_K, d), 2); break;
      default: return true;
    }
    if (!finite(d) || !finite(dmin)) return false;
  }
  return true;
}

}  // namespace illada

// The scalar twin of qgemm (kernels/qgemm.h), written from the ggml block layouts and the
// numerics stated in qgemm.h, one output at a time and without any of the kernels' layouts:
// every kernel must give exactly these bits. Also a ggml-style variant of the activation
// quantisation (q8_0 scales rounded to half precision) for the accuracy comparison.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "io/ggml_types.h"
#include "util/bf16.h"

namespace illada::qref {

inline float half(const uint8_t* p) { return half_to_float(static_cast<uint16_t>(p[0] | p[1] << 8)); }

// One row's activations in blocks of `block` values: the integers and one scale per block.
struct ActRow {
  std::vector<int> q;
  std::vector<float> d;
};

// amax / 127 in fp32, q = nearest-even(x / d) (through x * (1/d)); tiny blocks are zero and a
// block holding Inf or NaN gets scale NaN. ggml_half_scale: ggml's q8_0, whose d is stored in
// half precision after the values were rounded with the fp32 d.
inline ActRow quantize_row(const float* x, int64_t k, int block, bool ggml_half_scale = false) {
  ActRow r;
  r.q.assign(k, 0);
  for (int64_t b = 0; b < k / block; ++b) {
    const float* xb = x + b * block;
    float amax = 0.0f;
    bool finite = true;
    for (int i = 0; i < block; ++i) {
      if (!std::isfinite(xb[i])) finite = false;
      amax = std::max(amax, std::fabs(xb[i]));
    }
    float d = 0.0f;
    if (!finite) {
      d = std::numeric_limits<float>::quiet_NaN();
    } else if (amax >= 0x1p-100f) {
      d = amax / 127.0f;
      const float id = 1.0f / d;
      for (int i = 0; i < block; ++i) r.q[b * block + i] = static_cast<int>(std::nearbyint(xb[i] * id));
      if (ggml_half_scale) d = half_to_float(float_to_half(d));
    }
    r.d.push_back(d);
  }
  return r;
}

// The signed integer w_int of value j of a block (w = scale * w_int, or d*sc*q - dmin*m).
inline int weight_int(GgmlType t, const uint8_t* blk, int j) {
  switch (t) {
    case GgmlType::Q8_0:
      return static_cast<int8_t>(blk[2 + j]);
    case GgmlType::Q4_0: {
      const uint8_t byte = blk[2 + j % 16];
      return (j < 16 ? byte & 15 : byte >> 4) - 8;
    }
    case GgmlType::Q5_0: {
      const uint8_t byte = blk[6 + j % 16];
      const int fifth = (blk[2 + j / 8] >> (j % 8)) & 1;
      return (j < 16 ? byte & 15 : byte >> 4) + 16 * fifth - 16;
    }
    case GgmlType::Q4_K: {
      const uint8_t byte = blk[16 + (j / 64) * 32 + j % 32];
      return (j / 32) % 2 == 0 ? byte & 15 : byte >> 4;
    }
    case GgmlType::Q6_K: {
      const int h = j / 128, k = j % 128, quarter = k / 32, l = k % 32;
      const uint8_t lo_byte = blk[h * 64 + (quarter % 2) * 32 + l];
      const int lo = quarter < 2 ? lo_byte & 15 : lo_byte >> 4;
      const int hi = (blk[128 + h * 32 + l] >> (2 * quarter)) & 3;
      return lo + 16 * hi - 32;
    }
    default:
      return 0;
  }
}

// q4_K's 6-bit scale and min of sub-block j, by bit position in the 12 scale bytes.
inline void q4k_scale_min(const uint8_t* s, int j, int* sc, int* m) {
  if (j < 4) {
    *sc = s[j] % 64;
    *m = s[j + 4] % 64;
  } else {
    *sc = s[j + 4] % 16 + 16 * (s[j - 4] / 64);
    *m = s[j + 4] / 16 + 16 * (s[j] / 64);
  }
}

// One output: row `xr` of the quantised activations times weight row `wrow`.
inline float dot(GgmlType t, const uint8_t* wrow, int64_t k, const ActRow& xr) {
  const uint32_t bs = ggml_traits(t).block_size, ts = ggml_traits(t).type_size;
  float acc = 0.0f;
  for (int64_t b = 0; b < k / bs; ++b) {
    const uint8_t* blk = wrow + b * ts;
    const int* q = xr.q.data() + b * bs;
    auto isum = [&](int from, int n) {
      int c = 0;
      for (int j = from; j < from + n; ++j) c += weight_int(t, blk, j) * q[j];
      return c;
    };
    switch (t) {
      case GgmlType::Q8_0:
      case GgmlType::Q4_0:
      case GgmlType::Q5_0: {
        const float s = xr.d[b] * half(blk);
        acc = std::fma(s, static_cast<float>(isum(0, 32)), acc);
        break;
      }
      case GgmlType::Q4_K: {
        // ggml's order: integer sums over the super-block, then d and dmin in float.
        int32_t p = 0, qm = 0;
        for (int j = 0; j < 8; ++j) {
          int sc, m;
          q4k_scale_min(blk + 4, j, &sc, &m);
          int qsum = 0;
          for (int i = 0; i < 32; ++i) qsum += q[32 * j + i];
          p += sc * isum(32 * j, 32);
          qm += m * qsum;
        }
        const float u = std::fma(-half(blk + 2), static_cast<float>(qm), half(blk) * static_cast<float>(p));
        acc = std::fma(xr.d[b], u, acc);
        break;
      }
      case GgmlType::Q6_K: {
        int32_t p = 0;
        for (int j = 0; j < 16; ++j) p += static_cast<int8_t>(blk[192 + j]) * isum(16 * j, 16);
        acc = std::fma(xr.d[b], half(blk + 208) * static_cast<float>(p), acc);
        break;
      }
      default:
        break;
    }
  }
  return acc;
}

// y[t, n] = x[t, k] · W^T, W [n, k] in ggml rows.
inline std::vector<float> qgemm(GgmlType type, const uint8_t* w, int64_t n, const float* x,
                                int64_t t, int64_t k) {
  const int act_block = ggml_traits(type).block_size;  // 32 (q8_0 blocks) or 256 (q8_K)
  const uint64_t row_bytes = ggml_row_bytes(type, k);
  std::vector<float> y(t * n);
  for (int64_t r = 0; r < t; ++r) {
    const ActRow xr = quantize_row(x + r * k, k, act_block);
    for (int64_t c = 0; c < n; ++c) y[r * n + c] = dot(type, w + c * row_bytes, k, xr);
  }
  return y;
}

}  // namespace illada::qref

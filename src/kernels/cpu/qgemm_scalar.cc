// qgemm's plain C++ pieces: the formats, the activation quantiser and the panel unpacker that
// every instruction set shares or reproduces, and the scalar tile for CPUs without AVX2.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/cpu/qgemm_impl.h"
#include "kernels/quant.h"
#include "util/check.h"

namespace illada::qgemm_impl {
namespace {

constexpr Format kFormats[] = {
    {GgmlType::Q8_0, 32, 32, 32, 128, false},
    {GgmlType::Q4_0, 32, 32, 32, 8, false},
    {GgmlType::Q5_0, 32, 32, 32, 16, false},
    {GgmlType::Q4_K, 256, 256, 32, 0, true},
    {GgmlType::Q6_K, 256, 256, 16, 32, false},
};

uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

float half_at(const std::byte* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return fp16_to_fp32(h);
}

// Two signed 16-bit values in one int32 lane (vpdpwssd's operand).
inline int32_t pack_pair(int32_t lo, int32_t hi) {
  return static_cast<int32_t>((static_cast<uint32_t>(lo) & 0xffffu) | (static_cast<uint32_t>(hi) << 16));
}
inline int32_t pair_lo(int32_t v) { return static_cast<int16_t>(v & 0xffff); }
inline int32_t pair_hi(int32_t v) { return static_cast<int16_t>(static_cast<uint32_t>(v) >> 16); }

inline float to_f32(float v) { return v; }
inline float to_f32(bf16 v) { return to_float(v); }

// Offset of value kk of lane r in a group's q (see Acts).
inline int64_t act_at(int64_t kk, int r) { return (kk / 4) * 64 + r * 4 + kk % 4; }

template <class X>
void quantize_group(const Format& f, const X* x, int64_t ldx, int rows, int64_t g, int offset,
                    Acts& a) {
  const int64_t k = a.k, nab = k / f.act_block, nsub = k / f.sub;
  int8_t* q = a.q + g * a.q_stride();
  float* d = a.d + g * nab * kGroup;
  int32_t* corr = a.corr ? a.corr + g * nsub * kGroup : nullptr;
  int32_t* bs2 = a.bs2 ? a.bs2 + g * (k / 64) * kGroup : nullptr;
  float v[256];
  int8_t qv[256];
  for (int r = 0; r < kGroup; ++r) {
    const X* xr = x + r * ldx;
    for (int64_t b = 0; b < nab; ++b) {
      const int n = f.act_block;
      if (r < rows) {
        // The magnitude's bit pattern orders like the magnitude, and NaN above Inf above any
        // finite value: an integer maximum that no NaN can hide from.
        uint32_t amax_bits = 0;
        for (int i = 0; i < n; ++i) {
          v[i] = to_f32(xr[b * n + i]);
          amax_bits = std::max(amax_bits, float_bits(v[i]) & 0x7fffffffu);
        }
        float amax;
        std::memcpy(&amax, &amax_bits, 4);
        float db = 0.0f;
        if (amax_bits >= 0x7f800000u) {
          db = std::numeric_limits<float>::quiet_NaN();
          for (int i = 0; i < n; ++i) qv[i] = 0;
        } else if (amax < kTinyBlock) {
          for (int i = 0; i < n; ++i) qv[i] = 0;
        } else {
          db = amax / 127.0f;
          const float id = 1.0f / db;
          for (int i = 0; i < n; ++i) qv[i] = static_cast<int8_t>(std::nearbyint(v[i] * id));
        }
        d[b * kGroup + r] = db;
      } else {
        for (int i = 0; i < n; ++i) qv[i] = 0;
        d[b * kGroup + r] = 0.0f;
      }
      for (int i = 0; i < n; ++i) q[act_at(b * n + i, r)] = qv[i];
      // Sums over the sub-blocks and the 32-value groups of this block.
      for (int s0 = 0; s0 < n; s0 += f.sub) {
        int32_t sum = 0;
        for (int i = 0; i < f.sub; ++i) sum += qv[s0 + i];
        if (corr) corr[((b * n + s0) / f.sub) * kGroup + r] = -offset * sum;
      }
      if (bs2) {
        for (int s0 = 0; s0 < n; s0 += 64) {
          int32_t lo = 0, hi = 0;
          for (int i = 0; i < 32; ++i) lo += qv[s0 + i];
          for (int i = 32; i < 64; ++i) hi += qv[s0 + i];
          bs2[((b * n + s0) / 64) * kGroup + r] = pack_pair(lo, hi);
        }
      }
    }
  }
}

// The 6-bit scale and min of sub-block j of a q4_K block's 12 scale bytes.
inline void q4k_scale_min(int j, const uint8_t* s, int* sc, int* m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
    *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

void tile_scalar(const Tile& t) {
  const Format& f = *t.f;
  const Acts& a = *t.a;
  const Panel& p = *t.p;
  const int64_t nab = a.k / f.act_block;
  for (int64_t g = t.g0; g < t.g0 + t.ng; ++g) {
    const int8_t* q = a.q + g * a.q_stride();
    const float* d = a.d + g * nab * kGroup;
    const int32_t* bs2 = a.bs2 ? a.bs2 + g * (a.k / 64) * kGroup : nullptr;
    for (int n = 0; n < kGroup; ++n) {
      for (int r = 0; r < kGroup; ++r) {
        float& acc = t.acc[n * t.acc_ld + (g - t.g0) * kGroup + r];
        // The exact integer sum of sub-block `sb` (of the panel's kc values).
        auto sub_sum = [&](int64_t sb) {
          int32_t c = 0;
          for (int i = 0; i < f.sub; ++i) {
            const int64_t kk = sb * f.sub + i;  // within the chunk
            c += p.q[(kk / 32) * 512 + n * 32 + kk % 32] * q[act_at(t.k0 + kk, r)];
          }
          return c;
        };
        if (f.block == 32) {
          for (int64_t b = 0; b < t.kc / 32; ++b) {
            const float s = d[(t.k0 / 32 + b) * kGroup + r] * p.s[b * kGroup + n];
            acc = std::fma(s, static_cast<float>(sub_sum(b)), acc);
          }
          continue;
        }
        const int per_sb = 256 / f.sub;
        for (int64_t sb = 0; sb < t.kc / 256; ++sb) {
          int32_t pi = 0, qi = 0;
          for (int j = 0; j < per_sb; ++j) pi += p.sc[(sb * per_sb + j) * kGroup + n] * sub_sum(sb * per_sb + j);
          float u = p.s[sb * kGroup + n] * static_cast<float>(pi);
          if (f.mins) {
            for (int i = 0; i < 4; ++i) {
              const int32_t mpair = p.mp[(sb * 4 + i) * kGroup + n];
              const int32_t bpair = bs2[((t.k0 + sb * 256) / 64 + i) * kGroup + r];
              qi += pair_lo(mpair) * pair_lo(bpair) + pair_hi(mpair) * pair_hi(bpair);
            }
            u = std::fma(-p.m[sb * kGroup + n], static_cast<float>(qi), u);
          }
          acc = std::fma(d[(t.k0 / 256 + sb) * kGroup + r], u, acc);
        }
      }
    }
  }
}

}  // namespace

const Format& format_of(GgmlType t) {
  for (const Format& f : kFormats) {
    if (f.type == t) return f;
  }
  ILLADA_CHECK(false, "qgemm: no format for ", ggml_type_name(t));
  return kFormats[0];
}

void quantize_scalar_f32(const Format& f, const float* x, int64_t ldx, int rows, int64_t g,
                         int offset, Acts& a) {
  quantize_group(f, x, ldx, rows, g, offset, a);
}
void quantize_scalar_bf16(const Format& f, const bf16* x, int64_t ldx, int rows, int64_t g,
                          int offset, Acts& a) {
  quantize_group(f, x, ldx, rows, g, offset, a);
}

void unpack_scales(const Format& f, const QuantMatrix& w, int64_t n0, int64_t k0, int64_t kc,
                   Panel& p) {
  const Source src = source_of(w, n0, k0);
  for (int nn = 0; nn < kGroup; ++nn) {
    const bool in = nn < src.rows;
    const int row = in ? nn : 0;  // rows beyond the matrix: read row 0, store zeros
    auto fld = [&](int64_t b, int off, int size) { return reinterpret_cast<const std::byte*>(src.field(row, b, off, size)); };
    for (int64_t b = 0; b < kc / f.block; ++b) {
      switch (f.type) {
        case GgmlType::Q8_0:
        case GgmlType::Q4_0:
        case GgmlType::Q5_0:
          p.s[b * kGroup + nn] = in ? half_at(fld(b, 0, 2)) : 0.0f;
          break;
        case GgmlType::Q4_K: {
          const auto* sc = reinterpret_cast<const uint8_t*>(fld(b, 4, 12));
          p.s[b * kGroup + nn] = in ? half_at(fld(b, 0, 2)) : 0.0f;
          p.m[b * kGroup + nn] = in ? half_at(fld(b, 2, 2)) : 0.0f;
          int scale[8], min[8];
          for (int j = 0; j < 8; ++j) {
            q4k_scale_min(j, sc, &scale[j], &min[j]);
            p.sc[(b * 8 + j) * kGroup + nn] = in ? scale[j] : 0;
          }
          for (int i = 0; i < 4; ++i) {
            p.mp[(b * 4 + i) * kGroup + nn] = in ? pack_pair(min[2 * i], min[2 * i + 1]) : 0;
          }
          break;
        }
        case GgmlType::Q6_K: {
          const auto* sc = reinterpret_cast<const int8_t*>(fld(b, 192, 16));
          p.s[b * kGroup + nn] = in ? half_at(fld(b, 208, 2)) : 0.0f;
          for (int j = 0; j < 16; ++j) p.sc[(b * 16 + j) * kGroup + nn] = in ? sc[j] : 0;
          break;
        }
        default:
          break;
      }
    }
  }
}

void unpack_scalar(const Format& f, const QuantMatrix& w, int64_t n0, int64_t k0, int64_t kc,
                   bool unsigned_enc, Panel& p) {
  unpack_scales(f, w, n0, k0, kc, p);
  const Source src = source_of(w, n0, k0);
  const int off = unsigned_enc ? f.offset : 0;
  for (int nn = 0; nn < kGroup; ++nn) {
    // Value kk of the chunk goes to q[(kk/32)*512 + nn*32 + kk%32].
    auto put = [&](int64_t kk, int w_int) {
      p.q[(kk / 32) * 512 + nn * 32 + kk % 32] = static_cast<int8_t>(static_cast<uint8_t>(w_int + off));
    };
    if (nn >= src.rows) {
      for (int64_t kk = 0; kk < kc; ++kk) p.q[(kk / 32) * 512 + nn * 32 + kk % 32] = 0;
      continue;
    }
    for (int64_t b = 0; b < kc / f.block; ++b) {
      const int64_t kb = b * f.block;
      switch (f.type) {
        case GgmlType::Q8_0: {
          const uint8_t* qs = src.field(nn, b, 2, 32);
          for (int i = 0; i < 32; ++i) put(kb + i, static_cast<int8_t>(qs[i]));
          break;
        }
        case GgmlType::Q4_0: {
          const uint8_t* qs = src.field(nn, b, 2, 16);
          for (int i = 0; i < 16; ++i) {
            put(kb + i, (qs[i] & 0xF) - 8);
            put(kb + i + 16, (qs[i] >> 4) - 8);
          }
          break;
        }
        case GgmlType::Q5_0: {
          // Value i: nibble i % 16 of qs (low for i < 16), fifth bit i of qh.
          const uint8_t* qhb = src.field(nn, b, 2, 4);
          const uint8_t* qs = src.field(nn, b, 6, 16);
          const uint32_t qh = qhb[0] | qhb[1] << 8 | qhb[2] << 16 | static_cast<uint32_t>(qhb[3]) << 24;
          for (int i = 0; i < 32; ++i) {
            const int nib = i < 16 ? qs[i] & 0xF : qs[i - 16] >> 4;
            put(kb + i, (nib | static_cast<int>(((qh >> i) & 1) << 4)) - 16);
          }
          break;
        }
        case GgmlType::Q4_K: {
          // Bytes 32h..32h+31 hold values 64h..64h+31 (low nibbles) and 64h+32.. (high).
          const uint8_t* qs = src.field(nn, b, 16, 128);
          for (int h = 0; h < 4; ++h) {
            for (int l = 0; l < 32; ++l) {
              put(kb + 64 * h + l, qs[32 * h + l] & 0xF);
              put(kb + 64 * h + 32 + l, qs[32 * h + l] >> 4);
            }
          }
          break;
        }
        case GgmlType::Q6_K:
          for (int h = 0; h < 2; ++h) {
            const uint8_t* ql = src.field(nn, b, 0, 128) + 64 * h;
            const uint8_t* qh = src.field(nn, b, 128, 64) + 32 * h;
            for (int l = 0; l < 32; ++l) {
              put(kb + 128 * h + l, ((ql[l] & 0xF) | ((qh[l] & 3) << 4)) - 32);
              put(kb + 128 * h + l + 32, ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
              put(kb + 128 * h + l + 64, ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
              put(kb + 128 * h + l + 96, ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
            }
          }
          break;
        default:
          break;
      }
    }
  }
}

void store_scalar(const float* acc, int64_t acc_ld, int64_t cols, int64_t rows, float* y,
                  int64_t ldy, bool accumulate) {
  for (int64_t c = 0; c < cols; ++c) {
    const float* a = acc + c * acc_ld;
    if (accumulate) {
      for (int64_t r = 0; r < rows; ++r) y[r * ldy + c] += a[r];
    } else {
      for (int64_t r = 0; r < rows; ++r) y[r * ldy + c] = a[r];
    }
  }
}

void store_bf16_scalar(const float* acc, int64_t acc_ld, int64_t cols, int64_t rows, bf16* y, int64_t ldy) {
  for (int64_t c = 0; c < cols; ++c) {
    const float* a = acc + c * acc_ld;
    for (int64_t r = 0; r < rows; ++r) y[r * ldy + c] = to_bf16(a[r]);
  }
}

KernelSet kernels_scalar() {
  return KernelSet{.quantize_f32 = quantize_scalar_f32,
                   .quantize_bf16 = quantize_scalar_bf16,
                   .unpack = unpack_scalar,
                   .tile = tile_scalar,
                   .store = store_scalar,
                   .store_bf16 = store_bf16_scalar,
                   .unsigned_enc = false,
                   .q8_0_signed = false,
                   .k_chunk = 1024,
                   .needs_amx_state = false};
}

}  // namespace illada::qgemm_impl

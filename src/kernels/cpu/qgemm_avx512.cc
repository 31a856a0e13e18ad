// qgemm on AVX512-VNNI: 512-bit vpdpbusd with the activation rows in lanes (one group of 16
// rows per vector). A pass holds 4 outputs x up to 3 groups in registers, so each weight
// broadcast feeds 3 products and each activation load 4. Unpacking and quantising are the
// AVX2 ones (qgemm_avx2.cc). Instruction sets come from a target pragma, not -m flags.
#include <immintrin.h>

#include <cstring>

#include "kernels/cpu/qgemm_impl.h"

namespace illada::qgemm_impl {

// GCC 12 reports its own _mm512_undefined_ps (a self-initialised variable) as maybe
// uninitialised once inlined: a false positive.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni")

// Everything compiled for AVX-512 lives in namespace avx512 (tests/cli/portable_binary.sh).
namespace avx512 {
namespace {

constexpr int kR = 4;  // outputs per pass

inline __m512i bcast_dword(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// Outputs n0..n0+3 of the panel times groups g..g+C-1, over the tile's values.
template <int kBlock, int kSub, bool kMins, int C>
void pass(const Tile& t, int64_t g, int n0) {
  const Acts& a = *t.a;
  const Panel& p = *t.p;
  const int64_t nab = a.k / kBlock, nsub = a.k / kSub;
  const int8_t* xq[C];
  const float* xd[C];
  const int32_t* xc[C];
  const int32_t* xb[C];
  float* acc_at[C];
  for (int c = 0; c < C; ++c) {
    xq[c] = a.q + (g + c) * a.q_stride() + t.k0 * kGroup;
    xd[c] = a.d + ((g + c) * nab + t.k0 / kBlock) * kGroup;
    xc[c] = a.corr ? a.corr + ((g + c) * nsub + t.k0 / kSub) * kGroup : nullptr;
    xb[c] = kMins ? a.bs2 + ((g + c) * (a.k / 64) + t.k0 / 64) * kGroup : nullptr;
    acc_at[c] = t.acc + n0 * t.acc_ld + (g + c - t.g0) * kGroup;  // + r * acc_ld
  }
  __m512 acc[kR][C];
  if constexpr (kBlock == 32) {
    for (int r = 0; r < kR; ++r) {
      for (int c = 0; c < C; ++c) acc[r][c] = _mm512_loadu_ps(acc_at[c] + r * t.acc_ld);
    }
  }
  for (int64_t blk = 0; blk < t.kc / kBlock; ++blk) {
    __m512i sp[kR][C];  // k-quants: P = Σ sc_j c_j
    if constexpr (kBlock == 256) {
      for (int r = 0; r < kR; ++r) {
        for (int c = 0; c < C; ++c) sp[r][c] = _mm512_setzero_si512();
      }
    }
    for (int j = 0; j < kBlock / kSub; ++j) {
      const int64_t js = blk * (kBlock / kSub) + j;
      __m512i isum[kR][C];
      for (int c = 0; c < C; ++c) {
        const __m512i init = xc[c] ? _mm512_loadu_si512(xc[c] + js * kGroup) : _mm512_setzero_si512();
        for (int r = 0; r < kR; ++r) isum[r][c] = init;
      }
      for (int qd = 0; qd < kSub / 4; ++qd) {
        const int64_t kk = js * kSub + 4 * qd;
        __m512i x[C];
        for (int c = 0; c < C; ++c) x[c] = _mm512_load_si512(xq[c] + kk * kGroup);
        const int8_t* wp = p.q + (kk / 32) * 512 + n0 * 32 + kk % 32;
        for (int r = 0; r < kR; ++r) {
          const __m512i w = bcast_dword(wp + 32 * r);
          for (int c = 0; c < C; ++c) isum[r][c] = _mm512_dpbusd_epi32(isum[r][c], w, x[c]);
        }
      }
      if constexpr (kBlock == 32) {
        __m512 dx[C];
        for (int c = 0; c < C; ++c) dx[c] = _mm512_loadu_ps(xd[c] + js * kGroup);
        for (int r = 0; r < kR; ++r) {
          const __m512 dw = _mm512_set1_ps(p.s[js * kGroup + n0 + r]);
          for (int c = 0; c < C; ++c) {
            acc[r][c] = _mm512_fmadd_ps(_mm512_mul_ps(dx[c], dw), _mm512_cvtepi32_ps(isum[r][c]), acc[r][c]);
          }
        }
      } else {
        for (int r = 0; r < kR; ++r) {
          const __m512i sc = _mm512_set1_epi32(p.sc[js * kGroup + n0 + r]);
          for (int c = 0; c < C; ++c) sp[r][c] = _mm512_add_epi32(sp[r][c], _mm512_mullo_epi32(isum[r][c], sc));
        }
      }
    }
    if constexpr (kBlock == 256) {
      // u = d * P [; u = fma(-dmin, Q, u)]; acc = fma(dx, u, acc)
      for (int c = 0; c < C; ++c) {
        __m512i qm[kR];
        if constexpr (kMins) {
          for (int r = 0; r < kR; ++r) qm[r] = _mm512_setzero_si512();
          for (int i = 0; i < 4; ++i) {
            const __m512i bp = _mm512_loadu_si512(xb[c] + (blk * 4 + i) * kGroup);
            for (int r = 0; r < kR; ++r) {
              qm[r] = _mm512_dpwssd_epi32(qm[r], _mm512_set1_epi32(p.mp[(blk * 4 + i) * kGroup + n0 + r]), bp);
            }
          }
        }
        const __m512 dx = _mm512_loadu_ps(xd[c] + blk * kGroup);
        for (int r = 0; r < kR; ++r) {
          __m512 u = _mm512_mul_ps(_mm512_set1_ps(p.s[blk * kGroup + n0 + r]), _mm512_cvtepi32_ps(sp[r][c]));
          if constexpr (kMins) u = _mm512_fnmadd_ps(_mm512_set1_ps(p.m[blk * kGroup + n0 + r]), _mm512_cvtepi32_ps(qm[r]), u);
          float* ar = acc_at[c] + r * t.acc_ld;
          _mm512_storeu_ps(ar, _mm512_fmadd_ps(dx, u, _mm512_loadu_ps(ar)));
        }
      }
    }
  }
  if constexpr (kBlock == 32) {
    for (int r = 0; r < kR; ++r) {
      for (int c = 0; c < C; ++c) _mm512_storeu_ps(acc_at[c] + r * t.acc_ld, acc[r][c]);
    }
  }
}

template <int kBlock, int kSub, bool kMins>
void tile_impl(const Tile& t) {
  for (int n0 = 0; n0 < kGroup; n0 += kR) {
    int64_t g = t.g0;
    const int64_t end = t.g0 + t.ng;
    // Three groups per pass where the registers allow (the k-quants' P needs more).
    if constexpr (kBlock == 32) {
      for (; g + 3 <= end; g += 3) pass<kBlock, kSub, kMins, 3>(t, g, n0);
    }
    for (; g + 2 <= end; g += 2) pass<kBlock, kSub, kMins, 2>(t, g, n0);
    if (end - g == 1) pass<kBlock, kSub, kMins, 1>(t, g, n0);
  }
}

void tile(const Tile& t) {
  switch (t.f->type) {
    case GgmlType::Q8_0:
    case GgmlType::Q4_0:
    case GgmlType::Q5_0: tile_impl<32, 32, false>(t); break;
    case GgmlType::Q4_K: tile_impl<256, 32, true>(t); break;
    case GgmlType::Q6_K: tile_impl<256, 16, false>(t); break;
    default: break;
  }
}

// r[i][j] -> r[j][i] for a 16 x 16 block of floats.
inline void transpose16(__m512 (&r)[16]) {
  __m512 t[16], u[16];
  for (int p = 0; p < 8; ++p) {
    t[2 * p] = _mm512_unpacklo_ps(r[2 * p], r[2 * p + 1]);
    t[2 * p + 1] = _mm512_unpackhi_ps(r[2 * p], r[2 * p + 1]);
  }
  // u[4q + c], 128-bit lane L: rows 4q..4q+3 of column 4L + c.
  for (int q = 0; q < 4; ++q) {
    u[4 * q] = _mm512_shuffle_ps(t[4 * q], t[4 * q + 2], 0x44);
    u[4 * q + 1] = _mm512_shuffle_ps(t[4 * q], t[4 * q + 2], 0xee);
    u[4 * q + 2] = _mm512_shuffle_ps(t[4 * q + 1], t[4 * q + 3], 0x44);
    u[4 * q + 3] = _mm512_shuffle_ps(t[4 * q + 1], t[4 * q + 3], 0xee);
  }
  for (int c = 0; c < 4; ++c) {
    const __m512 ab_even = _mm512_shuffle_f32x4(u[c], u[4 + c], 0x88);
    const __m512 ab_odd = _mm512_shuffle_f32x4(u[c], u[4 + c], 0xdd);
    const __m512 cd_even = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0x88);
    const __m512 cd_odd = _mm512_shuffle_f32x4(u[8 + c], u[12 + c], 0xdd);
    r[c] = _mm512_shuffle_f32x4(ab_even, cd_even, 0x88);
    r[8 + c] = _mm512_shuffle_f32x4(ab_even, cd_even, 0xdd);
    r[4 + c] = _mm512_shuffle_f32x4(ab_odd, cd_odd, 0x88);
    r[12 + c] = _mm512_shuffle_f32x4(ab_odd, cd_odd, 0xdd);
  }
}

// acc's 16 x 16 blocks (outputs x rows; acc holds whole panels and groups, so a block is always
// readable), transposed: put(row, first output, mask of the outputs that exist, 16 values).
template <class Put>
__attribute__((always_inline)) inline void for_each_output_row(const float* acc, int64_t acc_ld, int64_t cols,
                                                               int64_t rows, Put put) {
  for (int64_t c0 = 0; c0 < cols; c0 += 16) {
    const __mmask16 mask = static_cast<__mmask16>(cols - c0 >= 16 ? 0xffff : (1u << (cols - c0)) - 1);
    for (int64_t r0 = 0; r0 < rows; r0 += 16) {
      __m512 b[16];
      for (int i = 0; i < 16; ++i) b[i] = _mm512_loadu_ps(acc + (c0 + i) * acc_ld + r0);
      transpose16(b);
      for (int j = 0; j < 16 && r0 + j < rows; ++j) put(r0 + j, c0, mask, b[j]);
    }
  }
}

// Rounds as to_bf16(float): NaN stays a quiet NaN, else round to nearest even.
__attribute__((always_inline)) inline __m256i round_bf16(__m512 v) {
  const __m512i u = _mm512_castps_si512(v);
  const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)),
                                                _mm512_set1_epi32(0x7f800000));
  const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7fff), odd)), 16);
  r = _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40)));
  return _mm512_cvtepi32_epi16(r);
}

}  // namespace

void store_avx512(const float* acc, int64_t acc_ld, int64_t cols, int64_t rows, float* y, int64_t ldy,
                  bool accumulate) {
  for_each_output_row(acc, acc_ld, cols, rows, [&](int64_t r, int64_t c0, __mmask16 mask, __m512 v) {
    float* yr = y + r * ldy + c0;
    _mm512_mask_storeu_ps(yr, mask, accumulate ? _mm512_add_ps(_mm512_maskz_loadu_ps(mask, yr), v) : v);
  });
}

void store_bf16_avx512(const float* acc, int64_t acc_ld, int64_t cols, int64_t rows, bf16* y, int64_t ldy) {
  for_each_output_row(acc, acc_ld, cols, rows, [&](int64_t r, int64_t c0, __mmask16 mask, __m512 v) {
    _mm256_mask_storeu_epi16(y + r * ldy + c0, mask, round_bf16(v));
  });
}

}  // namespace avx512

#pragma GCC pop_options

KernelSet kernels_avx512_vnni() {
  return KernelSet{.quantize_f32 = quantize_avx2_f32,
                   .quantize_bf16 = quantize_avx2_bf16,
                   .unpack = unpack_avx2,
                   .tile = avx512::tile,
                   .store = avx512::store_avx512,
                   .store_bf16 = avx512::store_bf16_avx512,
                   .unsigned_enc = true,
                   .q8_0_signed = false,
                   .k_chunk = 1024,
                   .needs_amx_state = false};
}

}  // namespace illada::qgemm_impl

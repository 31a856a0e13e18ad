// qgemm on AMX-int8: the tile multiply computes each sub-block's exact integer sums for 16
// outputs x 16 activation rows at once (C[n][row] = A[n][k] · B[k][row], A a panel of signed
// weights, B the activations' lines as they are stored), and AVX-512 applies the scales.
// Two C tiles alternate, so the multiply of one sub-block runs while the previous one is
// scaled. Instruction sets come from a target pragma, not -m flags.
#include <immintrin.h>

#include <cstring>

#include "kernels/cpu/qgemm_impl.h"

namespace illada::qgemm_impl {

// GCC 12 reports its own _mm512_undefined_ps (a self-initialised variable) as maybe
// uninitialised once inlined: a false positive.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,amx-tile,amx-int8")

namespace {

struct alignas(64) TileConfig {
  uint8_t palette_id;
  uint8_t start_row;
  uint8_t reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};

// The configuration this thread has loaded: the values per sub-block (32 or 16), 0 for none.
thread_local int g_loaded = 0;

// tmm0, tmm1: C, 16 outputs x 16 rows of int32; tmm2, tmm3: A, 16 outputs x ksub bytes;
// tmm4, tmm5: B, ksub/4 lines of 4 values x 16 rows.
void configure(int ksub) {
  if (g_loaded == ksub) return;
  TileConfig c;
  std::memset(&c, 0, sizeof(c));
  c.palette_id = 1;
  for (int i = 0; i < 2; ++i) {
    c.rows[i] = 16;
    c.colsb[i] = 64;
    c.rows[2 + i] = 16;
    c.colsb[2 + i] = static_cast<uint16_t>(ksub);
    c.rows[4 + i] = static_cast<uint8_t>(ksub / 4);
    c.colsb[4 + i] = 64;
  }
  _tile_loadconfig(&c);
  g_loaded = ksub;
}

template <int kBlock, int kSub, bool kMins>
void tile_impl(const Tile& t) {
  configure(kSub);
  const Acts& a = *t.a;
  const Panel& p = *t.p;
  const int64_t nab = a.k / kBlock, n32 = a.k / 32;
  const int64_t nsubs = t.kc / kSub;
  constexpr int kPerBlock = kBlock / kSub;
  alignas(64) int32_t cbuf[2][16][16];
  for (int64_t g = t.g0; g < t.g0 + t.ng; ++g) {
    const int8_t* xq = a.q + g * a.q_stride() + t.k0 * kGroup;
    const float* xd = a.d + (g * nab + t.k0 / kBlock) * kGroup;
    const float* xb = kMins ? a.bsum + (g * n32 + t.k0 / 32) * kGroup : nullptr;
    float* accg = t.acc + (g - t.g0) * kGroup;  // accg[n * acc_ld + lane]
    __m512 acc[16];  // kBlock 32: the running sums; 256: the super-block's
    for (int n = 0; n < 16; ++n) {
      acc[n] = kBlock == 32 ? _mm512_loadu_ps(accg + n * t.acc_ld) : _mm512_setzero_ps();
    }
    auto a_at = [&](int64_t js) { return p.q + (js * kSub / 32) * 512 + (js * kSub) % 32; };
    auto b_at = [&](int64_t js) { return xq + js * kSub * kGroup; };
    auto post = [&](int64_t js, const int32_t (*c)[16]) {
      if constexpr (kBlock == 32) {
        const __m512 dx = _mm512_loadu_ps(xd + js * kGroup);
        for (int n = 0; n < 16; ++n) {
          const __m512 s = _mm512_mul_ps(dx, _mm512_set1_ps(p.s[js * kGroup + n]));
          acc[n] = _mm512_fmadd_ps(s, _mm512_cvtepi32_ps(_mm512_load_si512(c[n])), acc[n]);
        }
      } else {
        const __m512 bs = kMins ? _mm512_loadu_ps(xb + js * kGroup) : _mm512_setzero_ps();
        for (int n = 0; n < 16; ++n) {
          acc[n] = _mm512_fmadd_ps(_mm512_set1_ps(p.s[js * kGroup + n]),
                                   _mm512_cvtepi32_ps(_mm512_load_si512(c[n])), acc[n]);
          if constexpr (kMins) acc[n] = _mm512_fnmadd_ps(_mm512_set1_ps(p.m[js * kGroup + n]), bs, acc[n]);
        }
        if (js % kPerBlock == kPerBlock - 1) {
          const __m512 dx = _mm512_loadu_ps(xd + (js / kPerBlock) * kGroup);
          for (int n = 0; n < 16; ++n) {
            float* ar = accg + n * t.acc_ld;
            _mm512_storeu_ps(ar, _mm512_fmadd_ps(dx, acc[n], _mm512_loadu_ps(ar)));
            acc[n] = _mm512_setzero_ps();
          }
        }
      }
    };
    // Sub-block js multiplies into C tile js % 2.
    auto issue0 = [&](int64_t js) {
      _tile_loadd(2, a_at(js), 32);
      _tile_loadd(4, b_at(js), 64);
      _tile_zero(0);
      _tile_dpbssd(0, 2, 4);
    };
    auto issue1 = [&](int64_t js) {
      _tile_loadd(3, a_at(js), 32);
      _tile_loadd(5, b_at(js), 64);
      _tile_zero(1);
      _tile_dpbssd(1, 3, 5);
    };
    issue0(0);
    for (int64_t js = 0;; js += 2) {
      if (js + 1 < nsubs) issue1(js + 1);
      _tile_stored(0, cbuf[0], 64);
      post(js, cbuf[0]);
      if (js + 1 >= nsubs) break;
      if (js + 2 < nsubs) issue0(js + 2);
      _tile_stored(1, cbuf[1], 64);
      post(js + 1, cbuf[1]);
      if (js + 2 >= nsubs) break;
    }
    if constexpr (kBlock == 32) {
      for (int n = 0; n < 16; ++n) _mm512_storeu_ps(accg + n * t.acc_ld, acc[n]);
    }
  }
}

void tile(const Tile& t) {
  switch (t.f->type) {
    case GgmlType::Q8_0:
    case GgmlType::Q4_0: tile_impl<32, 32, false>(t); break;
    case GgmlType::Q4_K: tile_impl<256, 32, true>(t); break;
    case GgmlType::Q6_K: tile_impl<256, 16, false>(t); break;
    default: break;
  }
}

}  // namespace

void amx_release() {
  if (g_loaded != 0) {
    _tile_release();
    g_loaded = 0;
  }
}

#pragma GCC pop_options

KernelSet kernels_amx() {
  return KernelSet{.quantize_f32 = quantize_avx2_f32,
                   .quantize_bf16 = quantize_avx2_bf16,
                   .unpack = unpack_avx2,
                   .tile = tile,
                   .unsigned_enc = false,
                   .q8_0_signed = false,
                   .k_chunk = 1024,
                   .needs_amx_state = true};
}

}  // namespace illada::qgemm_impl

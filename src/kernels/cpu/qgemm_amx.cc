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

// tmm0-3: C, 16 outputs x 16 rows of int32; tmm4, tmm5: A, 16 outputs x ksub bytes;
// tmm6, tmm7: B, ksub/4 lines of 4 values x 16 rows.
void configure(int ksub) {
  if (g_loaded == ksub) return;
  TileConfig c;
  std::memset(&c, 0, sizeof(c));
  c.palette_id = 1;
  for (int i = 0; i < 4; ++i) {
    c.rows[i] = 16;
    c.colsb[i] = 64;
  }
  for (int i = 4; i < 6; ++i) {
    c.rows[i] = 16;
    c.colsb[i] = static_cast<uint16_t>(ksub);
    c.rows[i + 2] = static_cast<uint8_t>(ksub / 4);
    c.colsb[i + 2] = 64;
  }
  _tile_loadconfig(&c);
  g_loaded = ksub;
}

// What one group's pass needs to scale a sub-block's integer sums.
struct Scaler {
  const Panel* p;
  const float* xd;  // activation scales of the group, from the tile's first value
  const float* xb;  // q4_K: Σq per 32 values
  float* accg;      // accg[n * acc_ld + lane]
  int64_t acc_ld;
};

// Sub-block js's sums c[n][lane] into acc (kBlock 32: the running sums; 256: the super-block's,
// moved into accg at its last sub-block).
template <int kBlock, int kSub, bool kMins>
__attribute__((always_inline)) inline void scale(const Scaler& sc, int64_t js, const int32_t (*c)[16],
                                                 __m512 (&acc)[16]) {
  const Panel& p = *sc.p;
  if constexpr (kBlock == 32) {
    const __m512 dx = _mm512_loadu_ps(sc.xd + js * kGroup);
    for (int n = 0; n < 16; ++n) {
      const __m512 s = _mm512_mul_ps(dx, _mm512_set1_ps(p.s[js * kGroup + n]));
      acc[n] = _mm512_fmadd_ps(s, _mm512_cvtepi32_ps(_mm512_load_si512(c[n])), acc[n]);
    }
  } else {
    constexpr int kPerBlock = kBlock / kSub;
    const __m512 bs = kMins ? _mm512_loadu_ps(sc.xb + js * kGroup) : _mm512_setzero_ps();
    for (int n = 0; n < 16; ++n) {
      acc[n] = _mm512_fmadd_ps(_mm512_set1_ps(p.s[js * kGroup + n]), _mm512_cvtepi32_ps(_mm512_load_si512(c[n])),
                               acc[n]);
      if constexpr (kMins) acc[n] = _mm512_fnmadd_ps(_mm512_set1_ps(p.m[js * kGroup + n]), bs, acc[n]);
    }
    if (js % kPerBlock == kPerBlock - 1) {
      const __m512 dx = _mm512_loadu_ps(sc.xd + (js / kPerBlock) * kGroup);
      for (int n = 0; n < 16; ++n) {
        float* ar = sc.accg + n * sc.acc_ld;
        _mm512_storeu_ps(ar, _mm512_fmadd_ps(dx, acc[n], _mm512_loadu_ps(ar)));
        acc[n] = _mm512_setzero_ps();
      }
    }
  }
}

template <int kBlock, int kSub, bool kMins>
void tile_impl(const Tile& t) {
  configure(kSub);
  const Acts& a = *t.a;
  const Panel& p = *t.p;
  const int64_t nab = a.k / kBlock, n32 = a.k / 32;
  const int64_t ns = t.kc / kSub;
  alignas(64) int32_t cbuf[4][16][16];
  for (int64_t g = t.g0; g < t.g0 + t.ng; ++g) {
    const int8_t* xq = a.q + g * a.q_stride() + t.k0 * kGroup;
    const Scaler sc{&p, a.d + (g * nab + t.k0 / kBlock) * kGroup,
                    kMins ? a.bsum + (g * n32 + t.k0 / 32) * kGroup : nullptr,
                    t.acc + (g - t.g0) * kGroup, t.acc_ld};
    __m512 acc[16];
    for (int n = 0; n < 16; ++n) {
      acc[n] = kBlock == 32 ? _mm512_loadu_ps(sc.accg + n * t.acc_ld) : _mm512_setzero_ps();
    }
    // Sub-block js multiplies into C tile js % 4 (A and B tiles alternate), so that three
    // multiplies are in flight while one tile is stored and scaled.
#define ILLADA_AMX_ISSUE(c, at, bt, js)                                                \
  do {                                                                                \
    if (p.direct) {                                                                   \
      _tile_loadd(at, p.direct + (js) * 34, p.direct_stride);                         \
    } else {                                                                          \
      _tile_loadd(at, p.q + ((js) * kSub / 32) * 512 + ((js) * kSub) % 32, 32);       \
    }                                                                                 \
    _tile_loadd(bt, xq + (js) * kSub * kGroup, 64);                                   \
    _tile_zero(c);                                                                    \
    _tile_dpbssd(c, at, bt);                                                          \
  } while (0)
#define ILLADA_AMX_DRAIN(c, js)                                                        \
  do {                                                                                \
    _tile_stored(c, cbuf[c], 64);                                                     \
    scale<kBlock, kSub, kMins>(sc, js, cbuf[c], acc);                                 \
  } while (0)
    if (ns > 0) ILLADA_AMX_ISSUE(0, 4, 6, 0);
    if (ns > 1) ILLADA_AMX_ISSUE(1, 5, 7, 1);
    if (ns > 2) ILLADA_AMX_ISSUE(2, 4, 6, 2);
    if (ns > 3) ILLADA_AMX_ISSUE(3, 5, 7, 3);
    for (int64_t js = 0; js < ns; js += 4) {
      ILLADA_AMX_DRAIN(0, js);
      if (js + 4 < ns) ILLADA_AMX_ISSUE(0, 4, 6, js + 4);
      if (js + 1 >= ns) break;
      ILLADA_AMX_DRAIN(1, js + 1);
      if (js + 5 < ns) ILLADA_AMX_ISSUE(1, 5, 7, js + 5);
      if (js + 2 >= ns) break;
      ILLADA_AMX_DRAIN(2, js + 2);
      if (js + 6 < ns) ILLADA_AMX_ISSUE(2, 4, 6, js + 6);
      if (js + 3 >= ns) break;
      ILLADA_AMX_DRAIN(3, js + 3);
      if (js + 7 < ns) ILLADA_AMX_ISSUE(3, 5, 7, js + 7);
    }
#undef ILLADA_AMX_ISSUE
#undef ILLADA_AMX_DRAIN
    if constexpr (kBlock == 32) {
      for (int n = 0; n < 16; ++n) _mm512_storeu_ps(sc.accg + n * t.acc_ld, acc[n]);
    }
  }
}

// q8_0 panels of 16 rows read the matrix in place (A tiles take a row stride); others unpack.
void unpack(const Format& f, const QuantMatrix& w, int64_t n0, int64_t k0, int64_t kc, bool unsigned_enc,
            Panel& p) {
  if (f.type == GgmlType::Q8_0 && n0 + kGroup <= w.n) {
    unpack_scales_avx2(f, w, n0, k0, kc, p);
    const int64_t row_bytes = static_cast<int64_t>(ggml_row_bytes(w.type, w.k));
    p.direct = reinterpret_cast<const int8_t*>(w.data + n0 * row_bytes + (k0 / 32) * 34 + 2);
    p.direct_stride = row_bytes;
    return;
  }
  unpack_avx2(f, w, n0, k0, kc, unsigned_enc, p);
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
                   .unpack = unpack,
                   .tile = tile,
                   .store = store_avx512,
                   .unsigned_enc = false,
                   .q8_0_signed = false,
                   .k_chunk = 1024,
                   .needs_amx_state = true};
}

}  // namespace illada::qgemm_impl

// qgemm on AMX-int8: the tile multiply computes exact integer sums for 16 outputs x 16
// activation rows at once (C[n][row] = A[n][k] · B[k][row], A a panel of signed weights, B the
// activations' lines as they are stored) and AVX-512 applies the scales.
// - q8_0, q4_0: one tile sum per 32-value block (its scales differ from the next block's);
//   four C tiles rotate, so that three multiplies run while one tile is stored and scaled.
// - k-quants: the panel holds v = sc_j * w_int split into two bytes (lo + 128 hi), so two tile
//   sums over 64 values at a time cover a whole super-block of 256 (P = lo + 128 hi): a
//   quarter of the stores and scaling of a sum per sub-block.
// Instruction sets come from a target pragma, not -m flags.
#include <immintrin.h>

#include <cstring>

#include "kernels/cpu/qgemm_impl.h"

namespace illada::qgemm_impl {

// GCC 12 reports its own _mm512_undefined_ps (a self-initialised variable) as maybe
// uninitialised once inlined: a false positive.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,amx-tile,amx-int8")

// Everything compiled for AMX lives in namespace amx (tests/cli/portable_binary.sh).
namespace amx {
namespace {

struct alignas(64) TileConfig {
  uint8_t palette_id;
  uint8_t start_row;
  uint8_t reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};

// The configuration this thread has loaded: values per tile sum (32 or 64), 0 for none.
thread_local int g_loaded = 0;

// tmm0-3: C, 16 outputs x 16 rows of int32; tmm4, tmm5: A, 16 outputs x kt bytes; tmm6, tmm7:
// B, kt/4 lines of 4 values x 16 rows.
void configure(int kt) {
  if (g_loaded == kt) return;
  TileConfig c;
  std::memset(&c, 0, sizeof(c));
  c.palette_id = 1;
  for (int i = 0; i < 4; ++i) {
    c.rows[i] = 16;
    c.colsb[i] = 64;
  }
  for (int i = 4; i < 6; ++i) {
    c.rows[i] = 16;
    c.colsb[i] = static_cast<uint16_t>(kt);
    c.rows[i + 2] = static_cast<uint8_t>(kt / 4);
    c.colsb[i + 2] = 64;
  }
  // GCC 12 can drop the stores above as dead (it does not model ldtilecfg reading all 64
  // bytes; seen in bench/amx_block_bench.cc): make the struct escape first.
  asm volatile("" : : "r"(&c) : "memory");
  _tile_loadconfig(&c);
  g_loaded = kt;
}

// ---- q8_0, q4_0 ----

// Block js's sums c[n][lane] into acc: acc = fma(dx * dw, c, acc).
__attribute__((always_inline)) inline void scale_block(const Panel& p, const float* xd, int64_t js,
                                                       const int32_t (*c)[16], __m512 (&acc)[16]) {
  const __m512 dx = _mm512_loadu_ps(xd + js * kGroup);
  for (int n = 0; n < 16; ++n) {
    const __m512 s = _mm512_mul_ps(dx, _mm512_set1_ps(p.s[js * kGroup + n]));
    acc[n] = _mm512_fmadd_ps(s, _mm512_cvtepi32_ps(_mm512_load_si512(c[n])), acc[n]);
  }
}

void tile_blocks(const Tile& t) {
  configure(32);
  const Acts& a = *t.a;
  const Panel& p = *t.p;
  const int64_t nab = a.k / 32;
  const int64_t ns = t.kc / 32;
  alignas(64) int32_t cbuf[4][16][16];
  for (int64_t g = t.g0; g < t.g0 + t.ng; ++g) {
    const int8_t* xq = a.q + g * a.q_stride() + t.k0 * kGroup;
    const float* xd = a.d + (g * nab + t.k0 / 32) * kGroup;
    float* accg = t.acc + (g - t.g0) * kGroup;  // accg[n * acc_ld + lane]
    __m512 acc[16];
    for (int n = 0; n < 16; ++n) acc[n] = _mm512_loadu_ps(accg + n * t.acc_ld);
    // Block js multiplies into C tile js % 4 (A and B tiles alternate).
#define ILLADA_AMX_ISSUE(c, at, bt, js)                                 \
  do {                                                                 \
    if (p.direct) {                                                    \
      _tile_loadd(at, p.direct + (js) * p.direct_block, p.direct_stride); \
    } else {                                                           \
      _tile_loadd(at, p.q + (js) * 512, 32);                           \
    }                                                                  \
    _tile_loadd(bt, xq + (js) * 32 * kGroup, 64);                      \
    _tile_zero(c);                                                     \
    _tile_dpbssd(c, at, bt);                                           \
  } while (0)
#define ILLADA_AMX_DRAIN(c, js)                                         \
  do {                                                                 \
    _tile_stored(c, cbuf[c], 64);                                      \
    scale_block(p, xd, js, cbuf[c], acc);                              \
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
    for (int n = 0; n < 16; ++n) _mm512_storeu_ps(accg + n * t.acc_ld, acc[n]);
  }
}

// ---- q4_K, q6_K ----

// Super-block sb's sums (lo, hi) into acc: P = lo + 128 hi; u = d * P [; u = fma(-dmin, Q, u)
// with Q = Σ_i m pairs · Σq pairs]; acc = fma(dx, u, acc).
template <bool kMins>
__attribute__((always_inline)) inline void scale_superblock(const Panel& p, const float* xd, const int32_t* xb,
                                                            int64_t sb, const int32_t (*lo)[16],
                                                            const int32_t (*hi)[16], __m512 (&acc)[16]) {
  const __m512 dx = _mm512_loadu_ps(xd + sb * kGroup);
  __m512i bp[4];
  if constexpr (kMins) {
    for (int i = 0; i < 4; ++i) bp[i] = _mm512_loadu_si512(xb + (sb * 4 + i) * kGroup);
  }
  for (int n = 0; n < 16; ++n) {
    const __m512i pi = _mm512_add_epi32(_mm512_load_si512(lo[n]), _mm512_slli_epi32(_mm512_load_si512(hi[n]), 7));
    __m512 u = _mm512_mul_ps(_mm512_set1_ps(p.s[sb * kGroup + n]), _mm512_cvtepi32_ps(pi));
    if constexpr (kMins) {
      __m512i qm = _mm512_setzero_si512();
      for (int i = 0; i < 4; ++i) qm = _mm512_dpwssd_epi32(qm, _mm512_set1_epi32(p.mp[(sb * 4 + i) * kGroup + n]), bp[i]);
      u = _mm512_fnmadd_ps(_mm512_set1_ps(p.m[sb * kGroup + n]), _mm512_cvtepi32_ps(qm), u);
    }
    acc[n] = _mm512_fmadd_ps(dx, u, acc[n]);
  }
}

template <bool kMins>
void tile_superblocks(const Tile& t) {
  configure(64);
  const Acts& a = *t.a;
  const Panel& p = *t.p;
  const int64_t nab = a.k / 256;
  const int64_t nsb = t.kc / 256;
  alignas(64) int32_t cbuf[4][16][16];
  for (int64_t g = t.g0; g < t.g0 + t.ng; ++g) {
    const int8_t* xq = a.q + g * a.q_stride() + t.k0 * kGroup;
    const float* xd = a.d + (g * nab + t.k0 / 256) * kGroup;
    const int32_t* xb = kMins ? a.bs2 + (g * (a.k / 64) + t.k0 / 64) * kGroup : nullptr;
    float* accg = t.acc + (g - t.g0) * kGroup;
    __m512 acc[16];
    for (int n = 0; n < 16; ++n) acc[n] = _mm512_loadu_ps(accg + n * t.acc_ld);
    // Super-block sb sums into C tiles (lo, hi) = (0, 1) or (2, 3), alternately.
#define ILLADA_AMX_ISSUE(clo, chi, sb)                                            \
  do {                                                                           \
    _tile_zero(clo);                                                             \
    _tile_zero(chi);                                                             \
    for (int q = 0; q < 4; ++q) {                                                \
      const int64_t k64 = (sb) * 4 + q;                                          \
      _tile_loadd(4, p.q + k64 * 1024, 64);                                      \
      _tile_loadd(5, p.qh + k64 * 1024, 64);                                     \
      if (q % 2 == 0) {                                                          \
        _tile_loadd(6, xq + k64 * 64 * kGroup, 64);                              \
        _tile_dpbssd(clo, 4, 6);                                                 \
        _tile_dpbssd(chi, 5, 6);                                                 \
      } else {                                                                   \
        _tile_loadd(7, xq + k64 * 64 * kGroup, 64);                              \
        _tile_dpbssd(clo, 4, 7);                                                 \
        _tile_dpbssd(chi, 5, 7);                                                 \
      }                                                                          \
    }                                                                            \
  } while (0)
#define ILLADA_AMX_DRAIN(clo, chi, sb)                                            \
  do {                                                                           \
    _tile_stored(clo, cbuf[clo], 64);                                            \
    _tile_stored(chi, cbuf[chi], 64);                                            \
    scale_superblock<kMins>(p, xd, xb, sb, cbuf[clo], cbuf[chi], acc);           \
  } while (0)
    if (nsb > 0) ILLADA_AMX_ISSUE(0, 1, 0);
    for (int64_t sb = 0; sb < nsb; sb += 2) {
      if (sb + 1 < nsb) ILLADA_AMX_ISSUE(2, 3, sb + 1);
      ILLADA_AMX_DRAIN(0, 1, sb);
      if (sb + 1 >= nsb) break;
      if (sb + 2 < nsb) ILLADA_AMX_ISSUE(0, 1, sb + 2);
      ILLADA_AMX_DRAIN(2, 3, sb + 1);
    }
#undef ILLADA_AMX_ISSUE
#undef ILLADA_AMX_DRAIN
    for (int n = 0; n < 16; ++n) _mm512_storeu_ps(accg + n * t.acc_ld, acc[n]);
  }
}

// 64 integers w of one row (natural order) times their scales, split v = lo + 128 hi and stored
// in natural order. sc holds, as int16, per 128-bit lane L the scale of values 16L..16L+15.
// unpacklo/hi take bytes 0-7 / 8-15 of each lane to 16 bits, and packs puts them back in place.
template <bool kSigned>
inline void split_store64(__m512i w, __m512i sc, int8_t* lo, int8_t* hi) {
  __m512i a, b;
  if constexpr (kSigned) {
    a = _mm512_srai_epi16(_mm512_unpacklo_epi8(w, w), 8);
    b = _mm512_srai_epi16(_mm512_unpackhi_epi8(w, w), 8);
  } else {
    a = _mm512_unpacklo_epi8(w, _mm512_setzero_si512());
    b = _mm512_unpackhi_epi8(w, _mm512_setzero_si512());
  }
  const __m512i va = _mm512_mullo_epi16(a, sc), vb = _mm512_mullo_epi16(b, sc);
  const __m512i c64 = _mm512_set1_epi16(64);
  const __m512i ha = _mm512_srai_epi16(_mm512_add_epi16(va, c64), 7), hb = _mm512_srai_epi16(_mm512_add_epi16(vb, c64), 7);
  const __m512i la = _mm512_sub_epi16(va, _mm512_slli_epi16(ha, 7)), lb = _mm512_sub_epi16(vb, _mm512_slli_epi16(hb, 7));
  _mm512_storeu_si512(lo, _mm512_packs_epi16(la, lb));  // |lo| <= 64, |hi| <= 32: no saturation
  _mm512_storeu_si512(hi, _mm512_packs_epi16(ha, hb));
}

inline __m512i join(__m256i a, __m256i b) { return _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1); }

// The k-quants' lo/hi panel: value kk of row nn at [(kk/64)*16 + nn]*64 + kk%64.
void unpack_superblocks(const Format& f, const QuantMatrix& w, int64_t n0, int64_t k0, int64_t kc, Panel& p) {
  unpack_scales_avx2(f, w, n0, k0, kc, p, false);
  p.direct = nullptr;
  const Source src = source_of(w, n0, k0);
  const int64_t nsb = kc / 256, left = (w.k - k0 - kc) / 256;
  const GgmlType type = f.type;  // locals: the int8_t stores below may alias anything
  const __m256i low4 = _mm256_set1_epi8(0x0f), m30 = _mm256_set1_epi8(0x30);
  const __m512i c32 = _mm512_set1_epi8(32);
  const __m512i lane_of = _mm512_srli_epi16(  // each int16 lane's 128-bit lane number
      _mm512_set_epi16(31, 30, 29, 28, 27, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9,
                       8, 7, 6, 5, 4, 3, 2, 1, 0),
      3);
  for (int nn = src.rows; nn < kGroup; ++nn) {
    for (int64_t k64 = 0; k64 < kc / 64; ++k64) {
      std::memset(p.q + k64 * 1024 + nn * 64, 0, 64);
      std::memset(p.qh + k64 * 1024 + nn * 64, 0, 64);
    }
  }
  // Super-blocks outer, rows inner: the panel layout's order of the bytes.
  for (int64_t sb = 0; sb < nsb; ++sb) {
    prefetch_block(src, nsb, sb, left);
    for (int nn = 0; nn < src.rows; ++nn) {
      int8_t* lo = p.q + nn * 64;
      int8_t* hi = p.qh + nn * 64;
      const int32_t* sc = p.sc + sb * (type == GgmlType::Q4_K ? 8 : 16) * kGroup + nn;  // sc[j * 16]
      if (type == GgmlType::Q4_K) {
        const uint8_t* qs = src.field(nn, sb, 16, 128);
        for (int h = 0; h < 4; ++h) {
          // Values 64h..64h+31 (sub-block 2h, lanes 0-1) and 64h+32.. (2h+1, lanes 2-3).
          const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * h));
          const __m512i q = join(_mm256_and_si256(v, low4), _mm256_and_si256(_mm256_srli_epi16(v, 4), low4));
          const __m512i scale = join(_mm256_set1_epi16(static_cast<int16_t>(sc[(2 * h) * kGroup])),
                                     _mm256_set1_epi16(static_cast<int16_t>(sc[(2 * h + 1) * kGroup])));
          const int64_t at = (sb * 4 + h) * 1024;
          split_store64<false>(q, scale, lo + at, hi + at);
        }
      } else {
        const uint8_t* ql = src.field(nn, sb, 0, 128);
        const uint8_t* qhp = src.field(nn, sb, 128, 64);
        // The 16 scales as int16; lane L of chunk c takes scale 4c + L.
        const __m512i sc16 = _mm512_castsi256_si512(
            _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src.field(nn, sb, 192, 16)))));
        for (int h = 0; h < 2; ++h) {
          const __m256i ql0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql + 64 * h));
          const __m256i ql1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql + 64 * h + 32));
          const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qhp + 32 * h));
          __m256i v[4];
          v[0] = _mm256_or_si256(_mm256_and_si256(ql0, low4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m30));
          v[1] = _mm256_or_si256(_mm256_and_si256(ql1, low4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30));
          v[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), low4), _mm256_and_si256(qh, m30));
          v[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), low4),
                                 _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30));
          // v[i] holds values 128h + 32i .. +31: chunk 2h + pair is v[2 pair], v[2 pair + 1].
          for (int pair = 0; pair < 2; ++pair) {
            const int c = 2 * h + pair;
            const __m512i w = _mm512_sub_epi8(join(v[2 * pair], v[2 * pair + 1]), c32);
            const __m512i idx = _mm512_add_epi16(lane_of, _mm512_set1_epi16(static_cast<int16_t>(4 * c)));
            const int64_t at = (sb * 4 + c) * 1024;
            split_store64<true>(w, _mm512_permutexvar_epi16(idx, sc16), lo + at, hi + at);
          }
        }
      }
    }
  }
}

// q8_0 panels of 16 rows read the matrix in place (A tiles take a row stride).
void unpack(const Format& f, const QuantMatrix& w, int64_t n0, int64_t k0, int64_t kc, bool unsigned_enc,
            Panel& p) {
  if (f.block == 256) {
    unpack_superblocks(f, w, n0, k0, kc, p);
  } else if (f.type == GgmlType::Q8_0 && n0 + kGroup <= w.n) {
    unpack_scales_avx2(f, w, n0, k0, kc, p, true);
    const Source src = source_of(w, n0, k0);
    p.direct = reinterpret_cast<const int8_t*>(src.field(0, 0, 2, 32));
    p.direct_stride = src.soa ? 32 : src.rs;  // row 1's integers minus row 0's
    p.direct_block = src.bs;
  } else {
    unpack_avx2(f, w, n0, k0, kc, unsigned_enc, p);
  }
}

void tile(const Tile& t) {
  switch (t.f->type) {
    case GgmlType::Q8_0:
    case GgmlType::Q4_0:
    case GgmlType::Q5_0: tile_blocks(t); break;
    case GgmlType::Q4_K: tile_superblocks<true>(t); break;
    case GgmlType::Q6_K: tile_superblocks<false>(t); break;
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

}  // namespace amx

#pragma GCC pop_options

KernelSet kernels_amx() {
  return KernelSet{.quantize_f32 = quantize_avx2_f32,
                   .quantize_bf16 = quantize_avx2_bf16,
                   .unpack = amx::unpack,
                   .tile = amx::tile,
                   .store = avx512::store_avx512,
                   .store_bf16 = avx512::store_bf16_avx512,
                   .unsigned_enc = false,
                   .q8_0_signed = false,
                   .k_chunk = 1024,
                   .needs_amx_state = true};
}

}  // namespace illada::qgemm_impl

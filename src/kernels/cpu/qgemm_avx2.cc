// qgemm on 256-bit vectors: the activation quantiser and the panel unpacker that every SIMD
// kernel set uses (AVX2 + F16C), and the tile with vpmaddubsw (AVX2) or vpdpbusd (AVX-VNNI).
// Functions get their instruction sets from target pragmas, never from -m flags.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/cpu/qgemm_impl.h"

namespace illada::qgemm_impl {

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")

namespace avx2 {

constexpr bool kVnni = false;
#include "kernels/cpu/qgemm_tile256.inc"

inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
inline __m256 load8(const bf16* p) {
  const __m256i h = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(h, 16));
}

inline int32_t hsum(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}

inline uint32_t hmax_u32(__m256i v) {
  __m128i m = _mm_max_epu32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  m = _mm_max_epu32(m, _mm_shuffle_epi32(m, 0x4e));
  m = _mm_max_epu32(m, _mm_shuffle_epi32(m, 0xb1));
  return static_cast<uint32_t>(_mm_cvtsi128_si32(m));
}

// One block of n values (32 or 256) of one row: q[n] and the sums of every 16 values.
template <class X>
float quantize_block(const X* x, int n, int8_t* q, int32_t* sums16) {
  const __m256i abs_mask = _mm256_set1_epi32(0x7fffffff);
  __m256i m = _mm256_setzero_si256();
  for (int i = 0; i < n; i += 8) {
    m = _mm256_max_epu32(m, _mm256_and_si256(_mm256_castps_si256(load8(x + i)), abs_mask));
  }
  const uint32_t amax_bits = hmax_u32(m);
  float amax;
  std::memcpy(&amax, &amax_bits, 4);
  if (amax_bits >= 0x7f800000u || amax < kTinyBlock) {
    std::memset(q, 0, n);
    for (int i = 0; i < n / 16; ++i) sums16[i] = 0;
    return amax_bits >= 0x7f800000u ? std::numeric_limits<float>::quiet_NaN() : 0.0f;
  }
  const float d = amax / 127.0f;
  const __m256 id = _mm256_set1_ps(1.0f / d);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (int i = 0; i < n; i += 32) {
    const __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(load8(x + i), id));
    const __m256i i1 = _mm256_cvtps_epi32(_mm256_mul_ps(load8(x + i + 8), id));
    const __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(load8(x + i + 16), id));
    const __m256i i3 = _mm256_cvtps_epi32(_mm256_mul_ps(load8(x + i + 24), id));
    sums16[i / 16] = hsum(_mm256_add_epi32(i0, i1));
    sums16[i / 16 + 1] = hsum(_mm256_add_epi32(i2, i3));
    const __m256i b = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + i), _mm256_permutevar8x32_epi32(b, order));
  }
  return d;
}

template <class X>
void quantize(const Format& f, const X* x, int64_t ldx, int rows, int64_t g, int offset, Acts& a) {
  const int n = f.act_block;
  const int64_t k = a.k, nab = k / n, nsub = k / f.sub;
  int8_t* qg = a.q + g * a.q_stride();
  float* d = a.d + g * nab * kGroup;
  int32_t* corr = a.corr ? a.corr + g * nsub * kGroup : nullptr;
  int32_t* bs2 = a.bs2 ? a.bs2 + g * (k / 64) * kGroup : nullptr;
  alignas(32) int8_t tmp[kGroup][256];
  int32_t sums[kGroup][16];
  const __m256i rows_lo = _mm256_setr_epi32(0, 256, 512, 768, 1024, 1280, 1536, 1792);
  for (int64_t b = 0; b < nab; ++b) {
    for (int r = 0; r < kGroup; ++r) {
      if (r < rows) {
        d[b * kGroup + r] = quantize_block(x + r * ldx + b * n, n, tmp[r], sums[r]);
      } else {
        std::memset(tmp[r], 0, n);
        std::fill_n(sums[r], n / 16, 0);
        d[b * kGroup + r] = 0.0f;
      }
    }
    // Rows -> lines of 4 values x 16 rows.
    int8_t* out = qg + b * n * kGroup;
    for (int kq = 0; kq < n / 4; ++kq) {
      const int* base = reinterpret_cast<const int*>(&tmp[0][4 * kq]);
      _mm256_store_si256(reinterpret_cast<__m256i*>(out + 64 * kq), _mm256_i32gather_epi32(base, rows_lo, 1));
      _mm256_store_si256(reinterpret_cast<__m256i*>(out + 64 * kq + 32),
                         _mm256_i32gather_epi32(base + 8 * 64, rows_lo, 1));
    }
    for (int r = 0; r < kGroup; ++r) {
      if (corr) {
        for (int s = 0; s < n / f.sub; ++s) {
          const int32_t sum = f.sub == 16 ? sums[r][s] : sums[r][2 * s] + sums[r][2 * s + 1];
          corr[((b * n) / f.sub + s) * kGroup + r] = -offset * sum;
        }
      }
      if (bs2) {
        for (int s = 0; s < n / 64; ++s) {
          const uint32_t lo = static_cast<uint32_t>(sums[r][4 * s] + sums[r][4 * s + 1]) & 0xffffu;
          const uint32_t hi = static_cast<uint32_t>(sums[r][4 * s + 2] + sums[r][4 * s + 3]);
          bs2[((b * n) / 64 + s) * kGroup + r] = static_cast<int32_t>(lo | (hi << 16));
        }
      }
    }
  }
}

inline void store32(int8_t* p, __m256i v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v); }

inline __m256 half_lo(__m256i v) {  // the low 16 bits of each lane, as half precision
  v = _mm256_and_si256(v, _mm256_set1_epi32(0xffff));
  return _mm256_cvtph_ps(_mm_packus_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1)));
}

// One field of block b of 8 panel rows (rows 8h..8h+7) as vectors: dwords at `byte` into the
// field (gathered: row strides in the rows layout, the field's size in panels), or 8 halves.
struct Fields8 {
  const Source& src;
  int64_t b;
  int h;
  __m256i dword(int off, int size, int byte) const {
    const int64_t stride = src.soa ? size : src.rs;
    const __m256i idx = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                                           _mm256_set1_epi32(static_cast<int>(stride)));
    return _mm256_i32gather_epi32(reinterpret_cast<const int*>(src.field(8 * h, b, off, size) + byte), idx, 1);
  }
  __m256 half(int off) const {
    if (src.soa) return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src.field(8 * h, b, off, 2))));
    return half_lo(dword(off, 2, 0));
  }
};

// The scales of 16 full panel rows, 8 rows at a time: the same products as unpack_scales.
void unpack_scales_vec(const Format& f, const Source& src, int64_t kc, Panel& p) {
  const GgmlType type = f.type;  // locals: the stores below may alias anything
  const int64_t nb = kc / f.block;
  for (int h = 0; h < 2; ++h) {
    float* s = p.s + 8 * h;
    float* m = p.m + 8 * h;
    int32_t* isc = p.sc + 8 * h;
    int32_t* mp = p.mp + 8 * h;
    for (int64_t b = 0; b < nb; ++b) {
      const Fields8 fl{src, b, h};
      switch (type) {
        case GgmlType::Q8_0:
        case GgmlType::Q4_0:
        case GgmlType::Q5_0:
          _mm256_storeu_ps(s + b * kGroup, fl.half(0));
          break;
        case GgmlType::Q4_K: {
          const __m256i s0 = fl.dword(4, 12, 0), s1 = fl.dword(4, 12, 4), s2 = fl.dword(4, 12, 8);
          _mm256_storeu_ps(s + b * kGroup, fl.half(0));
          _mm256_storeu_ps(m + b * kGroup, fl.half(2));
          const __m256i m63 = _mm256_set1_epi32(63), m15 = _mm256_set1_epi32(15), m3 = _mm256_set1_epi32(3);
          __m256i mn[8];
          for (int j = 0; j < 8; ++j) {
            __m256i sc;
            if (j < 4) {
              sc = _mm256_and_si256(_mm256_srli_epi32(s0, 8 * j), m63);
              mn[j] = _mm256_and_si256(_mm256_srli_epi32(s1, 8 * j), m63);
            } else {
              const int jj = 8 * (j - 4);
              sc = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(s2, jj), m15),
                                   _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(s0, jj + 6), m3), 4));
              mn[j] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi32(s2, jj + 4), m15),
                                      _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(s1, jj + 6), m3), 4));
            }
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(isc + (b * 8 + j) * kGroup), sc);
          }
          for (int i = 0; i < 4; ++i) {
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(mp + (b * 4 + i) * kGroup),
                                _mm256_or_si256(mn[2 * i], _mm256_slli_epi32(mn[2 * i + 1], 16)));
          }
          break;
        }
        case GgmlType::Q6_K: {
          // In the rows layout a dword gather of the 2-byte d would read past the last block:
          // read bytes 206..209 (the last two scales and d) and take the high half.
          _mm256_storeu_ps(s + b * kGroup,
                           src.soa ? fl.half(208) : half_lo(_mm256_srli_epi32(fl.dword(192, 16, 14), 16)));
          for (int q = 0; q < 4; ++q) {
            const __m256i v = fl.dword(192, 16, 4 * q);
            for (int i = 0; i < 4; ++i) {
              _mm256_storeu_si256(reinterpret_cast<__m256i*>(isc + (b * 16 + 4 * q + i) * kGroup),
                                  _mm256_srai_epi32(_mm256_slli_epi32(v, 24 - 8 * i), 24));
            }
          }
          break;
        }
        default:
          break;
      }
    }
  }
}

// Asks for the next chunk's bytes of the panel's rows while this one is multiplied.
void prefetch_next(const Format& f, const QuantMatrix& w, const Source& src, int64_t k0, int64_t kc) {
  const int64_t k1 = k0 + kc, k2 = std::min(w.k, k1 + kc);
  if (k1 >= w.k) return;
  const int64_t from = (kc / f.block) * src.bs, to = ((k2 - k0) / f.block) * src.bs;
  if (src.soa) {  // one stream: the panel's next blocks
    for (int64_t o = from; o < to; o += 64) _mm_prefetch(reinterpret_cast<const char*>(src.base + o), _MM_HINT_T1);
    return;
  }
  for (int nn = 0; nn < src.rows; ++nn) {
    const char* row = reinterpret_cast<const char*>(src.base + nn * src.rs);
    for (int64_t o = from; o < to; o += 64) _mm_prefetch(row + o, _MM_HINT_T1);
  }
}

// prefetch: ask for the whole next chunk now (callers that do not prefetch as they unpack).
void scales(const Format& f, const QuantMatrix& w, int64_t n0, int64_t k0, int64_t kc, Panel& p,
            bool prefetch = true) {
  const Source src = source_of(w, n0, k0);
  if (prefetch) prefetch_next(f, w, src, k0, kc);
  if (src.rows == kGroup && src.rs * 8 < (int64_t{1} << 31)) {
    unpack_scales_vec(f, src, kc, p);
  } else {
    unpack_scales(f, w, n0, k0, kc, p);
  }
}

void unpack(const Format& f, const QuantMatrix& w, int64_t n0, int64_t k0, int64_t kc, bool unsigned_enc,
            Panel& p) {
  scales(f, w, n0, k0, kc, p, false);
  p.direct = nullptr;
  const Source src = source_of(w, n0, k0);
  const int64_t left = (w.k - k0 - kc) / f.block;  // blocks after this chunk
  const __m256i low4 = _mm256_set1_epi8(0x0f), m30 = _mm256_set1_epi8(0x30);
  const __m256i off = _mm256_set1_epi8(static_cast<char>(unsigned_enc ? 0 : f.offset));
  // Locals: the int8_t stores below may alias anything, so fields read in the loops would be
  // reloaded (and kc / block divided) at every block.
  const GgmlType type = f.type;
  const int64_t block = f.block, nb = kc / f.block;
  const int rows = src.rows;
  for (int nn = rows; nn < kGroup; ++nn) {  // value kk of row nn at q[(kk/32)*512 + nn*32 + kk%32]
    for (int64_t kk = 0; kk < kc; kk += 32) std::memset(p.q + (kk / 32) * 512 + nn * 32, 0, 32);
  }
  // Blocks outer, rows inner: the panel layout's order of the bytes.
  for (int64_t b = 0; b < nb; ++b) {
    prefetch_block(src, nb, b, left);
    for (int nn = 0; nn < rows; ++nn) {
      int8_t* o = p.q + nn * 32 + b * (block / 32) * 512;
      switch (type) {
        case GgmlType::Q8_0: {
          const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src.field(nn, b, 2, 32)));
          store32(o, unsigned_enc ? _mm256_xor_si256(v, _mm256_set1_epi8(static_cast<char>(0x80))) : v);
          break;
        }
        case GgmlType::Q4_0: {
          const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src.field(nn, b, 2, 16)));
          const __m256i both = _mm256_set_m128i(_mm_srli_epi16(v, 4), v);
          store32(o, _mm256_sub_epi8(_mm256_and_si256(both, low4), off));
          break;
        }
        case GgmlType::Q5_0: {
          // The fifth bits: byte i of the vector takes qh's byte i / 8 and tests bit i % 8.
          uint32_t qh;
          std::memcpy(&qh, src.field(nn, b, 2, 4), 4);
          const __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(qh)),
                                                    _mm256_setr_epi64x(0, 0x0101010101010101, 0x0202020202020202,
                                                                       0x0303030303030303));
          const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201));
          const __m256i fifth = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(bytes, bit), bit),
                                                 _mm256_set1_epi8(0x10));
          const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src.field(nn, b, 6, 16)));
          const __m256i nib = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), low4);
          store32(o, _mm256_sub_epi8(_mm256_or_si256(nib, fifth), off));
          break;
        }
        case GgmlType::Q4_K:
          for (int h = 0; h < 4; ++h) {
            const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src.field(nn, b, 16, 128) + 32 * h));
            store32(o + (2 * h) * 512, _mm256_and_si256(v, low4));
            store32(o + (2 * h + 1) * 512, _mm256_and_si256(_mm256_srli_epi16(v, 4), low4));
          }
          break;
        case GgmlType::Q6_K:
          for (int h = 0; h < 2; ++h) {
            const uint8_t* ql = src.field(nn, b, 0, 128) + 64 * h;
            const __m256i ql0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql));
            const __m256i ql1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ql + 32));
            const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src.field(nn, b, 128, 64) + 32 * h));
            const __m256i v0 = _mm256_or_si256(_mm256_and_si256(ql0, low4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m30));
            const __m256i v1 = _mm256_or_si256(_mm256_and_si256(ql1, low4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30));
            const __m256i v2 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), low4), _mm256_and_si256(qh, m30));
            const __m256i v3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), low4),
                                               _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30));
            int8_t* oh = o + (4 * h) * 512;
            store32(oh, _mm256_sub_epi8(v0, off));
            store32(oh + 512, _mm256_sub_epi8(v1, off));
            store32(oh + 1024, _mm256_sub_epi8(v2, off));
            store32(oh + 1536, _mm256_sub_epi8(v3, off));
          }
          break;
        default:
          break;
      }
    }
  }
}

}  // namespace avx2

#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,avxvnni")

namespace avx_vnni {
constexpr bool kVnni = true;
#include "kernels/cpu/qgemm_tile256.inc"
}  // namespace avx_vnni

#pragma GCC pop_options

void quantize_avx2_f32(const Format& f, const float* x, int64_t ldx, int rows, int64_t g, int offset,
                       Acts& a) {
  avx2::quantize(f, x, ldx, rows, g, offset, a);
}
void quantize_avx2_bf16(const Format& f, const bf16* x, int64_t ldx, int rows, int64_t g, int offset,
                        Acts& a) {
  avx2::quantize(f, x, ldx, rows, g, offset, a);
}
void unpack_avx2(const Format& f, const QuantMatrix& w, int64_t n0, int64_t k0, int64_t kc, bool unsigned_enc,
                 Panel& p) {
  avx2::unpack(f, w, n0, k0, kc, unsigned_enc, p);
}
void unpack_scales_avx2(const Format& f, const QuantMatrix& w, int64_t n0, int64_t k0, int64_t kc, Panel& p,
                        bool prefetch) {
  avx2::scales(f, w, n0, k0, kc, p, prefetch);
}

KernelSet kernels_avx2() {
  return KernelSet{.quantize_f32 = quantize_avx2_f32,
                   .quantize_bf16 = quantize_avx2_bf16,
                   .unpack = unpack_avx2,
                   .tile = avx2::tile,
                   .store = store_scalar,
                   .store_bf16 = store_bf16_scalar,
                   .unsigned_enc = true,
                   .q8_0_signed = true,
                   .k_chunk = 1024,
                   .needs_amx_state = false};
}

KernelSet kernels_avx_vnni() {
  return KernelSet{.quantize_f32 = quantize_avx2_f32,
                   .quantize_bf16 = quantize_avx2_bf16,
                   .unpack = unpack_avx2,
                   .tile = avx_vnni::tile,
                   .store = store_scalar,
                   .store_bf16 = store_bf16_scalar,
                   .unsigned_enc = true,
                   .q8_0_signed = false,
                   .k_chunk = 1024,
                   .needs_amx_state = false};
}

}  // namespace illada::qgemm_impl

// Internals of qgemm (kernels/qgemm.h) shared by its per-instruction-set files: the layouts of
// the quantised activations and of an unpacked weight panel, and the kernels' entry points.
// Each qgemm_<isa>.cc compiles its functions with target attributes (no -m flags), so the
// library runs on any x86-64 and picks the widest kernel at run time.
#pragma once

#include <cstdint>

#include "io/ggml_types.h"
#include "kernels/qgemm.h"
#include "util/bf16.h"

namespace illada::qgemm_impl {

constexpr int kGroup = 16;  // activation rows per group: zmm lanes, an AMX tile's columns
constexpr float kTinyBlock = 0x1p-100f;  // activation blocks smaller than this are zero

// What a weight type asks of the product.
struct Format {
  GgmlType type;
  int block;      // values per weight block (32; 256 for the k-quants)
  int act_block;  // values per activation scale (32 as ggml's q8_0; 256 as its q8_K)
  int sub;        // values per exact integer sum (32; 16 for q6_K)
  int offset;     // added to w_int by the unsigned encoding (q8_0 128, q4_0 8, q6_K 32, q4_K 0)
  bool mins;      // q4_K: sub-block minimums (Σq per 32 values needed)
};
const Format& format_of(GgmlType t);  // t must be supported

// The quantised activations of one call. Rows come in groups of 16 (the last one padded with
// zero rows); inside a group the 4 values k..k+3 of the 16 rows make one 64-byte line: the
// layout of an AMX B tile and of a 512-bit vpdpbusd operand (rows in lanes).
struct Acts {
  int64_t t = 0, groups = 0, k = 0;
  int8_t* q = nullptr;      // [groups][k/4][16][4]
  float* d = nullptr;       // [groups][k/act_block][16] block scales
  int32_t* corr = nullptr;  // [groups][k/sub][16] -offset * Σq per sub-block (or nullptr)
  int32_t* bs2 = nullptr;   // q4_K: [groups][k/64][16] Σq over values 64i..64i+31 (low 16 bits)
                            // and 64i+32..64i+63 (high 16 bits), for vpdpwssd with min pairs
  int64_t q_stride() const { return k * kGroup; }  // bytes per group
};

// Quantises rows [16*g, 16*g + rows) of x (row stride ldx) into group g of `a`; rows < 16 pads
// with zero rows. offset: the weight encoding's (Format::offset, or 0 for signed encodings).
using QuantizeF32 = void (*)(const Format& f, const float* x, int64_t ldx, int rows, int64_t g,
                             int offset, Acts& a);
using QuantizeBf16 = void (*)(const Format& f, const bf16* x, int64_t ldx, int rows, int64_t g,
                              int offset, Acts& a);

// 16 weight rows (outputs n0..n0+15) over the values [k0, k0 + kc), unpacked for the kernels.
// q holds per 32 values the 16 rows' integers side by side, signed (w_int) or unsigned
// (w_int + Format::offset, for vpdpbusd's unsigned operand). AMX reads the k-quants as
// v = sc_j * w_int split into two signed bytes, v = lo + 128 * hi, 64 values per row: q holds
// lo and qh hi, [kc/64][16][64] each, so that one tile sum covers a whole super-block.
// Rows beyond the matrix are zero.
struct Panel {
  int8_t* q = nullptr;    // [kc/32][16][32] (AMX k-quants: lo, [kc/64][16][64])
  int8_t* qh = nullptr;   // AMX k-quants: hi, [kc/64][16][64]
  float* s = nullptr;     // q8_0, q4_0: [kc/32][16] dw; k-quants: [kc/256][16] d
  float* m = nullptr;     // q4_K: [kc/256][16] dmin
  int32_t* sc = nullptr;  // k-quants: [kc/sub][16] sub-block scales
  int32_t* mp = nullptr;  // q4_K: [kc/64][16] min pairs m_2i | m_2i+1 << 16
  // AMX, q8_0: the integers are read where the matrix holds them (rows `direct_stride` bytes
  // apart, block b's 32 values at direct + direct_block * b) and q is not filled.
  const int8_t* direct = nullptr;
  int64_t direct_stride = 0, direct_block = 0;
};
// Where the blocks of a panel's rows are. kRows: row nn's block b (counted from the chunk's
// first value) at base + nn * rs + b * bs. kPanels16 (soa): the 16 rows' block b at
// base + b * bs, each field of ggml's block (at offset `off`, `size` bytes) stored for the 16
// rows side by side: row nn's at base + b * bs + 16 * off + nn * size. Rows from `rows` on read
// as zero.
struct Source {
  const uint8_t* base = nullptr;
  int64_t rs = 0, bs = 0;
  int rows = 0;
  bool soa = false;
  const uint8_t* field(int nn, int64_t b, int off, int size) const {
    return soa ? base + b * bs + 16 * off + nn * size : base + nn * rs + b * bs + off;
  }
};
// Asks for block b of the next chunk (nb blocks on) of the panel's rows, into L2: called as
// block b of this chunk is unpacked, so that requests keep pace with use.
inline void prefetch_block(const Source& src, int64_t nb, int64_t b, int64_t blocks_left) {
  if (b >= blocks_left) return;
  if (src.soa) {
    const auto* at = reinterpret_cast<const char*>(src.base + (nb + b) * src.bs);
    for (int64_t o = 0; o < src.bs; o += 64) __builtin_prefetch(at + o, 0, 2);
    return;
  }
  for (int nn = 0; nn < src.rows; ++nn) {
    const auto* at = reinterpret_cast<const char*>(src.base + nn * src.rs + (nb + b) * src.bs);
    for (int64_t o = 0; o < src.bs; o += 64) __builtin_prefetch(at + o, 0, 2);
  }
}

inline Source source_of(const QuantMatrix& w, int64_t n0, int64_t k0) {
  const int64_t row_bytes = static_cast<int64_t>(ggml_row_bytes(w.type, w.k));
  const int64_t ts = ggml_traits(w.type).type_size, block = ggml_traits(w.type).block_size;
  const auto* data = reinterpret_cast<const uint8_t*>(w.data) + n0 * row_bytes;
  const int rows = static_cast<int>(w.n - n0 < kGroup ? w.n - n0 : kGroup);
  if (w.layout == QuantLayout::kPanels16) {
    return Source{data + (k0 / block) * kGroup * ts, 0, kGroup * ts, rows, true};
  }
  return Source{data + (k0 / block) * ts, row_bytes, ts, rows, false};
}

using UnpackFn = void (*)(const Format& f, const QuantMatrix& w, int64_t n0, int64_t k0,
                          int64_t kc, bool unsigned_enc, Panel& p);

// One panel times groups [g0, g0 + ng) of the activations over the panel's values
// [k0, k0 + kc), added into acc[n * acc_ld + 16 * (g - g0) + lane] (n < 16), which holds the
// running sums between calls (k0 advances in steps that are whole super-blocks).
struct Tile {
  const Format* f = nullptr;
  const Panel* p = nullptr;
  const Acts* a = nullptr;
  int64_t k0 = 0, kc = 0;
  int64_t g0 = 0, ng = 0;
  float* acc = nullptr;
  int64_t acc_ld = 0;
};
using TileFn = void (*)(const Tile& t);

// The finished sums acc[c * acc_ld + r] (c < cols, r < rows) into y[r * ldy + c] (+=).
using StoreFn = void (*)(const float* acc, int64_t acc_ld, int64_t cols, int64_t rows, float* y,
                         int64_t ldy, bool accumulate);
// The same block stored as bf16, each value rounded as to_bf16(float) rounds it (never accumulated).
using StoreBf16Fn = void (*)(const float* acc, int64_t acc_ld, int64_t cols, int64_t rows, bf16* y,
                             int64_t ldy);

// The per-instruction-set pieces; an entry is null where the file was built without it.
struct KernelSet {
  QuantizeF32 quantize_f32;
  QuantizeBf16 quantize_bf16;
  UnpackFn unpack;
  TileFn tile;
  StoreFn store;
  StoreBf16Fn store_bf16;
  bool unsigned_enc;     // the panel encoding the tile function reads ...
  bool q8_0_signed;      // ... except q8_0, signed where set (AVX2's sign trick)
  int64_t k_chunk;       // values per panel chunk (a multiple of 256)
  bool needs_amx_state;  // tiles configured per thread (and released after the call)
};

// Whether kernel set `ks` reads format f's panels unsigned (w_int + offset).
inline bool unsigned_panel(const KernelSet& ks, const Format& f) {
  return ks.unsigned_enc && !(ks.q8_0_signed && f.type == GgmlType::Q8_0);
}

KernelSet kernels_scalar();
KernelSet kernels_avx2();
KernelSet kernels_avx_vnni();
KernelSet kernels_avx512_vnni();
KernelSet kernels_amx();

// Shared by the kernel files.
void quantize_scalar_f32(const Format& f, const float* x, int64_t ldx, int rows, int64_t g,
                         int offset, Acts& a);
void quantize_scalar_bf16(const Format& f, const bf16* x, int64_t ldx, int rows, int64_t g,
                          int offset, Acts& a);
void store_scalar(const float* acc, int64_t acc_ld, int64_t cols, int64_t rows, float* y,
                  int64_t ldy, bool accumulate);
void store_bf16_scalar(const float* acc, int64_t acc_ld, int64_t cols, int64_t rows, bf16* y, int64_t ldy);
namespace avx512 {
void store_avx512(const float* acc, int64_t acc_ld, int64_t cols, int64_t rows, float* y,
                  int64_t ldy, bool accumulate);
void store_bf16_avx512(const float* acc, int64_t acc_ld, int64_t cols, int64_t rows, bf16* y, int64_t ldy);
}  // namespace avx512
void unpack_scalar(const Format& f, const QuantMatrix& w, int64_t n0, int64_t k0, int64_t kc,
                   bool unsigned_enc, Panel& p);
// The sub-block scales (and q4_K mins) of a panel: scalar, shared by every unpacker.
void unpack_scales(const Format& f, const QuantMatrix& w, int64_t n0, int64_t k0, int64_t kc,
                   Panel& p);
// AVX2 pieces that the wider kernel sets reuse.
void quantize_avx2_f32(const Format& f, const float* x, int64_t ldx, int rows, int64_t g,
                       int offset, Acts& a);
void quantize_avx2_bf16(const Format& f, const bf16* x, int64_t ldx, int rows, int64_t g,
                        int offset, Acts& a);
void unpack_avx2(const Format& f, const QuantMatrix& w, int64_t n0, int64_t k0, int64_t kc,
                 bool unsigned_enc, Panel& p);
// Only the scales (and, with prefetch, a request for the next chunk's bytes).
void unpack_scales_avx2(const Format& f, const QuantMatrix& w, int64_t n0, int64_t k0, int64_t kc,
                        Panel& p, bool prefetch);
// AMX: release the tile state of the calling thread (after a call's last tile).
namespace amx {
void amx_release();
}  // namespace amx

}  // namespace illada::qgemm_impl

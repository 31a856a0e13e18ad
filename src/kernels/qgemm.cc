// qgemm's driver: checks the call, quantises the activations once, then runs tasks of 16-64
// outputs x up to 512 rows in parallel. A task unpacks its weights one chunk of k at a time
// (at most 64 rows x 1024 values: the only expanded copy of the weights) and runs the chosen
// instruction set's tile function over it. Every output is summed in one fixed order, so the
// thread count and the task split never change a bit.
#include "kernels/qgemm.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "kernels/cpu/qgemm_impl.h"
#include "kernels/quant.h"
#include "util/aligned.h"
#include "util/check.h"
#include "util/isa.h"
#include "util/profile.h"

namespace illada {

using namespace qgemm_impl;

namespace {

constexpr int kPanelsPerTask = 4;   // 64 outputs
constexpr int kGroupsPerTask = 32;  // 512 rows

const KernelSet& kernel_set(QuantKernel k) {
  static const KernelSet scalar = kernels_scalar(), avx2 = kernels_avx2(),
                         avx_vnni = kernels_avx_vnni(), avx512 = kernels_avx512_vnni(),
                         amx = kernels_amx();
  switch (k) {
    case QuantKernel::kAvx2: return avx2;
    case QuantKernel::kAvxVnni: return avx_vnni;
    case QuantKernel::kAvx512Vnni: return avx512;
    case QuantKernel::kAmx: return amx;
    default: return scalar;
  }
}

// The calling thread's activation buffers (qgemm may be called from several threads at once).
struct ActScratch {
  Buffer<int8_t> q;
  Buffer<float> d;
  Buffer<int32_t> corr, bs2;
};

// A worker's panel and accumulators.
struct TaskScratch {
  Buffer<int8_t> q, qh;
  Buffer<float> s, m, acc;
  Buffer<int32_t> sc, mp;
};

QuantKernel resolve(QuantKernel k) {
  if (k == QuantKernel::kAuto) return qgemm_kernel();
  if (!qgemm_kernel_available(k)) {
    const CpuFeatures& c = cpu_features();
    fail("qgemm: the ", quant_kernel_name(k), " kernel needs instructions this CPU or OS does not "
         "offer (avx2 ", c.avx2, ", avx_vnni ", c.avx_vnni, ", avx512 ", c.avx512bw,
         ", avx512_vnni ", c.avx512_vnni, ", amx_int8 ", c.amx_int8, ")");
  }
  return k;
}

template <class Y, class X>
void run(Y* y, const X* x, const QuantMatrix& w, int64_t t, const QGemmOptions& o) {
  ProfileScope prof("qgemm");
  if (!qgemm_supports(w.type)) {
    fail("qgemm: weights of type ", ggml_type_name(w.type),
         " have no quantised product (supported: q8_0, q4_0, q5_0, q4_K, q6_K)");
  }
  const Format& f = format_of(w.type);
  if (w.k <= 0 || w.k % f.block != 0) {
    fail("qgemm: a ", ggml_type_name(w.type), " row of ", w.k, " values is not a whole number of ",
         f.block, "-value blocks");
  }
  ILLADA_CHECK(w.n > 0 && w.data != nullptr, "qgemm: empty weight matrix");
  ILLADA_CHECK(t >= 0, "qgemm: negative row count ", t);
  const int64_t ldx = o.ldx ? o.ldx : w.k, ldy = o.ldy ? o.ldy : w.n;
  ILLADA_CHECK(ldx >= w.k && ldy >= w.n, "qgemm: strides ", ldx, ", ", ldy, " below ", w.k, ", ", w.n);
  if constexpr (std::is_same_v<Y, bf16>) {
    if (o.accumulate) fail("qgemm: a bf16 output cannot be accumulated (accumulate needs an fp32 y)");
  }
  const KernelSet& ks = kernel_set(resolve(o.kernel));
  if (t == 0) return;

  // 1. The activations, quantised once for every output.
  thread_local ActScratch as;
  Acts a;
  a.t = t;
  a.k = w.k;
  a.groups = (t + kGroup - 1) / kGroup;
  const bool uenc = unsigned_panel(ks, f);
  const int offset = uenc ? f.offset : 0;
  a.q = sized(as.q, a.groups * a.q_stride());
  a.d = sized(as.d, a.groups * (w.k / f.act_block) * kGroup);
  a.corr = offset ? sized(as.corr, a.groups * (w.k / f.sub) * kGroup) : nullptr;
  a.bs2 = f.mins ? sized(as.bs2, a.groups * (w.k / 64) * kGroup) : nullptr;
#pragma omp parallel for schedule(static) if (a.groups > 1 && t * w.k >= (int64_t{1} << 15))
  for (int64_t g = 0; g < a.groups; ++g) {
    const int rows = static_cast<int>(std::min<int64_t>(kGroup, t - g * kGroup));
    if constexpr (std::is_same_v<X, float>) {
      ks.quantize_f32(f, x + g * kGroup * ldx, ldx, rows, g, offset, a);
    } else {
      ks.quantize_bf16(f, x + g * kGroup * ldx, ldx, rows, g, offset, a);
    }
  }

  // 2. Tasks: up to 64 outputs x 512 rows each; fewer outputs per task when the matrix is
  // narrow, so that both cores get work.
  const int64_t panels = (w.n + kGroup - 1) / kGroup;
  const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  const int64_t ppt = panels >= int64_t{2} * kPanelsPerTask * threads ? kPanelsPerTask : 1;
  const int64_t n_tasks_n = (panels + ppt - 1) / ppt;
  const int64_t n_tasks_t = (a.groups + kGroupsPerTask - 1) / kGroupsPerTask;
  const int64_t n_tasks = n_tasks_n * n_tasks_t;
  const int64_t kc_max = std::min<int64_t>(ks.k_chunk, w.k);
  const int64_t work = t * w.n * w.k;

#pragma omp parallel if (n_tasks > 1 && work >= (int64_t{1} << 20))
  {
    thread_local TaskScratch ts;
    Panel panel[kPanelsPerTask];
    // Room for every layout of every format (see Panel): kc_max values of 16 rows.
    const int64_t nq = kc_max * kGroup, nblk = (kc_max / 16) * kGroup;
    for (int64_t i = 0; i < ppt; ++i) {
      panel[i].q = sized(ts.q, ppt * nq) + i * nq;
      panel[i].qh = sized(ts.qh, ppt * nq) + i * nq;
      panel[i].s = sized(ts.s, ppt * nblk) + i * nblk;
      panel[i].m = sized(ts.m, ppt * nblk) + i * nblk;
      panel[i].sc = sized(ts.sc, ppt * nblk) + i * nblk;
      panel[i].mp = sized(ts.mp, ppt * nblk) + i * nblk;
    }
#pragma omp for schedule(dynamic)
    for (int64_t task = 0; task < n_tasks; ++task) {
      const int64_t p0 = (task / n_tasks_t) * ppt, np = std::min(ppt, panels - p0);
      const int64_t g0 = (task % n_tasks_t) * kGroupsPerTask,
                    ng = std::min<int64_t>(kGroupsPerTask, a.groups - g0);
      const int64_t acc_ld = ng * kGroup;
      float* acc = sized(ts.acc, np * kGroup * acc_ld);
      std::fill(acc, acc + np * kGroup * acc_ld, 0.0f);
      for (int64_t k0 = 0; k0 < w.k; k0 += kc_max) {
        const int64_t kc = std::min(kc_max, w.k - k0);
        for (int64_t i = 0; i < np; ++i) {
          ks.unpack(f, w, (p0 + i) * kGroup, k0, kc, uenc, panel[i]);
        }
        for (int64_t i = 0; i < np; ++i) {
          ks.tile(Tile{.f = &f, .p = &panel[i], .a = &a, .k0 = k0, .kc = kc, .g0 = g0, .ng = ng,
                       .acc = acc + i * kGroup * acc_ld, .acc_ld = acc_ld});
        }
      }
      const int64_t n0 = p0 * kGroup, r0 = g0 * kGroup;
      const int64_t cols = std::min(w.n, (p0 + np) * kGroup) - n0, rows = std::min(t, (g0 + ng) * kGroup) - r0;
      if constexpr (std::is_same_v<Y, bf16>) {
        ks.store_bf16(acc, acc_ld, cols, rows, y + r0 * ldy + n0, ldy);
      } else {
        ks.store(acc, acc_ld, cols, rows, y + r0 * ldy + n0, ldy, o.accumulate);
      }
    }
    if (ks.needs_amx_state) qgemm_impl::amx::amx_release();
  }
}

}  // namespace

uint64_t qgemm_packed_bytes(GgmlType t, int64_t n, int64_t k) {
  return ggml_row_bytes(t, k) * static_cast<uint64_t>((n + kGroup - 1) / kGroup * kGroup);
}

namespace {

// The fields of each type's block: (offset, size) in ggml's layout.
struct Field {
  int off, size;
};
std::vector<Field> fields_of(GgmlType t) {
  switch (t) {
    case GgmlType::Q8_0: return {{0, 2}, {2, 32}};
    case GgmlType::Q4_0: return {{0, 2}, {2, 16}};
    case GgmlType::Q5_0: return {{0, 2}, {2, 4}, {6, 16}};
    case GgmlType::Q4_K: return {{0, 2}, {2, 2}, {4, 12}, {16, 128}};
    case GgmlType::Q6_K: return {{0, 128}, {128, 64}, {192, 16}, {208, 2}};
    default: return {};
  }
}

// Copies row-major blocks into panels (to_panels) or back (see QuantLayout::kPanels16).
void repack(GgmlType t, const std::byte* in, int64_t n, int64_t k, std::byte* out, bool to_panels) {
  if (!qgemm_supports(t)) {
    fail("qgemm_pack: weights of type ", ggml_type_name(t), " have no panel layout (supported: q8_0, q4_0, q5_0, q4_K, q6_K)");
  }
  ILLADA_CHECK(n > 0 && k > 0 && k % ggml_traits(t).block_size == 0, "qgemm_pack: bad shape ", n, " x ", k);
  const std::vector<Field> fields = fields_of(t);
  const int64_t row_bytes = static_cast<int64_t>(ggml_row_bytes(t, k));
  const int64_t ts = ggml_traits(t).type_size, nb = k / ggml_traits(t).block_size;
  const int64_t panels = (n + kGroup - 1) / kGroup;
#pragma omp parallel for schedule(static) if (panels > 1 && n * row_bytes >= (int64_t{1} << 22))
  for (int64_t p = 0; p < panels; ++p) {
    for (int64_t b = 0; b < nb; ++b) {
      const int64_t group = p * kGroup * row_bytes + b * kGroup * ts;
      for (int r = 0; r < kGroup; ++r) {
        const int64_t row = p * kGroup + r;
        const int64_t at_row = row * row_bytes + b * ts;
        for (const Field& f : fields) {
          const int64_t at_panel = group + kGroup * f.off + r * f.size;
          if (!to_panels) {
            if (row < n) std::memcpy(out + at_row + f.off, in + at_panel, f.size);
          } else if (row < n) {
            std::memcpy(out + at_panel, in + at_row + f.off, f.size);
          } else {
            std::memset(out + at_panel, 0, f.size);
          }
        }
      }
    }
  }
}

}  // namespace

void qgemm_pack(GgmlType t, const std::byte* rows, int64_t n, int64_t k, std::byte* packed) {
  repack(t, rows, n, k, packed, true);
}
void qgemm_unpack(GgmlType t, const std::byte* packed, int64_t n, int64_t k, std::byte* rows) {
  repack(t, packed, n, k, rows, false);
}

bool qgemm_supports(GgmlType t) {
  return t == GgmlType::Q8_0 || t == GgmlType::Q4_0 || t == GgmlType::Q5_0 || t == GgmlType::Q4_K ||
         t == GgmlType::Q6_K;
}

bool qgemm_kernel_available(QuantKernel k) {
  const CpuFeatures& c = cpu_features();
  const bool avx2 = c.avx2 && c.fma && c.f16c;
  const bool avx512 = avx2 && c.avx512f && c.avx512bw && c.avx512vl && c.avx512dq;
  switch (k) {
    case QuantKernel::kAuto:
    case QuantKernel::kScalar: return true;
    case QuantKernel::kAvx2: return avx2;
    case QuantKernel::kAvxVnni: return avx2 && c.avx_vnni;
    case QuantKernel::kAvx512Vnni: return avx512 && c.avx512_vnni;
    case QuantKernel::kAmx: return avx512 && c.avx512_vnni && c.amx_tile && c.amx_int8;
  }
  return false;
}

QuantKernel qgemm_kernel() {
  const Isa level = isa_level();
  const auto at_least = [&](Isa l) { return static_cast<int>(level) >= static_cast<int>(l); };
  if (at_least(Isa::kAmx) && qgemm_kernel_available(QuantKernel::kAmx)) return QuantKernel::kAmx;
  if (at_least(Isa::kAvx512) && qgemm_kernel_available(QuantKernel::kAvx512Vnni)) {
    return QuantKernel::kAvx512Vnni;
  }
  if (at_least(Isa::kAvx2) && qgemm_kernel_available(QuantKernel::kAvxVnni)) {
    return QuantKernel::kAvxVnni;
  }
  if (at_least(Isa::kAvx2) && qgemm_kernel_available(QuantKernel::kAvx2)) return QuantKernel::kAvx2;
  return QuantKernel::kScalar;
}

const char* quant_kernel_name(QuantKernel k) {
  switch (k) {
    case QuantKernel::kAuto: return "auto";
    case QuantKernel::kScalar: return "scalar";
    case QuantKernel::kAvx2: return "avx2";
    case QuantKernel::kAvxVnni: return "avx_vnni";
    case QuantKernel::kAvx512Vnni: return "avx512_vnni";
    case QuantKernel::kAmx: return "amx";
  }
  return "?";
}

void qgemm(float* y, const float* x, const QuantMatrix& w, int64_t t, const QGemmOptions& o) {
  run(y, x, w, t, o);
}
void qgemm(float* y, const bf16* x, const QuantMatrix& w, int64_t t, const QGemmOptions& o) {
  run(y, x, w, t, o);
}
void qgemm(bf16* y, const float* x, const QuantMatrix& w, int64_t t, const QGemmOptions& o) {
  run(y, x, w, t, o);
}
void qgemm(bf16* y, const bf16* x, const QuantMatrix& w, int64_t t, const QGemmOptions& o) {
  run(y, x, w, t, o);
}

}  // namespace illada

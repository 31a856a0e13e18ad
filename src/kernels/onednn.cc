// The shared oneDNN engine, the ILLADA_ISA cap and the bf16 capability probe (see onednn.h).
#include "kernels/onednn.h"

#include <cstdio>

#include "util/isa.h"

namespace illada::onednn {
namespace {

dnnl::cpu_isa onednn_isa(Isa level) {
  switch (level) {
    case Isa::kScalar: return dnnl::cpu_isa::sse41;  // oneDNN's lowest level
    case Isa::kAvx2: return dnnl::cpu_isa::avx2;
    case Isa::kAvx512: return dnnl::cpu_isa::avx512_core;
    case Isa::kAvx512Bf16: return dnnl::cpu_isa::avx512_core_bf16;
    case Isa::kAmx: return dnnl::cpu_isa::all;
  }
  return dnnl::cpu_isa::all;
}

// A bf16 matmul primitive can be created (oneDNN 2.x: AVX-512 and above).
bool probe_bf16() {
  try {
    const auto bf = dnnl::memory::data_type::bf16;
    const dnnl::memory::desc a({16, 16}, bf, dnnl::memory::format_tag::ab);
    const dnnl::memory::desc c({16, 16}, dnnl::memory::data_type::f32,
                               dnnl::memory::format_tag::ab);
    dnnl::matmul::primitive_desc(dnnl::matmul::desc(a, a, c), engine());
    return true;
  } catch (const dnnl::error&) {
    return false;
  }
}

}  // namespace

dnnl::engine& engine() {
  static dnnl::engine eng = [] {
    const Isa level = isa_env_level();
    if (level < isa_supported() &&
        dnnl::set_max_cpu_isa(onednn_isa(level)) != dnnl::status::success) {
      // Only if oneDNN was built without the control or has dispatched already.
      std::fprintf(stderr, "illada: oneDNN did not accept ILLADA_ISA=%s; its products keep "
                   "their own instruction set\n", isa_name(level));
    }
    return dnnl::engine(dnnl::engine::kind::cpu, 0);
  }();
  return eng;
}

bool bf16_products() {
  static const bool onednn_has_bf16 = probe_bf16();
  return onednn_has_bf16 && isa_level() >= Isa::kAvx512;
}

float* widened(const bf16* p, int64_t n, Buffer<float>& buf, bool parallel) {
  float* out = sized(buf, n);
  if (parallel) {
    to_float(out, p, static_cast<long>(n));
  } else {
    for (int64_t i = 0; i < n; ++i) out[i] = to_float(p[i]);
  }
  return out;
}

}  // namespace illada::onednn

// The CPU's instruction sets, detected once at run time, and the level illada's own kernels may
// use: the highest the CPU and the OS support, capped by the ILLADA_ISA environment variable
// (scalar, avx2, avx512, avx512_bf16, amx) or set_isa_cap() in tests. Binaries are built for
// plain x86-64; kernels compile their wider paths with target attributes and pick one here.
#pragma once

#include <string>

namespace illada {

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false;
  bool avx512_vnni = false, avx512_bf16 = false, avx_vnni = false;
  bool amx_tile = false, amx_int8 = false, amx_bf16 = false;  // usable: the OS granted the tile state
};

// What this CPU and OS support (cpuid + xgetbv; AMX after asking Linux for the tile state).
const CpuFeatures& cpu_features();

// Ordered levels: each includes the ones below.
//   kAvx2        AVX2 + FMA + F16C
//   kAvx512      AVX-512 F/BW/VL/DQ (VNNI used where cpu_features() has it)
//   kAvx512Bf16  kAvx512 + AVX512-BF16
//   kAmx         kAvx512Bf16 + AMX tile/int8/bf16
enum class Isa : int { kScalar = 0, kAvx2 = 1, kAvx512 = 2, kAvx512Bf16 = 3, kAmx = 4 };

const char* isa_name(Isa isa);          // "scalar", "avx2", "avx512", "avx512_bf16", "amx"
Isa parse_isa(const std::string& name);  // throws Error listing the names

// The highest level cpu_features() supports.
Isa isa_supported();
// The level kernels use: isa_supported(), capped by ILLADA_ISA (read once, at first use; a
// name above what the CPU supports leaves the CPU's level) or by set_isa_cap().
Isa isa_level();
// Tests: cap the level (and undo with the returned previous cap). Not for concurrent use.
Isa set_isa_cap(Isa cap);
// isa_supported() capped by ILLADA_ISA alone (set_isa_cap() left out): what a library that
// dispatches once per process, such as oneDNN, is told to use.
Isa isa_env_level();

}  // namespace illada

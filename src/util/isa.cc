// Run-time instruction-set detection (see isa.h).
#include "util/isa.h"

#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>

#include "util/check.h"

namespace illada {
namespace {

uint64_t xgetbv0() {
  uint32_t eax, edx;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}

bool request_amx_tiles() {
  // Linux keeps the AMX tile data state off until a process asks (arch_prctl
  // ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18).
  return syscall(SYS_arch_prctl, 0x1023, 18) == 0;
}

CpuFeatures detect() {
  CpuFeatures f;
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = c & (1u << 27);
  const uint64_t xcr0 = osxsave ? xgetbv0() : 0;
  const bool ymm = (xcr0 & 0x6) == 0x6, zmm = (xcr0 & 0xe6) == 0xe6;
  const bool tiles = (xcr0 & (3ull << 17)) == (3ull << 17);
  const bool fma = c & (1u << 12), f16c = c & (1u << 29);
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return f;
  f.avx2 = ymm && (b & (1u << 5));
  f.fma = ymm && fma;
  f.f16c = ymm && f16c;
  f.avx512f = zmm && (b & (1u << 16));
  f.avx512dq = zmm && (b & (1u << 17));
  f.avx512bw = zmm && (b & (1u << 30));
  f.avx512vl = zmm && (b & (1u << 31));
  f.avx512_vnni = zmm && (c & (1u << 11));
  const bool amx_bf16 = d & (1u << 22), amx_tile = d & (1u << 24), amx_int8 = d & (1u << 25);
  unsigned a1 = 0, b1 = 0, c1 = 0, d1 = 0;
  __get_cpuid_count(7, 1, &a1, &b1, &c1, &d1);
  f.avx_vnni = ymm && (a1 & (1u << 4));
  f.avx512_bf16 = zmm && (a1 & (1u << 5));
  if (tiles && amx_tile && request_amx_tiles()) {
    f.amx_tile = true;
    f.amx_int8 = amx_int8;
    f.amx_bf16 = amx_bf16;
  }
  return f;
}

constexpr Isa kNoCap = static_cast<Isa>(100);
std::atomic<int> g_cap{-1};  // -1: not read yet

Isa capped(Isa cap) {
  const Isa s = isa_supported();
  return static_cast<int>(s) < static_cast<int>(cap) ? s : cap;
}

Isa env_cap() {
  const char* v = std::getenv("ILLADA_ISA");
  if (!v || !*v) return kNoCap;
  try {
    return parse_isa(v);
  } catch (const Error& e) {
    // A typo must not silently run the fastest path: stop with the message and exit status 2.
    // (Not an exception: the first isa_level() call may be inside a parallel loop, where an
    // exception would abort the process.)
    std::fprintf(stderr, "illada: ILLADA_ISA: %s\n", e.what());
    std::exit(2);
  }
}

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect();
  return f;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return "scalar";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512: return "avx512";
    case Isa::kAvx512Bf16: return "avx512_bf16";
    case Isa::kAmx: return "amx";
  }
  return "?";
}

Isa parse_isa(const std::string& name) {
  for (Isa i : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAvx512Bf16, Isa::kAmx}) {
    if (name == isa_name(i)) return i;
  }
  fail("unknown instruction-set level '", name, "' (expected scalar, avx2, avx512, avx512_bf16 or amx)");
}

Isa isa_supported() {
  const CpuFeatures& f = cpu_features();
  if (!(f.avx2 && f.fma && f.f16c)) return Isa::kScalar;
  if (!(f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq)) return Isa::kAvx2;
  if (!f.avx512_bf16) return Isa::kAvx512;
  if (!(f.amx_tile && f.amx_int8 && f.amx_bf16)) return Isa::kAvx512Bf16;
  return Isa::kAmx;
}

Isa isa_level() {
  int cap = g_cap.load(std::memory_order_relaxed);
  if (cap < 0) {
    cap = static_cast<int>(env_cap());
    g_cap.store(cap, std::memory_order_relaxed);
  }
  return capped(static_cast<Isa>(cap));
}

Isa isa_env_level() {
  static const Isa level = capped(env_cap());
  return level;
}

Isa set_isa_cap(Isa cap) {
  isa_level();  // the environment's cap is read first, so that it is what gets restored
  return static_cast<Isa>(g_cap.exchange(static_cast<int>(cap)));
}

}  // namespace illada

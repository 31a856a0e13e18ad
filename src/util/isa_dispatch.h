// Run-time choice of a loop's instruction set. The library is built for plain x86-64; a file
// with hot loops compiles them once per level below (util/foreach_isa.inc: GCC target pragmas,
// no -march flag, one source) and its public functions call the copy for isa_level() (isa.h:
// the CPU's level, capped by ILLADA_ISA or set_isa_cap()).
//
//   copy      level (util/isa.h)        instructions the compiler may use
//   scalar    kScalar                   the x86-64 baseline (SSE2 vectorisation only)
//   avx2      kAvx2                     AVX2, FMA, F16C
//   avx512    kAvx512 and above         AVX-512 F/BW/VL/DQ (512-bit vectors) and the above
//
// AVX512-BF16 and AMX matter to oneDNN's products, not to these loops: the higher levels run
// the avx512 copy. The copies compute the same formulas; they may differ in the last bits
// where the compiler fuses a*b+c into one multiply-add (avx2, avx512) or sums a reduction in
// another lane order.
//
// A file `foo.cc` puts its loops in `foo_isa.inc`, inside `namespace <its namespace>::
// ILLADA_ISA_NS`, includes that once per level with foreach_isa.inc, and gives each public
// function the body ILLADA_DISPATCH(fn, args...) in `<its namespace>`. Only those namespaces
// (avx2, avx512) may hold instructions beyond x86-64: tests/cli/portable_binary.sh checks it.
#pragma once

#include "util/isa.h"

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
// GCC compiles a function under `#pragma GCC target` with the wider instructions, including
// the functions it outlines for OpenMP regions. (Clang does not apply its equivalent to
// outlined OpenMP regions, so a Clang build keeps the baseline copy only.)
#define ILLADA_MULTI_ISA 1
#else
#define ILLADA_MULTI_ISA 0
#endif

// Target strings of the two wide copies (also used by kernels/cpu/avx512_math.h).
#define ILLADA_TARGET_AVX2 "avx2,fma,f16c"
#define ILLADA_TARGET_AVX512 "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512dq"

namespace illada {

// 0 scalar, 1 avx2, 2 avx512: the copy a dispatched function runs now.
inline int isa_copy() {
#if ILLADA_MULTI_ISA
  const Isa level = isa_level();
  return level >= Isa::kAvx512 ? 2 : level >= Isa::kAvx2 ? 1 : 0;
#else
  return 0;
#endif
}

}  // namespace illada

// The body of a public function: calls (and returns) fn(args...) of the copy isa_copy() names,
// looked up in the enclosing namespace's scalar/avx2/avx512 namespaces.
#if ILLADA_MULTI_ISA
#define ILLADA_DISPATCH(fn, ...)                       \
  switch (::illada::isa_copy()) {                      \
    case 2: return avx512::fn(__VA_ARGS__);            \
    case 1: return avx2::fn(__VA_ARGS__);              \
    default: return scalar::fn(__VA_ARGS__);           \
  }
#else
#define ILLADA_DISPATCH(fn, ...) return scalar::fn(__VA_ARGS__);
#endif

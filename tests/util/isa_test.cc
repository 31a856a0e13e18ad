// Instruction-set detection and the level cap (ILLADA_ISA, set_isa_cap).
#include <gtest/gtest.h>

#include "util/check.h"
#include "util/isa.h"

namespace illada {
namespace {

TEST(Isa, NamesRoundTripAndBadNamesAreErrors) {
  for (Isa i : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512, Isa::kAvx512Bf16, Isa::kAmx}) {
    EXPECT_EQ(parse_isa(isa_name(i)), i);
  }
  EXPECT_THROW(parse_isa("avx1024"), Error);
}

TEST(Isa, LevelsFollowTheFeatures) {
  const CpuFeatures& f = cpu_features();
  const Isa s = isa_supported();
  if (s >= Isa::kAvx2) EXPECT_TRUE(f.avx2 && f.fma);
  if (s >= Isa::kAvx512) EXPECT_TRUE(f.avx512f && f.avx512bw && f.avx512vl);
  if (s >= Isa::kAvx512Bf16) EXPECT_TRUE(f.avx512_bf16);
  if (s >= Isa::kAmx) EXPECT_TRUE(f.amx_int8 && f.amx_bf16);
  // Compiled-in facts that the detection must not contradict on the build machine.
  EXPECT_EQ(__builtin_cpu_supports("avx2") != 0, f.avx2);
  EXPECT_EQ(__builtin_cpu_supports("avx512f") != 0, f.avx512f);
}

TEST(Isa, CapLowersTheLevelAndNeverRaisesIt) {
  const Isa before = set_isa_cap(Isa::kAvx2);
  EXPECT_LE(isa_level(), Isa::kAvx2);
  set_isa_cap(Isa::kScalar);
  EXPECT_EQ(isa_level(), Isa::kScalar);
  set_isa_cap(Isa::kAmx);
  EXPECT_EQ(isa_level(), isa_supported());
  set_isa_cap(before);
}

}  // namespace
}  // namespace illada

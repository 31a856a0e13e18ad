// bfloat16 storage type: conversions with round-to-nearest-even, as PyTorch does.
#pragma once

#include <cstdint>
#include <cstring>

namespace illada {

struct bf16 {
  uint16_t bits;
};
static_assert(sizeof(bf16) == 2);

// Always inlined, so that every instruction-set copy of a loop (util/isa_dispatch.h)
// vectorises the conversions itself.
[[gnu::always_inline]] inline float to_float(bf16 v) {
  uint32_t u = static_cast<uint32_t>(v.bits) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
// The identity, so that code templated on the element type (fp32 or bf16) reads to_float(x).
[[gnu::always_inline]] inline float to_float(float f) { return f; }

[[gnu::always_inline]] inline bf16 to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return bf16{static_cast<uint16_t>((u >> 16) | 0x40)};  // NaN stays NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return bf16{static_cast<uint16_t>(u >> 16)};
}

// IEEE half precision (safetensors F16) to float.
float half_to_float(uint16_t h);
uint16_t float_to_half(float f);

void to_float(float* out, const bf16* in, long n);
void to_bf16(bf16* out, const float* in, long n);

}  // namespace illada

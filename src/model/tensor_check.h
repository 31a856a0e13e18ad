// Full scans of weights for NaN/Inf (`--check-tensors`, as llama.cpp's): on request only,
// since reading every byte would defeat the memory-mapped loading of an 8B checkpoint. At run
// time the forward pass checks the logits it writes instead (cheap; see Model::forward).
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace illada {

class TensorStore;

// Scans every floating-point tensor of `store` (F32, BF16, F16, F64); throws Error naming
// `source`, the tensor, the element index and whether it is NaN or Inf.
void check_tensors_finite(const TensorStore& store, const std::string& source);

// The first non-finite value of a float buffer (index), or -1. Compares exponent bits with
// integer operations (vectorised), so it costs a small fraction of the product that wrote it.
int64_t first_non_finite(std::span<const float> values);

}  // namespace illada

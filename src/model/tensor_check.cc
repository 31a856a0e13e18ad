// NaN/Inf scans of checkpoints and logits (see tensor_check.h).
#include "model/tensor_check.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "io/safetensors.h"
#include "util/check.h"

namespace illada {
namespace {

// Index of the first element whose exponent bits are all ones (NaN or Inf), or -1.
template <class Bits>
int64_t first_all_ones(const std::byte* data, int64_t n, Bits exp_mask) {
  int64_t first = -1;
  constexpr int64_t kChunk = int64_t{1} << 16;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (n > (int64_t{1} << 20))
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t b = c * kChunk, e = std::min(n, b + kChunk);
    Bits bad = 0;  // an integer, not a bool: GCC vectorises this reduction only then
    for (int64_t i = b; i < e; ++i) {
      Bits v;
      std::memcpy(&v, data + i * sizeof(Bits), sizeof(Bits));
      bad |= static_cast<Bits>((v & exp_mask) == exp_mask);
    }
    if (!bad) continue;
    for (int64_t i = b; i < e; ++i) {
      Bits v;
      std::memcpy(&v, data + i * sizeof(Bits), sizeof(Bits));
      if ((v & exp_mask) == exp_mask) {
#pragma omp critical(illada_first_non_finite)
        if (first < 0 || i < first) first = i;
        break;
      }
    }
  }
  return first;
}

}  // namespace

int64_t first_non_finite(std::span<const float> values) {
  return first_all_ones<uint32_t>(reinterpret_cast<const std::byte*>(values.data()),
                                  static_cast<int64_t>(values.size()), 0x7f800000u);
}

void check_tensors_finite(const TensorStore& store, const std::string& source) {
  for (const std::string& name : store.names()) {
    const TensorInfo* t = store.find(name);
    const std::span<const std::byte> bytes = store.bytes(name);
    const int64_t n = t->numel();
    int64_t bad = -1;
    double value = 0;
    switch (t->dtype) {
      case DType::F32:
        bad = first_all_ones<uint32_t>(bytes.data(), n, 0x7f800000u);
        if (bad >= 0) {
          float f;
          std::memcpy(&f, bytes.data() + bad * 4, 4);
          value = f;
        }
        break;
      case DType::BF16:
      case DType::F16: {
        const uint16_t mask = t->dtype == DType::BF16 ? 0x7f80 : 0x7c00;
        const uint16_t mant = t->dtype == DType::BF16 ? 0x007f : 0x03ff;
        bad = first_all_ones<uint16_t>(bytes.data(), n, mask);
        if (bad >= 0) {
          uint16_t v;
          std::memcpy(&v, bytes.data() + bad * 2, 2);
          value = (v & mant) ? NAN : ((v & 0x8000) ? -INFINITY : INFINITY);
        }
        break;
      }
      case DType::F64:
        bad = first_all_ones<uint64_t>(bytes.data(), n, 0x7ff0000000000000ull);
        if (bad >= 0) std::memcpy(&value, bytes.data() + bad * 8, 8);
        break;
      default:
        break;  // integer tensors cannot hold NaN
    }
    if (bad >= 0) {
      fail(source, ": tensor '", name, "' holds ", std::isnan(value) ? "NaN" : (value > 0 ? "+Inf" : "-Inf"),
           " at element ", bad, " (of ", n, "); the checkpoint is corrupt or its training diverged");
    }
  }
}

}  // namespace illada

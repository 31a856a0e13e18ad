// libFuzzer target for the safetensors header parser: any bytes must either parse or throw
// illada::Error. A crash, sanitizer report or any other exception is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <span>

#include "io/safetensors.h"
#include "util/check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  try {
    const illada::SafetensorsHeader h = illada::parse_safetensors_header(bytes, size, "fuzz");
    // What the parser accepts, readers will trust: check the promises here.
    uint64_t pos = 0;
    for (const illada::TensorInfo& t : h.tensors) {
      if (t.begin != pos || t.end < t.begin || h.data_start + t.end > size ||
          t.end - t.begin != static_cast<uint64_t>(t.numel()) * illada::dtype_size(t.dtype)) {
        std::fprintf(stderr, "accepted an inconsistent tensor '%s'\n", t.name.c_str());
        __builtin_trap();
      }
      pos = t.end;
    }
  } catch (const illada::Error&) {
    // Expected for malformed input.
  } catch (const std::exception& e) {
    std::fprintf(stderr, "unexpected exception: %s\n", e.what());
    __builtin_trap();
  }
  return 0;
}

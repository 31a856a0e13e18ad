// libFuzzer target for the GGUF parser: any bytes must either parse or throw illada::Error. A
// crash, sanitizer report, oversized allocation or any other exception is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <span>

#include "io/gguf.h"
#include "util/check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  try {
    const illada::GgufHeader h = illada::parse_gguf(bytes, "fuzz");
    // What the parser accepts, readers will trust: check the promises here.
    for (const illada::GgufTensorInfo& t : h.tensors) {
      const auto& tr = illada::ggml_traits(t.type);
      const int64_t row = t.ne.empty() ? 1 : t.ne[0];
      if (t.offset % h.alignment != 0 || h.data_offset + t.offset + t.nbytes > size ||
          row % tr.block_size != 0 ||
          t.nbytes != static_cast<uint64_t>(t.numel()) / tr.block_size * tr.type_size) {
        std::fprintf(stderr, "accepted an inconsistent tensor '%s'\n", t.name.c_str());
        __builtin_trap();
      }
    }
    for (const auto& [key, value] : h.kv) {
      if (key.empty() || value.type == illada::GgufType::ARRAY) __builtin_trap();
      (void)value.describe();
    }
  } catch (const illada::Error&) {
    // Expected for malformed input.
  } catch (const std::exception& e) {
    std::fprintf(stderr, "unexpected exception: %s\n", e.what());
    __builtin_trap();
  }
  return 0;
}

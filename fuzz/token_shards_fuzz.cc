// libFuzzer target: token shard parsing (parse_token_shard, an untrusted file).
// Each input is parsed as given, and once more with the header's checksum field
// set to the true checksum of the payload, so that mutations get past the
// checksum to the size, token-range and prompt-bit checks. illada::Error is the
// expected way to reject input; any crash, sanitizer report or other exception
// is a bug. A shard that parses must round-trip through its fields.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include "io/token_shards.h"
#include "util/check.h"

namespace {

uint64_t fnv1a(const std::byte *p, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; ++i) {
    h ^= std::to_integer<uint8_t>(p[i]);
    h *= 0x100000001b3ull;
  }
  return h;
}

void parse(std::span<const std::byte> bytes) {
  try {
    const illada::TokenShard s = illada::parse_token_shard(bytes, "fuzz.tok");
    const size_t n = s.tokens.size();
    if (!s.prompt.empty() && s.prompt.size() != n)
      std::abort();
    if (illada::kTokenShardHeaderBytes + 4 * n +
            (s.prompt.empty() ? 0 : (n + 7) / 8) !=
        bytes.size())
      std::abort();
    for (uint32_t t : s.tokens) {
      if (t >= s.vocab_size)
        std::abort();
    }
    for (uint8_t b : s.prompt) {
      if (b > 1)
        std::abort();
    }
  } catch (const illada::Error &) {
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const auto *in = reinterpret_cast<const std::byte *>(data);
  parse({in, size});
  if (size >= illada::kTokenShardHeaderBytes) {
    std::vector<std::byte> fixed(in, in + size);
    const uint64_t sum = fnv1a(fixed.data() + illada::kTokenShardHeaderBytes,
                               size - illada::kTokenShardHeaderBytes);
    std::memcpy(fixed.data() + 24, &sum, 8);
    parse(fixed);
  }
  return 0;
}

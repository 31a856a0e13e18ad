// Token shard reading and writing (see token_shards.h).
#include "io/token_shards.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>

#include "util/check.h"
#include "util/file.h"

namespace illada {
namespace {

uint64_t fnv1a(uint64_t h, const void* data, size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}
constexpr uint64_t kFnvBasis = 0xcbf29ce484222325ull;

template <class T>
void put(std::vector<std::byte>& out, size_t at, T v) {
  std::memcpy(out.data() + at, &v, sizeof(T));
}
template <class T>
T get(std::span<const std::byte> in, size_t at) {
  T v;
  std::memcpy(&v, in.data() + at, sizeof(T));
  return v;
}

}  // namespace

void write_token_shard(const std::string& path, std::span<const uint32_t> tokens,
                       std::span<const uint8_t> prompt, uint32_t vocab_size) {
  const uint64_t n = tokens.size();
  if (!prompt.empty() && prompt.size() != n) {
    fail(path, ": ", prompt.size(), " prompt flags for ", n, " tokens");
  }
  for (uint64_t i = 0; i < n; ++i) {
    if (tokens[i] >= vocab_size) fail(path, ": token ", tokens[i], " at ", i, " >= vocab size ", vocab_size);
  }
  const uint64_t bits = prompt.empty() ? 0 : (n + 7) / 8;
  std::vector<std::byte> buf(kTokenShardHeaderBytes + 4 * n + bits);
  std::memcpy(buf.data(), kTokenShardMagic, 8);
  put<uint32_t>(buf, 8, kTokenShardVersion);
  put<uint32_t>(buf, 12, prompt.empty() ? 0u : 1u);
  put<uint64_t>(buf, 16, n);
  put<uint32_t>(buf, 32, vocab_size);
  put<uint32_t>(buf, 36, 0);
  if (n) std::memcpy(buf.data() + kTokenShardHeaderBytes, tokens.data(), 4 * n);
  std::byte* pb = buf.data() + kTokenShardHeaderBytes + 4 * n;
  for (uint64_t i = 0; i < prompt.size(); ++i) {
    if (prompt[i]) pb[i / 8] |= std::byte(1u << (i % 8));
  }
  const uint64_t sum = fnv1a(kFnvBasis, buf.data() + kTokenShardHeaderBytes, buf.size() - kTokenShardHeaderBytes);
  put<uint64_t>(buf, 24, sum);

  write_file_atomic(path, {std::span<const std::byte>(buf)});
}

TokenShard parse_token_shard(std::span<const std::byte> in, const std::string& src) {
  if (in.size() < kTokenShardHeaderBytes) {
    fail(src, ": not a token shard: ", in.size(), " bytes, shorter than the ",
         kTokenShardHeaderBytes, "-byte header");
  }
  if (std::memcmp(in.data(), kTokenShardMagic, 8) != 0) fail(src, ": not a token shard (bad magic)");
  const uint32_t version = get<uint32_t>(in, 8);
  if (version != kTokenShardVersion) {
    fail(src, ": token shard version ", version, " is not supported (expected ", kTokenShardVersion, ")");
  }
  const uint32_t flags = get<uint32_t>(in, 12);
  if (flags > 1) fail(src, ": unknown token shard flags ", flags);
  const uint64_t n = get<uint64_t>(in, 16);
  const uint64_t payload = in.size() - kTokenShardHeaderBytes;
  if (n > payload / 4) fail(src, ": truncated: header says ", n, " tokens, file holds ", payload / 4);
  const uint64_t bits = (flags & 1) ? (n + 7) / 8 : 0;
  if (payload != 4 * n + bits) {
    fail(src, ": truncated or padded: expected ", kTokenShardHeaderBytes + 4 * n + bits,
         " bytes for ", n, " tokens, file has ", in.size());
  }
  const uint64_t sum = fnv1a(kFnvBasis, in.data() + kTokenShardHeaderBytes, payload);
  if (sum != get<uint64_t>(in, 24)) fail(src, ": checksum mismatch (the file is corrupt)");
  TokenShard s;
  s.vocab_size = get<uint32_t>(in, 32);
  s.tokens.resize(n);
  if (n) std::memcpy(s.tokens.data(), in.data() + kTokenShardHeaderBytes, 4 * n);
  for (uint64_t i = 0; i < n; ++i) {
    if (s.tokens[i] >= s.vocab_size) {
      fail(src, ": token ", s.tokens[i], " at position ", i, " >= vocab size ", s.vocab_size);
    }
  }
  if (flags & 1) {
    s.prompt.resize(n);
    const std::byte* pb = in.data() + kTokenShardHeaderBytes + 4 * n;
    for (uint64_t i = 0; i < n; ++i) s.prompt[i] = static_cast<uint8_t>((std::to_integer<unsigned>(pb[i / 8]) >> (i % 8)) & 1u);
  }
  return s;
}

TokenShard read_token_shard(const std::string& path) {
  check_readable(path, {.max_bytes = UINT64_MAX, .what = "token shard"});
  std::ifstream f(path, std::ios::binary);
  if (!f) fail(path, ": cannot read the token shard (no such file or no permission)");
  f.seekg(0, std::ios::end);
  const std::streamoff size = f.tellg();
  f.seekg(0);
  std::vector<std::byte> buf(static_cast<size_t>(size));
  if (size > 0 && !f.read(reinterpret_cast<char*>(buf.data()), size)) fail(path, ": read failed");
  return parse_token_shard(buf, path);
}

}  // namespace illada

// Token shard files: the on-disk form of a tokenized training stream. One shard is a
// 40-byte little-endian header, the tokens as uint32, then (optionally) one bit per token
// flagging prompt tokens (SFT data, for LLaDA's prompt-clean ablation). Documents are
// separated by EOS inside the stream; shards are pieces of one stream cut anywhere.
//
//   offset size field
//   0      8    magic "ILLTOKS\0"
//   8      4    version (kTokenShardVersion)
//   12     4    flags (bit 0: prompt bits follow the tokens)
//   16     8    n_tokens
//   24     8    FNV-1a 64 checksum of everything after the header
//   32     4    vocab_size (every token id is < vocab_size)
//   36     4    reserved (0)
//   40     4*n  tokens (uint32)
//   ...    (n+7)/8  prompt bits, bit i%8 of byte i/8 (only with flag bit 0)
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace illada {

inline constexpr char kTokenShardMagic[8] = {'I', 'L', 'L', 'T', 'O', 'K', 'S', '\0'};
inline constexpr uint32_t kTokenShardVersion = 1;
inline constexpr uint64_t kTokenShardHeaderBytes = 40;

struct TokenShard {
  std::vector<uint32_t> tokens;  // [n_tokens]
  std::vector<uint8_t> prompt;   // [n_tokens] 0/1, or empty when the shard has no prompt bits
  uint32_t vocab_size = 0;
};

// Writes the shard atomically (temporary file in the same folder, fsync, rename). prompt is
// empty or one flag per token. Throws illada::Error if a token is >= vocab_size or the file
// cannot be written.
void write_token_shard(const std::string& path, std::span<const uint32_t> tokens,
                       std::span<const uint8_t> prompt, uint32_t vocab_size);

// Reads and fully validates a shard (magic, version, flags, size, checksum, token range).
// Throws illada::Error naming the file and what is wrong.
TokenShard read_token_shard(const std::string& path);

// Validates a shard held in memory (`source` names it in errors); used by read_token_shard
// and the fuzz target.
TokenShard parse_token_shard(std::span<const std::byte> bytes, const std::string& source);

}  // namespace illada

// Token shard files: round trip, atomic writes, and clear errors for every kind of damage.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "io/token_shards.h"
#include "util/check.h"

namespace illada {
namespace {

std::string tmp_path(const char* name) {
  return (std::filesystem::temp_directory_path() / (std::string("illada_shard_") + name)).string();
}

std::string error_of(const std::string& path) {
  try {
    read_token_shard(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(TokenShards, RoundTripWithAndWithoutPromptBits) {
  const std::string p = tmp_path("rt.tok");
  const std::vector<uint32_t> toks = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  write_token_shard(p, toks, {}, 10);
  TokenShard s = read_token_shard(p);
  EXPECT_EQ(s.tokens, toks);
  EXPECT_TRUE(s.prompt.empty());
  EXPECT_EQ(s.vocab_size, 10u);
  const std::vector<uint8_t> prompt = {1, 1, 0, 0, 1, 0, 0, 0, 1};
  write_token_shard(p, toks, prompt, 10);
  s = read_token_shard(p);
  EXPECT_EQ(s.tokens, toks);
  EXPECT_EQ(s.prompt, prompt);
  EXPECT_EQ(std::filesystem::file_size(p), kTokenShardHeaderBytes + 4 * 9 + 2);
  std::filesystem::remove(p);
}

TEST(TokenShards, DamageIsReportedWithTheFileName) {
  const std::string p = tmp_path("bad.tok");
  EXPECT_NE(error_of(p + ".missing").find("cannot read"), std::string::npos);
  write_token_shard(p, std::vector<uint32_t>{1, 2, 3, 4}, {}, 5);
  std::string bytes;
  {
    std::ifstream f(p, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(f), {});
  }
  auto write = [&](const std::string& b) { std::ofstream(p, std::ios::binary) << b; };
  std::string b = bytes;
  b[0] = 'X';
  write(b);
  EXPECT_NE(error_of(p).find("bad magic"), std::string::npos);
  EXPECT_NE(error_of(p).find(p), std::string::npos);
  b = bytes;
  b[8] = 7;
  write(b);
  EXPECT_NE(error_of(p).find("version 7 is not supported"), std::string::npos);
  write(bytes.substr(0, bytes.size() - 3));
  EXPECT_NE(error_of(p).find("truncated"), std::string::npos);
  write(bytes.substr(0, 10));
  EXPECT_NE(error_of(p).find("header"), std::string::npos);
  b = bytes;
  b[kTokenShardHeaderBytes + 1] ^= 1;
  write(b);
  EXPECT_NE(error_of(p).find("checksum"), std::string::npos);
  EXPECT_THROW(write_token_shard(p, std::vector<uint32_t>{1, 9}, {}, 5), Error);  // id >= vocab
  std::filesystem::remove(p);
}

}  // namespace
}  // namespace illada

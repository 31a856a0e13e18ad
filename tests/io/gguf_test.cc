// Tests of the GGUF reader and writer: round trips of every value type and of tensors at both
// alignments, the byte layout ggml expects, and that each kind of malformed or lying file is
// refused with an illada::Error naming the key or tensor at fault, without crashing or
// allocating what the file claims.
#include "io/gguf.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include "util/check.h"
#include "../test_util.h"

namespace illada {
namespace {

namespace fs = std::filesystem;

using test::error_of;

std::span<const std::byte> bytes_of(const std::string& s) {
  return {reinterpret_cast<const std::byte*>(s.data()), s.size()};
}

// Builds GGUF bytes field by field, so tests can write files that lie.
struct Raw {
  std::string s;
  template <class T>
  Raw& put(T v) {
    s.append(reinterpret_cast<const char*>(&v), sizeof(T));
    return *this;
  }
  Raw& str(const std::string& v) {
    put<uint64_t>(v.size());
    s += v;
    return *this;
  }
  Raw& header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    s += "GGUF";
    return put<uint32_t>(version).put<uint64_t>(n_tensors).put<uint64_t>(n_kv);
  }
  Raw& kv_u32(const std::string& k, uint32_t v) { return str(k).put<uint32_t>(4).put<uint32_t>(v); }
  Raw& tensor(const std::string& name, std::vector<int64_t> ne, uint32_t type, uint64_t offset) {
    str(name).put<uint32_t>(static_cast<uint32_t>(ne.size()));
    for (int64_t d : ne) put<int64_t>(d);
    return put<uint32_t>(type).put<uint64_t>(offset);
  }
  Raw& pad(size_t a = 32) {
    s.append((a - s.size() % a) % a, '\0');
    return *this;
  }
  Raw& data(size_t n, char c = '\x5a') {
    s.append(n, c);
    return *this;
  }
};

std::string parse_error(const Raw& r) {
  return error_of([&] { parse_gguf(bytes_of(r.s), "bad.gguf"); });
}

class GgufTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("illada_gguf_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  fs::path dir_;
};

std::vector<std::byte> pattern(size_t n, int seed) {
  std::vector<std::byte> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>((i * 31 + seed * 7) & 0xff);
  return v;
}

TEST_F(GgufTest, RoundTripsEveryValueTypeAndTensorsInOrder) {
  GgufWriter w;
  w.set("general.architecture", GgufValue::str("llada"));
  w.set("a.u32", GgufValue::u32(4000000000u));
  w.set("a.i32", GgufValue::i32(-7));
  w.set("a.u64", GgufValue::u64(1ull << 40));
  w.set("a.f32", GgufValue::f32(1e-5f));
  w.set("a.f64", GgufValue::f64(0.1));
  w.set("a.bool", GgufValue::boolean(true));
  w.set("a.strs", GgufValue::str_array({"x", "", "\xe2\x96\x81y"}));
  w.set("a.i32s", GgufValue::i32_array({1, -2, 3}));
  w.set("a.f32s", GgufValue::f32_array({}));
  const auto t0 = pattern(4 * 3 * 5, 1), t1 = pattern(34 * 2, 2), t2 = pattern(2 * 7, 3);
  w.add_tensor("first", {5, 3}, GgmlType::F32, t0);
  w.add_tensor("quant", {64, 1}, GgmlType::Q8_0, t1);  // ggml writes [64, 1] as 1-d
  w.add_tensor("half", {7}, GgmlType::F16, t2);
  w.write(path("m.gguf"));

  auto f = GgufFile::open(path("m.gguf"));
  const GgufHeader& h = f->header();
  EXPECT_EQ(h.version, 3u);
  ASSERT_EQ(h.kv.size(), 10u);
  EXPECT_EQ(h.kv[0].first, "general.architecture");
  EXPECT_EQ(*h.find("general.architecture")->as_string(), "llada");
  EXPECT_EQ(*h.find("a.u32")->as_int(), 4000000000ll);
  EXPECT_EQ(*h.find("a.i32")->as_int(), -7);
  EXPECT_EQ(*h.find("a.u64")->as_int(), 1ll << 40);
  EXPECT_EQ(*h.find("a.f32")->as_number(), static_cast<double>(1e-5f));
  EXPECT_EQ(*h.find("a.f64")->as_number(), 0.1);
  EXPECT_EQ(*h.find("a.bool")->as_int(), 1);
  EXPECT_EQ(h.find("a.strs")->strings, (std::vector<std::string>{"x", "", "\xe2\x96\x81y"}));
  EXPECT_EQ(*h.find("a.i32s")->as_int(1), -2);
  EXPECT_EQ(h.find("a.f32s")->count(), 0u);
  EXPECT_TRUE(h.find("a.f32s")->array);
  EXPECT_EQ(h.find("a.u32")->type, GgufType::U32);

  ASSERT_EQ(h.tensors.size(), 3u);
  EXPECT_EQ(h.tensors[0].name, "first");
  EXPECT_EQ(h.tensors[0].ne, (std::vector<int64_t>{5, 3}));
  EXPECT_EQ(h.tensors[1].ne, (std::vector<int64_t>{64}));
  EXPECT_EQ(h.tensors[1].type, GgmlType::Q8_0);
  EXPECT_EQ(h.tensors[2].type, GgmlType::F16);
  EXPECT_EQ(h.data_offset % 32, 0u);
  EXPECT_EQ(h.tensors[1].offset, 64u);  // 60 bytes padded to 64
  EXPECT_EQ(h.tensors[2].offset, 160u);  // 64 + 68 bytes padded to 160
  auto same = [](std::span<const std::byte> a, const std::vector<std::byte>& b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), b.size()) == 0;
  };
  EXPECT_TRUE(same(f->bytes(h.tensors[0]), t0));
  EXPECT_TRUE(same(f->bytes(h.tensors[1]), t1));
  EXPECT_TRUE(same(f->bytes(h.tensors[2]), t2));
  // Every tensor, the last included, is padded: the file ends on an alignment boundary.
  EXPECT_EQ(fs::file_size(path("m.gguf")), h.data_offset + 192);
  EXPECT_TRUE(is_gguf_file(path("m.gguf")));
}

TEST_F(GgufTest, AlignmentComesFromGeneralAlignment) {
  GgufWriter w;
  w.set("general.alignment", GgufValue::u32(64));
  const auto a = pattern(8, 1), b = pattern(4, 2);
  w.add_tensor("a", {2}, GgmlType::F32, a);
  w.add_tensor("b", {1}, GgmlType::F32, b);
  w.write(path("m.gguf"));
  auto f = GgufFile::open(path("m.gguf"));
  EXPECT_EQ(f->header().alignment, 64u);
  EXPECT_EQ(f->header().data_offset % 64, 0u);
  EXPECT_EQ(f->header().tensors[1].offset, 64u);

  GgufWriter bad;
  bad.set("general.alignment", GgufValue::u32(48));
  EXPECT_CONTAINS(error_of([&] { bad.write(path("bad.gguf")); }), "general.alignment");
  EXPECT_FALSE(fs::exists(path("bad.gguf")));
}

TEST_F(GgufTest, SetReplacesAKeyAndMovesItToTheEndAsGgmlDoes) {
  GgufWriter w;
  w.set("a", GgufValue::u32(1));
  w.set("b", GgufValue::u32(2));
  w.set("a", GgufValue::u32(3));
  ASSERT_EQ(w.kv().size(), 2u);
  EXPECT_EQ(w.kv()[0].first, "b");
  EXPECT_EQ(w.kv()[1].first, "a");
  EXPECT_EQ(*w.kv()[1].second.as_int(), 3);
  EXPECT_TRUE(w.remove("b"));
  EXPECT_FALSE(w.remove("b"));
}

TEST_F(GgufTest, HeaderBytesFollowTheFormat) {
  GgufWriter w;
  w.set("k", GgufValue::u32(7));
  w.add_tensor("t", {32, 2}, GgmlType::Q4_0, pattern(36, 0));
  const std::vector<std::byte> h = w.header_bytes();
  Raw r;
  r.header(1, 1).kv_u32("k", 7).tensor("t", {32, 2}, 2, 0).pad();
  ASSERT_EQ(h.size(), r.s.size());
  EXPECT_EQ(std::memcmp(h.data(), r.s.data(), h.size()), 0);
}

TEST_F(GgufTest, WriterRefusesBadTensors) {
  GgufWriter w;
  w.add_tensor("a", {32}, GgmlType::Q8_0, pattern(34, 0));
  EXPECT_CONTAINS(error_of([&] { w.add_tensor("a", {32}, GgmlType::Q8_0, pattern(34, 0)); }),
                  "added twice");
  EXPECT_CONTAINS(error_of([&] { w.add_tensor(std::string(64, 'n'), {1}, GgmlType::F32, pattern(4, 0)); }),
                  "1 to 63 bytes");
  EXPECT_CONTAINS(error_of([&] { w.add_tensor("b", {33}, GgmlType::Q8_0, pattern(34, 0)); }),
                  "not a multiple of its block size 32");
  w.add_tensor("c", {4}, GgmlType::F32, pattern(12, 0));  // 12 bytes for a 16-byte tensor
  EXPECT_CONTAINS(error_of([&] { w.write(path("m.gguf")); }), "needs 16 bytes but 12");
  EXPECT_FALSE(fs::exists(path("m.gguf")));
}

// A small valid file to cut and corrupt.
std::string valid_file() {
  Raw r;
  r.header(2, 2)
      .kv_u32("general.alignment", 32)
      .str("s")
      .put<uint32_t>(9)
      .put<uint32_t>(8)
      .put<uint64_t>(2)
      .str("ab")
      .str("c")
      .tensor("w", {32, 2}, 8, 0)
      .tensor("n", {3}, 0, 96)
      .pad()
      .data(68)
      .pad()
      .data(12)
      .pad();
  return r.s;
}

TEST(GgufParse, TheValidFileParses) {
  const std::string f = valid_file();
  const GgufHeader h = parse_gguf(bytes_of(f), "v.gguf");
  EXPECT_EQ(h.tensors.size(), 2u);
  EXPECT_EQ(h.find("s")->strings.size(), 2u);
  EXPECT_EQ(h.tensors[0].nbytes, 68u);
}

TEST(GgufParse, EveryTruncationIsAnErrorNeverACrash) {
  const std::string f = valid_file();
  for (size_t n = 0; n < f.size(); ++n) {
    const std::string cut = f.substr(0, n);
    bool threw = false;
    try {
      parse_gguf(bytes_of(cut), "cut.gguf");
    } catch (const Error& e) {
      threw = true;
      EXPECT_CONTAINS(std::string(e.what()), "cut.gguf");
    }
    // Only the trailing padding after the last tensor may go without the file being short.
    if (n < f.size() - 20) {
      EXPECT_TRUE(threw) << "prefix of " << n << " bytes parsed";
    }
  }
}

TEST(GgufParse, BadMagicAndVersions) {
  EXPECT_CONTAINS(parse_error(Raw{"GGML\x03"}), "not a GGUF file");
  Raw v1;
  v1.header(0, 0, 1);
  EXPECT_CONTAINS(parse_error(v1), "version 1 is obsolete");
  Raw v9;
  v9.header(0, 0, 9);
  EXPECT_CONTAINS(parse_error(v9), "unsupported GGUF version 9");
  Raw be;
  be.header(0, 0, 0x03000000u);
  EXPECT_CONTAINS(parse_error(be), "big-endian");
  Raw v2;
  v2.header(0, 0, 2);
  EXPECT_EQ(parse_gguf(bytes_of(v2.s), "v2").version, 2u);
}

TEST(GgufParse, HugeCountsAreRefusedBeforeAllocating) {
  Raw kv;
  kv.header(0, 1ull << 62);
  EXPECT_CONTAINS(parse_error(kv), "claims 4611686018427387904 key/value pairs");
  Raw tensors;
  tensors.header(uint64_t{1} << 40, 0);
  EXPECT_CONTAINS(parse_error(tensors), "claims 1099511627776 tensors");
  Raw arr;
  arr.header(0, 1).str("tokens").put<uint32_t>(9).put<uint32_t>(8).put<uint64_t>(1ull << 61);
  EXPECT_CONTAINS(parse_error(arr), "key 'tokens' claims 2305843009213693952 elements");
  Raw arr_u8;
  arr_u8.header(0, 1).str("bytes").put<uint32_t>(9).put<uint32_t>(0).put<uint64_t>(1000);
  EXPECT_CONTAINS(parse_error(arr_u8), "claims 1000 elements");
  Raw str;
  str.header(0, 1).str("k").put<uint32_t>(8).put<uint64_t>(1ull << 62);
  EXPECT_CONTAINS(parse_error(str), "key 'k' is 4611686018427387904 bytes long");
  Raw str2;
  str2.header(0, 1).str("k").put<uint32_t>(8).put<uint64_t>(100).data(10);
  EXPECT_CONTAINS(parse_error(str2), "truncated file: key 'k' needs 100 bytes");
  Raw key;
  key.header(0, 1).put<uint64_t>(1ull << 50).data(20);
  EXPECT_CONTAINS(parse_error(key), "key/value pair 0 (key) is 1125899906842624 bytes long");
}

TEST(GgufParse, BadValueTypesAndKeys) {
  Raw unknown;
  unknown.header(0, 1).str("k").put<uint32_t>(13).put<uint32_t>(0);
  EXPECT_CONTAINS(parse_error(unknown), "key 'k' has unknown value type 13");
  Raw nested;
  nested.header(0, 1).str("k").put<uint32_t>(9).put<uint32_t>(9).put<uint64_t>(0);
  EXPECT_CONTAINS(parse_error(nested), "array of arrays");
  Raw dup;
  dup.header(0, 2).kv_u32("k", 1).kv_u32("k", 2);
  EXPECT_CONTAINS(parse_error(dup), "key 'k' appears twice");
  Raw empty;
  empty.header(0, 1).kv_u32("", 1);
  EXPECT_CONTAINS(parse_error(empty), "empty key");
}

TEST(GgufParse, BadAlignment) {
  Raw not_pow2;
  not_pow2.header(0, 1).kv_u32("general.alignment", 24);
  EXPECT_CONTAINS(parse_error(not_pow2), "'general.alignment' = 24 is not a power of two");
  Raw zero;
  zero.header(0, 1).kv_u32("general.alignment", 0);
  EXPECT_CONTAINS(parse_error(zero), "not a power of two");
  Raw wrong_type;
  wrong_type.header(0, 1).str("general.alignment").put<uint32_t>(10).put<uint64_t>(32);
  EXPECT_CONTAINS(parse_error(wrong_type), "'general.alignment' must be a u32, got u64 32");
  Raw misaligned;
  misaligned.header(1, 0).tensor("w", {4}, 0, 16).pad().data(64);
  EXPECT_CONTAINS(parse_error(misaligned), "tensor 'w' starts at data offset 16, not a multiple of the alignment 32");
}

TEST(GgufParse, BadTensorInfos) {
  auto one = [](std::vector<int64_t> ne, uint32_t type, uint64_t offset = 0, size_t data = 64) {
    Raw r;
    r.header(1, 0).tensor("blk.0.attn_q.weight", std::move(ne), type, offset).pad().data(data);
    return parse_error(r);
  };
  EXPECT_CONTAINS(one({32}, 4), "tensor 'blk.0.attn_q.weight' has unknown ggml type 4");
  EXPECT_CONTAINS(one({32}, 99), "unknown ggml type 99");
  EXPECT_CONTAINS(one({33}, 8), "rows of 33 values, not a multiple of its block size 32");
  EXPECT_CONTAINS(one({-1}, 0), "negative dimension");
  EXPECT_CONTAINS(one({1ll << 40, 1ll << 40}, 0), "has too many elements");
  EXPECT_CONTAINS(one({1, 1, 1, 1, 1}, 0), "has 5 dimensions");
  EXPECT_CONTAINS(one({17}, 0), "reaches past the end of the file");  // 68 > 64 bytes
  EXPECT_CONTAINS(one({4}, 0, 1ull << 62), "reaches past the end of the file");
  Raw dup;
  dup.header(2, 0).tensor("w", {4}, 0, 0).tensor("w", {4}, 0, 32).pad().data(64);
  EXPECT_CONTAINS(parse_error(dup), "tensor 'w' appears twice");
  Raw overlap;
  overlap.header(2, 0).tensor("a", {16}, 0, 0).tensor("b", {4}, 0, 32).pad().data(96);
  EXPECT_CONTAINS(parse_error(overlap), "tensors 'a' [0, 64) and 'b' [32, 48) overlap");
  Raw long_name;
  long_name.header(1, 0).tensor(std::string(64, 'x'), {4}, 0, 0).pad().data(32);
  EXPECT_CONTAINS(parse_error(long_name), "longer than 63");
  Raw no_data;
  no_data.header(1, 0).tensor("w", {4}, 0, 0);
  EXPECT_CONTAINS(parse_error(no_data), "truncated file: the data section");
}

TEST_F(GgufTest, OpenNamesTheFile) {
  EXPECT_CONTAINS(error_of([&] { GgufFile::open(path("missing.gguf")); }), "missing.gguf");
  std::ofstream(path("empty.gguf")).close();
  EXPECT_CONTAINS(error_of([&] { GgufFile::open(path("empty.gguf")); }), "not a GGUF file");
  EXPECT_FALSE(is_gguf_file(path("empty.gguf")));
  EXPECT_FALSE(is_gguf_file(dir_.string()));
}

TEST(GgmlTypes, TraitsAndNames) {
  EXPECT_EQ(ggml_row_bytes(GgmlType::Q4_K, 4096), 16u * 144);
  EXPECT_EQ(ggml_row_bytes(GgmlType::Q6_K, 256), 210u);
  EXPECT_EQ(ggml_row_bytes(GgmlType::BF16, 3), 6u);
  EXPECT_EQ(ggml_type_from_name("Q4_k"), GgmlType::Q4_K);
  EXPECT_EQ(ggml_type_from_name("bf16"), GgmlType::BF16);
  EXPECT_FALSE(ggml_type_from_name("q4_k_m").has_value());
  EXPECT_EQ(ggml_type_traits(4), nullptr);
  EXPECT_EQ(ggml_type_traits(31), nullptr);
  EXPECT_EQ(ggml_type_traits(43), nullptr);
}

}  // namespace
}  // namespace illada

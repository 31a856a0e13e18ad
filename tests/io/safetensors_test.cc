// Tests of the safetensors reader/writer: round trips, dtype conversion, shards, and that every
// kind of malformed file is refused with an illada::Error naming the culprit.
#include "io/safetensors.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmath>
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

template <class T>
std::span<const std::byte> as_bytes_of(const std::vector<T>& v) {
  return std::as_bytes(std::span(v));
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_text(const fs::path& p, const std::string& s) {
  std::ofstream out(p, std::ios::binary);
  out << s;
  ASSERT_TRUE(out.good()) << p;
}

// A safetensors file from a literal header and `data_bytes` bytes of data.
std::string raw_file(const std::string& header, size_t data_bytes) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  return s + header + std::string(data_bytes, '\x11');
}

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::path(::testing::TempDir()) / "illada_st_XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Writes a raw file under the temp dir and returns the error that opening it throws.
  std::string open_error(const std::string& name, const std::string& contents) {
    write_text(dir_ / name, contents);
    return error_of([&] { SafetensorsFile::open((dir_ / name).string()); });
  }

  fs::path dir_;
};

TEST_F(SafetensorsTest, RoundTripAllDtypes) {
  const std::vector<float> f32 = {1.5f, -2.25f, 3.0e-5f, 65504.0f, -0.0f, 7.0f};
  const std::vector<double> f64 = {1.0 / 3.0, -1e300};
  const std::vector<uint16_t> bf = {0x3f80, 0xc000, 0x7f80};  // 1, -2, inf
  const std::vector<uint16_t> f16 = {0x3c00, 0x0001, 0xfbff, 0x7e00};
  const std::vector<int32_t> i32 = {1, -1, 1 << 30};
  const std::vector<uint8_t> u8 = {0, 255, 7};
  const std::vector<float> scalar = {42.0f};
  const std::vector<TensorToWrite> tensors = {
      {.name = "w.f32", .dtype = DType::F32, .shape = {2, 3}, .data = as_bytes_of(f32)},
      {.name = "w.u8",
       .dtype = DType::U8,
       .shape = {3},
       .data = as_bytes_of(u8)},  // misaligns the next
      {.name = "w.f64", .dtype = DType::F64, .shape = {2}, .data = as_bytes_of(f64)},
      {.name = "w.bf16", .dtype = DType::BF16, .shape = {3, 1}, .data = as_bytes_of(bf)},
      {.name = "w.f16", .dtype = DType::F16, .shape = {4}, .data = as_bytes_of(f16)},
      {.name = "w.i32", .dtype = DType::I32, .shape = {3}, .data = as_bytes_of(i32)},
      {.name = "scalar", .dtype = DType::F32, .shape = {}, .data = as_bytes_of(scalar)},
      {.name = "empty", .dtype = DType::BF16, .shape = {0, 5}, .data = {}},
  };
  const std::string path = (dir_ / "rt.safetensors").string();
  write_safetensors(path, tensors, {{"format", "pt"}, {"step", "12"}});

  // Nothing but the final file is left behind by the atomic write.
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 1);

  auto f = SafetensorsFile::open(path);
  EXPECT_EQ(f->header().data_start % 8, 0u);
  EXPECT_EQ(f->header().metadata,
            (std::map<std::string, std::string>{{"format", "pt"}, {"step", "12"}}));
  ASSERT_EQ(f->header().tensors.size(), tensors.size());
  // Header tensors come in data order, which is the order they were given to the writer.
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorInfo& t = f->header().tensors[i];
    EXPECT_EQ(t.name, tensors[i].name);
    EXPECT_EQ(t.dtype, tensors[i].dtype) << t.name;
    EXPECT_EQ(t.shape, tensors[i].shape) << t.name;
    EXPECT_EQ(f->find(t.name), &t);
    auto got = f->bytes(t);
    ASSERT_EQ(got.size(), tensors[i].data.size()) << t.name;
    EXPECT_EQ(std::memcmp(got.data(), tensors[i].data.data(), got.size()), 0) << t.name;
  }
  EXPECT_EQ(f->find("missing"), nullptr);
  EXPECT_EQ(f->find("scalar")->numel(), 1);
  EXPECT_EQ(f->find("empty")->numel(), 0);

  // Second write over the same path replaces it.
  write_safetensors(path, {tensors[0]});
  EXPECT_EQ(SafetensorsFile::open(path)->header().tensors.size(), 1u);
}

TEST_F(SafetensorsTest, ReadConvertsFloatDtypes) {
  const std::vector<float> f32 = {1.0f, 1.00390625f, -3.5f, 1.0e-3f};
  const std::vector<uint16_t> bf = {0x3f80, 0xc060, 0x0001,
                                    0xff80};  // 1, -3.5, tiny subnormal, -inf
  const std::vector<uint16_t> f16 = {0x3c00, 0xc000, 0x7bff, 0x0001,
                                     0x0400, 0x7c00, 0x8000, 0x3555};
  const std::vector<int32_t> i32 = {1, 2};
  const std::string path = (dir_ / "conv.safetensors").string();
  write_safetensors(path,
                    {{.name = "a", .dtype = DType::F32, .shape = {4}, .data = as_bytes_of(f32)},
                     {.name = "b", .dtype = DType::BF16, .shape = {2, 2}, .data = as_bytes_of(bf)},
                     {.name = "h", .dtype = DType::F16, .shape = {8}, .data = as_bytes_of(f16)},
                     {.name = "i", .dtype = DType::I32, .shape = {2}, .data = as_bytes_of(i32)}});
  const TensorStore s = TensorStore::open_file(path);
  EXPECT_EQ(s.names(), (std::vector<std::string>{"a", "b", "h", "i"}));
  EXPECT_EQ(s.file_of("b"), path);

  std::vector<float> out(4);
  s.read_f32("a", out);
  EXPECT_EQ(out, f32);
  s.read_f32("b", out);
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], -3.5f);
  EXPECT_EQ(out[2], std::ldexp(1.0f, -133));
  EXPECT_EQ(out[3], -INFINITY);

  std::vector<float> h(8);
  s.read_f32("h", h);
  EXPECT_EQ(h[0], 1.0f);
  EXPECT_EQ(h[1], -2.0f);
  EXPECT_EQ(h[2], 65504.0f);
  EXPECT_EQ(h[3], std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(h[4], std::ldexp(1.0f, -14));  // smallest normal
  EXPECT_EQ(h[5], INFINITY);
  EXPECT_TRUE(std::signbit(h[6]) && h[6] == 0.0f);
  EXPECT_FLOAT_EQ(h[7], 0.333251953125f);

  std::vector<bf16> b(4);
  s.read_bf16("a", b);
  EXPECT_EQ(b[0].bits, 0x3f80);
  EXPECT_EQ(b[1].bits, 0x3f80);  // 1 + 2^-8 is a tie: rounds to even, down to 1
  EXPECT_EQ(b[2].bits, 0xc060);
  EXPECT_EQ(b[3].bits, to_bf16(1.0e-3f).bits);
  s.read_bf16("b", b);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(b[i].bits, bf[i]);
  std::vector<bf16> hb(8);
  s.read_bf16("h", hb);
  EXPECT_EQ(hb[1].bits, 0xc000);
  EXPECT_EQ(hb[2].bits, to_bf16(65504.0f).bits);

  // Wrong destination size, integer dtype, unknown name: each names the tensor.
  std::vector<float> small(3);
  EXPECT_CONTAINS(error_of([&] { s.read_f32("a", small); }), "tensor 'a'");
  EXPECT_CONTAINS(error_of([&] { s.read_f32("a", small); }), "destination holds 3");
  EXPECT_CONTAINS(error_of([&] { s.read_f32("i", std::span<float>(out.data(), 2)); }),
                  "tensor 'i' is I32");
  std::vector<bf16> b2(2);
  EXPECT_CONTAINS(error_of([&] { s.read_bf16("i", b2); }), "'i'");
  EXPECT_CONTAINS(error_of([&] { s.read_f32("nope", out); }), "no tensor 'nope'");
  EXPECT_CONTAINS(error_of([&] { s.bytes("nope"); }), "'nope'");
  EXPECT_CONTAINS(error_of([&] { s.file_of("nope"); }), "'nope'");
  EXPECT_EQ(s.find("nope"), nullptr);
}

// The vectorised F16 path in the loader must agree with the reference half_to_float on every
// one of the 65536 bit patterns.
TEST_F(SafetensorsTest, F16ConversionMatchesReferenceOnAllValues) {
  std::vector<uint16_t> all(65536);
  for (int i = 0; i < 65536; ++i) all[i] = static_cast<uint16_t>(i);
  const std::string path = (dir_ / "f16.safetensors").string();
  write_safetensors(
      path, {{.name = "all", .dtype = DType::F16, .shape = {65536}, .data = as_bytes_of(all)}});
  std::vector<float> out(65536);
  TensorStore::open_file(path).read_f32("all", out);
  int mismatches = 0;
  for (int i = 0; i < 65536; ++i) {
    const float want = half_to_float(static_cast<uint16_t>(i));
    const bool same = std::isnan(want) ? std::isnan(out[i]) : (std::memcmp(&want, &out[i], 4) == 0);
    if (!same && ++mismatches < 10)
      ADD_FAILURE() << "half 0x" << std::hex << i << ": " << out[i] << " vs " << want;
  }
  EXPECT_EQ(mismatches, 0);
}

// Large enough for several conversion chunks, so the parallel path runs.
TEST_F(SafetensorsTest, LargeTensorConversion) {
  const int64_t n = (1 << 20) + 7;
  std::vector<uint16_t> bf(n);
  for (int64_t i = 0; i < n; ++i) bf[i] = to_bf16(static_cast<float>(i % 256) - 128.0f).bits;
  const std::string path = (dir_ / "big.safetensors").string();
  write_safetensors(path,
                    {{.name = "big", .dtype = DType::BF16, .shape = {n}, .data = as_bytes_of(bf)}});
  std::vector<float> out(n);
  TensorStore::open_file(path).read_f32("big", out);
  for (int64_t i = 0; i < n; ++i) {
    if (out[i] != static_cast<float>(i % 256) - 128.0f)
      FAIL() << "element " << i << " is " << out[i];
  }
}

// Resident pages of this process (/proc/self/statm, second field).
int64_t resident_pages() {
  std::ifstream f("/proc/self/statm");
  int64_t size = 0, resident = 0;
  f >> size >> resident;
  return resident;
}

// release() drops a mapped tensor's pages from the process (illada quantize reads each tensor
// once) and the data reads back the same afterwards.
TEST_F(SafetensorsTest, ReleaseDropsMappedPagesAndKeepsTheData) {
  const int64_t n = int64_t{8} << 20;  // 32 MB of f32
  std::vector<float> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = static_cast<float>(i % 1000);
  const std::string path = (dir_ / "big.safetensors").string();
  write_safetensors(path, {{.name = "big", .dtype = DType::F32, .shape = {n}, .data = as_bytes_of(v)}});
  v.clear();
  v.shrink_to_fit();
  const TensorStore store = TensorStore::open_file(path);
  std::vector<float> out(n);
  store.read_f32("big", out);  // faults the whole mapping in
  const int64_t page = ::sysconf(_SC_PAGESIZE);
  const int64_t before = resident_pages();
  store.release("big");
  const int64_t dropped = before - resident_pages();
  EXPECT_GE(dropped * page, n * 4 * 9 / 10) << "pages dropped: " << dropped;
  std::vector<float> again(n);
  store.read_f32("big", again);
  EXPECT_EQ(std::memcmp(out.data(), again.data(), n * 4), 0);
  EXPECT_EQ(again[12345], 345.0f);
  // A tensor added from memory is left alone.
  TensorStore mem("memory");
  std::vector<float> held(4096, 2.0f);
  mem.add({.name = "held", .dtype = DType::F32, .shape = {4096}}, std::as_bytes(std::span<const float>(held)), nullptr,
          "memory");
  mem.release("held");
  EXPECT_EQ(held[4095], 2.0f);
}

TEST_F(SafetensorsTest, ShardedWriteReadsBackIdentically) {
  std::vector<std::vector<float>> data;
  for (int k = 0; k < 5; ++k) data.push_back(std::vector<float>(k == 3 ? 100 : 10, 0.5f * k));
  std::vector<TensorToWrite> tensors;
  for (int k = 0; k < 5; ++k) {
    tensors.push_back({.name = "layer." + std::to_string(k),
                       .dtype = DType::F32,
                       .shape = {static_cast<int64_t>(data[k].size())},
                       .data = as_bytes_of(data[k])});
  }
  // 40-byte tensors into 100-byte shards: [0, 1] [2] [3 (400 bytes, alone)] [4].
  write_safetensors_sharded((dir_ / "m").string(), tensors, 100, {{"format", "pt"}});
  for (const char* name : {"model-00001-of-00004.safetensors", "model-00002-of-00004.safetensors",
                           "model-00003-of-00004.safetensors", "model-00004-of-00004.safetensors",
                           "model.safetensors.index.json"}) {
    EXPECT_TRUE(fs::exists(dir_ / "m" / name)) << name;
  }
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_ / "m"), fs::directory_iterator()), 5);
  const std::string index = read_text(dir_ / "m" / "model.safetensors.index.json");
  EXPECT_CONTAINS(index, "\"total_size\": 560");
  EXPECT_CONTAINS(index, "\"layer.3\": \"model-00003-of-00004.safetensors\"");

  const TensorStore s = TensorStore::open_dir((dir_ / "m").string());
  EXPECT_EQ(s.names(),
            (std::vector<std::string>{"layer.0", "layer.1", "layer.2", "layer.3", "layer.4"}));
  EXPECT_EQ(fs::path(s.file_of("layer.1")).filename(), "model-00001-of-00004.safetensors");
  EXPECT_EQ(fs::path(s.file_of("layer.2")).filename(), "model-00002-of-00004.safetensors");
  EXPECT_EQ(fs::path(s.file_of("layer.4")).filename(), "model-00004-of-00004.safetensors");
  for (const TensorToWrite& t : tensors) {
    auto got = s.bytes(t.name);
    ASSERT_EQ(got.size(), t.data.size()) << t.name;
    EXPECT_EQ(std::memcmp(got.data(), t.data.data(), got.size()), 0) << t.name;
    EXPECT_EQ(s.find(t.name)->shape, t.shape);
  }
  EXPECT_EQ(SafetensorsFile::open(s.file_of("layer.0"))->header().metadata.at("format"), "pt");
}

TEST_F(SafetensorsTest, OpenDirPrefersIndexOverSingleFile) {
  const std::vector<float> one = {1.0f}, two = {2.0f};
  write_safetensors(
      (dir_ / "model.safetensors").string(),
      {{.name = "single", .dtype = DType::F32, .shape = {1}, .data = as_bytes_of(one)}});
  EXPECT_EQ(TensorStore::open_dir(dir_.string()).names(), std::vector<std::string>{"single"});

  write_safetensors_sharded(
      dir_.string(),
      {{.name = "sharded", .dtype = DType::F32, .shape = {1}, .data = as_bytes_of(two)}}, 1 << 20);
  const TensorStore s = TensorStore::open_dir(dir_.string());
  EXPECT_EQ(s.names(), std::vector<std::string>{"sharded"});
  std::vector<float> v(1);
  s.read_f32("sharded", v);
  EXPECT_EQ(v[0], 2.0f);

  const std::string empty = (dir_ / "empty").string();
  fs::create_directory(empty);
  const std::string e = error_of([&] { TensorStore::open_dir(empty); });
  EXPECT_CONTAINS(e, empty);
  EXPECT_CONTAINS(e, "model.safetensors.index.json");
  EXPECT_CONTAINS(e, "neither");
  EXPECT_CONTAINS(error_of([&] { TensorStore::open_dir((dir_ / "no_such_dir").string()); }),
                  "no_such_dir");
}

TEST_F(SafetensorsTest, RejectsTruncatedAndGarbageFiles) {
  EXPECT_CONTAINS(open_error("short.safetensors", "abcde"), "short.safetensors");
  EXPECT_CONTAINS(open_error("short.safetensors", "abcde"), "5 bytes");
  EXPECT_CONTAINS(open_error("zero.safetensors", ""), "zero.safetensors");
  EXPECT_CONTAINS(error_of([&] { SafetensorsFile::open((dir_ / "absent.safetensors").string()); }),
                  "absent.safetensors");

  // Header length one byte more than the file holds.
  std::string f = raw_file("{}", 0);
  f[0] = 3;
  EXPECT_CONTAINS(open_error("long.safetensors", f), "long.safetensors: header length 3");
  std::string huge(8, '\xff');
  EXPECT_CONTAINS(open_error("huge.safetensors", huge + "{}"), "huge.safetensors: header length");

  EXPECT_CONTAINS(open_error("bad.safetensors", raw_file("{\"a\": ", 0)),
                  "bad.safetensors: header is not valid JSON");
  EXPECT_CONTAINS(open_error("arr.safetensors", raw_file("[1, 2]", 0)),
                  "arr.safetensors: header must be a JSON object");
  EXPECT_CONTAINS(open_error("str.safetensors", raw_file("\"x\"", 0)), "got string");
  // An empty header object is a valid, empty file; trailing spaces are legal padding.
  write_text(dir_ / "ok.safetensors", raw_file("{}    ", 0));
  EXPECT_TRUE(SafetensorsFile::open((dir_ / "ok.safetensors").string())->header().tensors.empty());
}

TEST_F(SafetensorsTest, RejectsBadTensorEntries) {
  auto entry = [](const std::string& name, const std::string& dtype, const std::string& shape,
                  const std::string& offs) {
    return "\"" + name + "\": {\"dtype\": \"" + dtype + "\", \"shape\": " + shape +
           ", \"data_offsets\": " + offs + "}";
  };
  auto err = [&](const std::string& header, size_t data) {
    return open_error("t.safetensors", raw_file(header, data));
  };

  // Sanity: the helper makes files that do open, so the failures below are the ones intended.
  write_text(dir_ / "good.safetensors",
             raw_file("{" + entry("w", "F32", "[2, 2]", "[0, 16]") + "}", 16));
  EXPECT_EQ(SafetensorsFile::open((dir_ / "good.safetensors").string())->header().tensors.size(),
            1u);

  std::string e =
      err("{" + entry("model.transformer.wte.weight", "F32", "[2, 2]", "[0, 12]") + "}", 12);
  EXPECT_CONTAINS(
      e,
      "t.safetensors: tensor 'model.transformer.wte.weight': data_offsets [0, 12] hold 12 bytes "
      "but F32 [2, 2] needs 16");

  e = err("{" + entry("w.unk", "F8_E4M3", "[2]", "[0, 2]") + "}", 2);
  EXPECT_CONTAINS(e, "'w.unk'");
  EXPECT_CONTAINS(e, "unknown dtype 'F8_E4M3'");

  e = err("{" + entry("w.neg", "F32", "[2, -1]", "[0, 8]") + "}", 8);
  EXPECT_CONTAINS(e, "'w.neg'");
  EXPECT_CONTAINS(e, "-1");
  EXPECT_CONTAINS(err("{" + entry("w.flt", "F32", "[2.0]", "[0, 8]") + "}", 8), "'w.flt'");
  EXPECT_CONTAINS(
      err("{" + entry("w.ovf", "F32", "[4294967296, 4294967296, 4]", "[0, 8]") + "}", 8),
      "'w.ovf': shape [4294967296, 4294967296, 4] has too many elements");

  e = err("{" + entry("w.out", "F32", "[4]", "[0, 16]") + "}", 8);
  EXPECT_CONTAINS(e, "'w.out'");
  EXPECT_CONTAINS(e, "beyond the data section of 8 bytes");
  EXPECT_CONTAINS(err("{" + entry("w.rev", "F32", "[0]", "[8, 0]") + "}", 8), "'w.rev'");
  EXPECT_CONTAINS(err("{" + entry("w.noff", "F32", "[1]", "[0]") + "}", 4), "'w.noff'");
  EXPECT_CONTAINS(err("{" + entry("w.negoff", "F32", "[1]", "[-4, 0]") + "}", 4), "'w.negoff'");
  EXPECT_CONTAINS(err("{\"w.obj\": 3}", 0), "tensor 'w.obj' must be a JSON object");
  EXPECT_CONTAINS(err("{\"w.nodt\": {\"shape\": [], \"data_offsets\": [0, 4]}}", 4),
                  "'w.nodt': 'dtype'");

  e = err("{" + entry("first", "F32", "[4]", "[0, 16]") + ", " +
              entry("second", "F32", "[2]", "[8, 16]") + "}",
          16);
  EXPECT_CONTAINS(e, "'first'");
  EXPECT_CONTAINS(e, "'second'");
  EXPECT_CONTAINS(e, "overlap");

  e = err("{" + entry("a", "F32", "[1]", "[0, 4]") + ", " +
              entry("gap_after", "F32", "[1]", "[8, 12]") + "}",
          12);
  EXPECT_CONTAINS(e, "'gap_after'");
  EXPECT_CONTAINS(e, "gap");
  EXPECT_CONTAINS(err("{" + entry("a", "F32", "[1]", "[0, 4]") + "}", 8), "trailing");
  EXPECT_CONTAINS(err("{" + entry("twice", "F32", "[1]", "[0, 4]") + ", " +
                          entry("twice", "F32", "[1]", "[4, 8]") + "}",
                      8),
                  "'twice' twice");

  // A huge name from a hostile header is shortened in the message, not copied whole.
  e = err("{" + entry(std::string(100000, 'n'), "XX", "[1]", "[0, 1]") + "}", 1);
  EXPECT_CONTAINS(e, "'nnnnnnnnnn");
  EXPECT_CONTAINS(e, "(100000 bytes)");
  EXPECT_LT(e.size(), 1000u);

  EXPECT_CONTAINS(err("{\"__metadata__\": {\"k\": 1}}", 0), "'__metadata__' value of 'k'");
  EXPECT_CONTAINS(err("{\"__metadata__\": [1]}", 0), "'__metadata__' must be a JSON object");
}

TEST_F(SafetensorsTest, ParseHeaderDirectlyChecksPrefixAndSize) {
  const std::string f = raw_file("{}", 0);
  auto bytes = std::as_bytes(std::span(f));
  EXPECT_TRUE(parse_safetensors_header(bytes, f.size(), "mem").tensors.empty());
  EXPECT_EQ(parse_safetensors_header(bytes, f.size(), "mem").data_start, 10u);
  // A prefix shorter than the header it announces is an error, not an out-of-bounds read.
  EXPECT_CONTAINS(error_of([&] { parse_safetensors_header(bytes.first(9), f.size(), "mem"); }),
                  "mem:");
  EXPECT_CONTAINS(error_of([&] { parse_safetensors_header(bytes.first(4), 4, "mem"); }), "mem:");
}

class ShardedErrorsTest : public SafetensorsTest {
 protected:
  void SetUp() override {
    SafetensorsTest::SetUp();
    write_safetensors((dir_ / "s1.safetensors").string(),
                      {{.name = "x", .dtype = DType::F32, .shape = {1}, .data = as_bytes_of(x_)},
                       {.name = "y", .dtype = DType::F32, .shape = {1}, .data = as_bytes_of(x_)}});
    write_safetensors((dir_ / "s2.safetensors").string(),
                      {{.name = "z", .dtype = DType::F32, .shape = {1}, .data = as_bytes_of(x_)}});
  }
  std::string open_with_index(const std::string& weight_map) {
    write_text(dir_ / "model.safetensors.index.json",
               "{\"metadata\": {}, \"weight_map\": " + weight_map + "}");
    return error_of([&] { TensorStore::open_dir(dir_.string()); });
  }
  std::vector<float> x_ = {1.0f};
};

TEST_F(ShardedErrorsTest, GoodIndexOpens) {
  write_text(
      dir_ / "model.safetensors.index.json",
      R"({"weight_map": {"x": "s1.safetensors", "y": "s1.safetensors", "z": "s2.safetensors"}})");
  const TensorStore s = TensorStore::open_dir(dir_.string());
  EXPECT_EQ(s.names(), (std::vector<std::string>{"x", "y", "z"}));
  EXPECT_EQ(fs::path(s.file_of("z")).filename(), "s2.safetensors");
}

TEST_F(ShardedErrorsTest, MissingShard) {
  const std::string e = open_with_index(R"({"x": "s1.safetensors", "q": "gone.safetensors"})");
  EXPECT_CONTAINS(e, "gone.safetensors");
  EXPECT_CONTAINS(e, "model.safetensors.index.json");
}

TEST_F(ShardedErrorsTest, TensorMissingFromItsShard) {
  const std::string e =
      open_with_index(R"({"x": "s1.safetensors", "z": "s1.safetensors", "y": "s1.safetensors"})");
  EXPECT_CONTAINS(e, "tensor 'z'");
  EXPECT_CONTAINS(e, "'s1.safetensors'");
  EXPECT_CONTAINS(open_with_index(R"({"absent": "s2.safetensors"})"), "tensor 'absent'");
}

TEST_F(ShardedErrorsTest, DuplicateTensorAcrossShards) {
  write_safetensors((dir_ / "s3.safetensors").string(),
                    {{.name = "y", .dtype = DType::F32, .shape = {1}, .data = as_bytes_of(x_)}});
  const std::string e = open_with_index(R"({"x": "s1.safetensors", "y": "s3.safetensors"})");
  EXPECT_CONTAINS(e, "tensor 'y'");
  EXPECT_CONTAINS(e, "s1.safetensors");
  EXPECT_CONTAINS(e, "s3.safetensors");
}

TEST_F(ShardedErrorsTest, MalformedIndex) {
  write_text(dir_ / "model.safetensors.index.json", "{not json");
  EXPECT_CONTAINS(error_of([&] { TensorStore::open_dir(dir_.string()); }),
                  "model.safetensors.index.json");
  EXPECT_CONTAINS(open_with_index("[]"), "'weight_map'");
  EXPECT_CONTAINS(open_with_index(R"({"x": 5})"), "'x'");
  EXPECT_CONTAINS(open_with_index(R"({"x": "../s1.safetensors"})"), "'../s1.safetensors'");
  EXPECT_CONTAINS(open_with_index(R"({"x": "/etc/passwd"})"), "'/etc/passwd'");
}

TEST_F(SafetensorsTest, WriterRejectsBadInputAndLeavesNoTempFile) {
  const std::vector<float> v = {1.0f, 2.0f};
  const std::string path = (dir_ / "w.safetensors").string();
  std::string e = error_of([&] {
    write_safetensors(
        path, {{.name = "short", .dtype = DType::F32, .shape = {3}, .data = as_bytes_of(v)}});
  });
  EXPECT_CONTAINS(e, "tensor 'short'");
  EXPECT_CONTAINS(e, "needs 12 bytes but 8");
  EXPECT_CONTAINS(error_of([&] {
                    write_safetensors(
                        path,
                        {{.name = "d", .dtype = DType::F32, .shape = {2}, .data = as_bytes_of(v)},
                         {.name = "d", .dtype = DType::F32, .shape = {2}, .data = as_bytes_of(v)}});
                  }),
                  "'d' is given twice");
  EXPECT_CONTAINS(
      error_of([&] {
        write_safetensors(
            path, {{.name = "n", .dtype = DType::F32, .shape = {-2}, .data = as_bytes_of(v)}});
      }),
      "'n'");
  const std::string nodir = (dir_ / "no" / "such" / "x.safetensors").string();
  EXPECT_CONTAINS(error_of([&] {
                    write_safetensors(
                        nodir,
                        {{.name = "a", .dtype = DType::F32, .shape = {2}, .data = as_bytes_of(v)}});
                  }),
                  nodir);
  EXPECT_FALSE(fs::exists(path));
  EXPECT_EQ(std::distance(fs::directory_iterator(dir_), fs::directory_iterator()), 0);
}

}  // namespace
}  // namespace illada

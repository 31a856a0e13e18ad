// GGUF files (llama.cpp's model format, version 3): a memory-mapped reader whose parser trusts
// nothing in the file (every count, length, type, offset, size and the alignment is checked
// before it is used; fuzzed) and an atomic writer.
//
// Layout (all little-endian): "GGUF", u32 version, u64 n_tensors, u64 n_kv; n_kv key/value
// pairs (string key, u32 type, value; an array is u32 element type, u64 count, elements);
// n_tensors tensor infos (string name, u32 n_dims, n_dims x i64 ne, u32 ggml type, u64
// offset); padding to `general.alignment` (default 32); the data section, where each tensor
// starts at its offset, a multiple of the alignment. Strings are a u64 length and bytes.
// ne[0] is the innermost dimension (the length of a row), so a PyTorch [rows, cols] matrix is
// ne = {cols, rows}.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "io/ggml_types.h"

namespace illada {

enum class GgufType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, U64 = 10, I64 = 11, F64 = 12,
};
std::string_view gguf_type_name(GgufType t);  // "u32", "str", ...

inline constexpr uint32_t kGgufVersion = 3;
inline constexpr uint32_t kGgufDefaultAlignment = 32;
inline constexpr size_t kGgufMaxNameBytes = 63;  // ggml's GGML_MAX_NAME minus the NUL

// One metadata value: a scalar or an array of one element type (never nested arrays).
struct GgufValue {
  GgufType type = GgufType::U8;       // element type, never ARRAY
  bool array = false;
  std::vector<uint8_t> data;          // numeric and bool elements, little-endian, count*size
  std::vector<std::string> strings;   // STRING elements

  uint64_t count() const;  // 1 for a scalar

  static GgufValue u32(uint32_t v);
  static GgufValue i32(int32_t v);
  static GgufValue u64(uint64_t v);
  static GgufValue f32(float v);
  static GgufValue f64(double v);
  static GgufValue boolean(bool v);
  static GgufValue str(std::string v);
  static GgufValue str_array(std::vector<std::string> v);
  static GgufValue i32_array(const std::vector<int32_t>& v);
  static GgufValue f32_array(const std::vector<float>& v);

  // Element i as an integer (any integer type or bool), a number (integers and floats) or a
  // string; nullopt / nullptr when the value holds another type or has no element i.
  std::optional<int64_t> as_int(uint64_t i = 0) const;
  std::optional<double> as_number(uint64_t i = 0) const;
  const std::string* as_string(uint64_t i = 0) const;
  // "u32 7", "str \"llada\"", "array of 126464 str": for error messages.
  std::string describe() const;

  bool operator==(const GgufValue&) const = default;
};

struct GgufTensorInfo {
  std::string name;
  std::vector<int64_t> ne;  // ggml order: ne[0] is the row length
  GgmlType type = GgmlType::F32;
  uint64_t offset = 0;      // from the start of the data section
  uint64_t nbytes = 0;
  int64_t numel() const;
  int64_t rows() const;     // numel / ne[0] (1 for a 0-d tensor)
};

struct GgufHeader {
  uint32_t version = kGgufVersion;
  std::vector<std::pair<std::string, GgufValue>> kv;  // in file order
  std::vector<GgufTensorInfo> tensors;                // in file order
  uint32_t alignment = kGgufDefaultAlignment;
  uint64_t data_offset = 0;  // absolute file offset of the data section

  const GgufValue* find(std::string_view key) const;
  const GgufTensorInfo* find_tensor(std::string_view name) const;
};

// Parses and validates the header of the GGUF file whose bytes are `file` (the whole file:
// tensor extents are checked against its size). Throws illada::Error naming `source` and the
// key or tensor at fault: bad magic, unsupported version or byte order, counts larger than
// the file could hold, strings or arrays past the end, unknown value or tensor types, nested
// arrays, duplicate keys or tensor names, a bad general.alignment, shapes with negative or
// overflowing dimensions, rows that are not whole blocks, offsets that are unaligned,
// overlapping or outside the file. Allocates at most a small multiple of the file size.
GgufHeader parse_gguf(std::span<const std::byte> file, const std::string& source);

// A memory-mapped GGUF file.
class GgufFile {
 public:
  static std::shared_ptr<const GgufFile> open(const std::string& path);  // throws Error
  ~GgufFile();
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;

  const std::string& path() const { return path_; }
  const GgufHeader& header() const { return header_; }
  const GgufValue* find(std::string_view key) const { return header_.find(key); }
  const GgufTensorInfo* find_tensor(std::string_view name) const {
    return header_.find_tensor(name);
  }
  std::span<const std::byte> bytes(const GgufTensorInfo& t) const;

 private:
  GgufFile() = default;
  std::string path_;
  GgufHeader header_;
  const std::byte* map_ = nullptr;
  size_t map_size_ = 0;
};

// True when `path` is a regular file that starts with the GGUF magic.
bool is_gguf_file(const std::string& path);

// Builds a GGUF file in memory (metadata) and writes it atomically, tensor data streamed.
class GgufWriter {
 public:
  // Fills the tensor's bytes (exactly nbytes) when the file is written.
  using Fill = std::function<void(std::span<std::byte> out)>;

  // Adds or replaces a key; like ggml's gguf_set_*, a replaced key moves to the end.
  void set(const std::string& key, GgufValue value);
  bool remove(std::string_view key);
  const GgufValue* find(std::string_view key) const;
  const std::vector<std::pair<std::string, GgufValue>>& kv() const { return kv_; }

  // ne in ggml order. Throws Error for a duplicate or over-long name, a negative dimension,
  // or rows that are not whole blocks of `type`.
  void add_tensor(const std::string& name, std::vector<int64_t> ne, GgmlType type, Fill fill);
  void add_tensor(const std::string& name, std::vector<int64_t> ne, GgmlType type,
                  std::span<const std::byte> data);

  // Writes the file (temporary file + rename). Tensors are padded to the alignment that
  // general.alignment gives (a power-of-two u32) or 32. `progress(i, n, name)` is called
  // before tensor i of n is filled.
  using Progress = std::function<void(size_t i, size_t n, const GgufTensorInfo& t)>;
  void write(const std::string& path, const Progress& progress = {}) const;

  // The header bytes (up to and including the padding before the data section), for tests.
  std::vector<std::byte> header_bytes() const;

 private:
  struct Pending {
    GgufTensorInfo info;
    Fill fill;
  };
  uint32_t alignment(const std::string& where) const;
  std::vector<std::pair<std::string, GgufValue>> kv_;
  std::vector<Pending> tensors_;
};

}  // namespace illada

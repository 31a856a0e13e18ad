// safetensors checkpoints: memory-mapped reading (single file or sharded with
// model.safetensors.index.json) and atomic writing. Format: u64 little-endian header size N,
// N bytes of JSON {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}},
// then the raw little-endian tensor data; offsets are relative to the end of the header.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "io/ggml_types.h"
#include "util/bf16.h"

namespace illada {

enum class DType { F32, BF16, F16, F64, I64, I32, I16, I8, U8, BOOL };

std::string_view dtype_name(DType t);  // "F32", "BF16", ... as safetensors spells them
size_t dtype_size(DType t);

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // byte offset of the data, relative to the start of the data section
  uint64_t end = 0;    // one past the last byte
  // Set for a tensor in a ggml block format (a GGUF q8_0, q4_K, ...): `dtype` is then U8 over
  // the raw blocks, `shape` stays the logical [rows, cols] and numel() counts values.
  std::optional<GgmlType> block_type;
  int64_t numel() const;
};

struct SafetensorsHeader {
  std::vector<TensorInfo> tensors;  // in file order of data_offsets
  std::map<std::string, std::string> metadata;
  uint64_t data_start = 0;  // absolute file offset of the data section (8 + header size)
};

// Parses and validates the header of a safetensors file of `file_size` bytes whose first
// bytes are `prefix` (at least the 8-byte length and the JSON). Throws illada::Error naming
// `source` (usually the path) on anything malformed: truncated length, JSON that is not an
// object, unknown dtype, negative/overflowing shapes, offsets outside the file, overlapping
// or non-contiguous data, byte counts that do not match dtype * shape. Fuzzed.
SafetensorsHeader parse_safetensors_header(std::span<const std::byte> prefix, uint64_t file_size,
                                           const std::string& source);

// One memory-mapped safetensors file.
class SafetensorsFile {
 public:
  static std::unique_ptr<SafetensorsFile> open(const std::string& path);  // throws Error
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  const SafetensorsHeader& header() const { return header_; }
  const TensorInfo* find(std::string_view name) const;  // nullptr if absent
  std::span<const std::byte> bytes(const TensorInfo& t) const;

 private:
  SafetensorsFile() = default;
  std::string path_;
  SafetensorsHeader header_;
  const std::byte* map_ = nullptr;
  size_t map_size_ = 0;
};

// Named tensors a model is loaded from. Usually all tensors of a Hugging Face model
// directory: `model.safetensors`, or the shards listed by `model.safetensors.index.json`
// ("weight_map": name -> shard file); open_dir throws Error if neither exists, a shard is
// missing, a tensor appears twice, or the index names a tensor its shard lacks. Other sources
// (a GGUF file, see model/llada_gguf.h) add their tensors one by one.
class TensorStore {
 public:
  static TensorStore open_dir(const std::string& dir);
  static TensorStore open_file(const std::string& path);
  // A store with no tensors, filled with add(); `source` names it in messages.
  explicit TensorStore(std::string source = {}) : source_(std::move(source)) {}

  // Adds a tensor whose bytes live elsewhere: `data` must stay valid while `owner` lives
  // (the store keeps `owner`). `file` names where it came from. Throws Error on a duplicate
  // name or a size that does not match dtype (or block type) and shape.
  void add(TensorInfo info, std::span<const std::byte> data, std::shared_ptr<const void> owner,
           const std::string& file);

  // The raw blocks of a block-quantised tensor (GGUF q8_0, q4_K, ...): what the quantised
  // products read. Throws Error naming the tensor if it is absent or not block-quantised.
  struct Blocks {
    GgmlType type;
    int64_t rows = 0, cols = 0;
    std::span<const std::byte> bytes;  // rows * ggml_row_bytes(type, cols)
  };
  Blocks blocks(std::string_view name) const;

  const TensorInfo* find(std::string_view name) const;  // nullptr if absent
  std::vector<std::string> names() const;               // sorted
  const std::string& file_of(std::string_view name) const;
  std::span<const std::byte> bytes(std::string_view name) const;

  // Converts a tensor (F32, BF16 or F16) to the destination type. Throws Error naming the
  // tensor if its dtype is not a floating type (a block-quantised tensor is read with
  // blocks()) or `out.size()` differs from its numel.
  void read_f32(std::string_view name, std::span<float> out) const;
  void read_bf16(std::string_view name, std::span<bf16> out) const;

  // Drops the tensor's whole pages from this process's memory when they are a mapping of a
  // safetensors file (they stay in the page cache, and the next read faults them back in);
  // does nothing for tensors added from memory. For a caller that reads each tensor once and
  // should not hold the whole checkpoint resident (illada quantize).
  void release(std::string_view name) const;

 private:
  struct Entry {
    const TensorInfo* info = nullptr;
    std::shared_ptr<const TensorInfo> owned_info;  // for added tensors
    std::span<const std::byte> data;
    size_t origin = 0;     // index into origins_
    bool mapped = false;   // data is a read-only file mapping (open_file / open_dir)
  };
  // The entry of a tensor; throws Error naming it if absent.
  const Entry& entry(std::string_view name) const;

  std::string source_;  // the directory or file opened, for error messages
  std::vector<std::string> origins_;                 // file each entry came from
  std::vector<std::shared_ptr<const void>> owners_;  // keep the mapped files and buffers alive
  std::map<std::string, Entry, std::less<>> index_;
};

// A tensor to write: data is raw little-endian bytes of dtype * shape.
struct TensorToWrite {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::span<const std::byte> data;
};

// Writes one safetensors file atomically (temporary file in the same folder, fsync, rename),
// tensors in the given order, data aligned to 8 bytes via header padding with spaces.
void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// Writes tensors as shards of at most `max_shard_bytes` each named
// model-0000k-of-0000N.safetensors plus model.safetensors.index.json, in `dir`.
void write_safetensors_sharded(const std::string& dir, const std::vector<TensorToWrite>& tensors,
                               uint64_t max_shard_bytes,
                               const std::map<std::string, std::string>& metadata = {});

}  // namespace illada

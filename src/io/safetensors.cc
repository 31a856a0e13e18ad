// safetensors reading (mmap, strict header validation: the header is untrusted and fuzzed) and
// atomic writing of single files and Hugging Face style shards with an index.
#include "io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <utility>

#include "util/check.h"
#include "util/file.h"
#include "util/memory.h"

namespace illada {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

// Far above any real header (an 8B model's is ~30 KB) and small enough that a hostile length
// field cannot make us allocate gigabytes of JSON.
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

constexpr DType kAllDTypes[] = {DType::F32, DType::BF16, DType::F16, DType::F64, DType::I64,
                                DType::I32, DType::I16,  DType::I8,  DType::U8,  DType::BOOL};

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

// Element count of a shape, false if it overflows. Any zero dimension makes it 0, whatever
// the others are.
bool shape_numel(const std::vector<int64_t>& shape, uint64_t* numel) {
  *numel = 1;
  if (std::find(shape.begin(), shape.end(), 0) != shape.end()) {
    *numel = 0;
    return true;
  }
  for (int64_t d : shape) {
    if (d < 0 || __builtin_mul_overflow(*numel, static_cast<uint64_t>(d), numel)) return false;
  }
  return *numel <= static_cast<uint64_t>(INT64_MAX);
}

// Names from an untrusted header go into error messages; a megabyte-long one should not.
std::string clip(std::string_view s) {
  constexpr size_t kMax = 200;
  return s.size() <= kMax ? std::string(s)
                          : str_cat(s.substr(0, kMax), "...(", s.size(), " bytes)");
}

std::string errno_str() { return std::strerror(errno); }

bool parse_dtype(std::string_view s, DType* out) {
  for (DType t : kAllDTypes) {
    if (dtype_name(t) == s) {
      *out = t;
      return true;
    }
  }
  return false;
}

// Rejects duplicate top-level keys, which nlohmann would silently collapse to the last one and
// so hide a tensor. Depth 1 is the top-level object.
Json parse_header_json(const char* begin, const char* end, const std::string& source) {
  std::set<std::string> seen;
  std::string duplicate;
  auto callback = [&](int depth, Json::parse_event_t event, Json& parsed) {
    if (depth == 1 && event == Json::parse_event_t::key && duplicate.empty()) {
      const std::string& key = parsed.get_ref<const std::string&>();
      if (!seen.insert(key).second) duplicate = key;
    }
    return true;
  };
  Json j;
  try {
    j = Json::parse(begin, end, callback);
  } catch (const Json::exception& e) {
    fail(source, ": header is not valid JSON: ", e.what());
  }
  if (!duplicate.empty()) fail(source, ": header names '", clip(duplicate), "' twice");
  return j;
}

// Reads one non-negative JSON integer; `what` names it for the error.
uint64_t json_u64(const Json& v, const std::string& source, const std::string& what) {
  if (!v.is_number_unsigned()) {
    fail(source, ": ", what, " must be a non-negative integer, got ",
         v.is_number_integer() ? std::to_string(v.get<int64_t>()) : std::string(v.type_name()));
  }
  return v.get<uint64_t>();
}

TensorInfo parse_tensor_entry(const std::string& name, const Json& e, uint64_t data_size,
                              const std::string& source) {
  const std::string where = str_cat("tensor '", clip(name), "'");
  if (!e.is_object()) fail(source, ": ", where, " must be a JSON object, got ", e.type_name());
  TensorInfo t;
  t.name = name;

  auto it = e.find("dtype");
  if (it == e.end() || !it->is_string()) fail(source, ": ", where, ": 'dtype' must be a string");
  const std::string& dtype = it->get_ref<const std::string&>();
  if (!parse_dtype(dtype, &t.dtype)) {
    fail(source, ": ", where, ": unknown dtype '", clip(dtype),
         "' (expected F32, BF16, F16, F64, I64, I32, I16, I8, U8 or BOOL)");
  }

  it = e.find("shape");
  if (it == e.end() || !it->is_array()) fail(source, ": ", where, ": 'shape' must be an array");
  for (const Json& d : *it) {
    const uint64_t dim = json_u64(d, source, where + ": each dimension of 'shape'");
    if (dim > static_cast<uint64_t>(INT64_MAX)) {
      fail(source, ": ", where, ": shape dimension ", dim, " is too large");
    }
    t.shape.push_back(static_cast<int64_t>(dim));
  }
  uint64_t numel = 0, nbytes = 0;
  if (!shape_numel(t.shape, &numel) ||
      __builtin_mul_overflow(numel, dtype_size(t.dtype), &nbytes)) {
    fail(source, ": ", where, ": shape ", shape_str(t.shape), " has too many elements");
  }

  it = e.find("data_offsets");
  if (it == e.end() || !it->is_array() || it->size() != 2) {
    fail(source, ": ", where, ": 'data_offsets' must be an array [begin, end]");
  }
  t.begin = json_u64((*it)[0], source, where + ": data_offsets[0]");
  t.end = json_u64((*it)[1], source, where + ": data_offsets[1]");
  if (t.begin > t.end)
    fail(source, ": ", where, ": data_offsets [", t.begin, ", ", t.end, "] end before they begin");
  if (t.end > data_size) {
    fail(source, ": ", where, ": data_offsets [", t.begin, ", ", t.end,
         "] reach beyond the data section of ", data_size, " bytes");
  }
  if (t.end - t.begin != nbytes) {
    fail(source, ": ", where, ": data_offsets [", t.begin, ", ", t.end, "] hold ", t.end - t.begin,
         " bytes but ", dtype, " ", shape_str(t.shape), " needs ", nbytes);
  }
  return t;
}

// Branch-free F16 -> F32, so the conversion loops vectorise; bf16.cc's
// half_to_float is the readable reference and the test checks all 65536 inputs against it.
inline float half_bits_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t em = h & 0x7fffu;
  const uint32_t normal = (em << 13) + ((127u - 15u) << 23);
  const uint32_t inf_nan = (em << 13) | 0x7f800000u;
  const float sub_f = static_cast<float>(em) * 0x1p-24f;  // exact: em < 1024 when used
  uint32_t sub;
  std::memcpy(&sub, &sub_f, 4);
  // All-ones masks instead of ?: because GCC will not if-convert the nested select.
  const uint32_t is_sub = 0u - static_cast<uint32_t>(em < 0x400u);
  const uint32_t is_inf_nan = 0u - static_cast<uint32_t>(em >= 0x7c00u);
  const uint32_t r =
      (normal & ~(is_sub | is_inf_nan)) | (sub & is_sub) | (inf_nan & is_inf_nan) | sign;
  float f;
  std::memcpy(&f, &r, 4);
  return f;
}

inline uint16_t load_u16(const std::byte* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);  // the data section need not be 2-byte aligned in foreign files
  return v;
}

// Runs body(begin, end) over [0, n) in chunks, in parallel once there is more than one chunk:
// the loaders convert tensors of up to a gigabyte.
template <class Body>
void for_chunks(int64_t n, Body&& body) {
  constexpr int64_t kChunk = 1 << 18;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (chunks > 1)
  for (int64_t c = 0; c < chunks; ++c) body(c * kChunk, std::min(n, (c + 1) * kChunk));
}

void bf16_to_f32(float* __restrict out, const std::byte* __restrict in, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t u = static_cast<uint32_t>(load_u16(in + 2 * i)) << 16;
    std::memcpy(out + i, &u, 4);
  }
}

void f16_to_f32(float* __restrict out, const std::byte* __restrict in, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = half_bits_to_float(load_u16(in + 2 * i));
}

void f32_to_bf16(bf16* __restrict out, const std::byte* __restrict in, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    float f;
    std::memcpy(&f, in + 4 * i, 4);
    out[i] = to_bf16(f);
  }
}

void f16_to_bf16(bf16* __restrict out, const std::byte* __restrict in, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = to_bf16(half_bits_to_float(load_u16(in + 2 * i)));
}

// ---- writing ----

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() { return std::exchange(fd_, -1); }

 private:
  int fd_;
};

uint64_t checked_nbytes(const TensorToWrite& t, const std::string& path) {
  for (int64_t d : t.shape) {
    if (d < 0) fail(path, ": tensor '", t.name, "' has negative shape ", shape_str(t.shape));
  }
  uint64_t numel = 0, nbytes = 0;
  if (!shape_numel(t.shape, &numel) ||
      __builtin_mul_overflow(numel, dtype_size(t.dtype), &nbytes)) {
    fail(path, ": tensor '", t.name, "' shape ", shape_str(t.shape), " has too many elements");
  }
  return nbytes;
}

// Checks names and byte counts before anything touches the disk.
std::vector<uint64_t> validate_tensors(const std::vector<TensorToWrite>& tensors,
                                       const std::string& path) {
  std::set<std::string_view> names;
  std::vector<uint64_t> sizes;
  for (const TensorToWrite& t : tensors) {
    if (t.name == "__metadata__")
      fail(path, ": '__metadata__' is reserved and cannot name a tensor");
    if (!names.insert(t.name).second) fail(path, ": tensor '", t.name, "' is given twice");
    const uint64_t nbytes = checked_nbytes(t, path);
    if (t.data.size() != nbytes) {
      fail(path, ": tensor '", t.name, "': ", dtype_name(t.dtype), " ", shape_str(t.shape),
           " needs ", nbytes, " bytes but ", t.data.size(), " were given");
    }
    sizes.push_back(nbytes);
  }
  return sizes;
}

std::string dump_json(const nlohmann::ordered_json& j, const std::string& path, int indent = -1) {
  try {
    return j.dump(indent);
  } catch (const nlohmann::ordered_json::exception& e) {  // e.g. a name that is not UTF-8
    fail("cannot write ", path, ": ", e.what());
  }
}

}  // namespace

std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::F32:
      return "F32";
    case DType::BF16:
      return "BF16";
    case DType::F16:
      return "F16";
    case DType::F64:
      return "F64";
    case DType::I64:
      return "I64";
    case DType::I32:
      return "I32";
    case DType::I16:
      return "I16";
    case DType::I8:
      return "I8";
    case DType::U8:
      return "U8";
    case DType::BOOL:
      return "BOOL";
  }
  ILLADA_CHECK(false, "bad DType ", static_cast<int>(t));
}

size_t dtype_size(DType t) {
  switch (t) {
    case DType::F64:
    case DType::I64:
      return 8;
    case DType::F32:
    case DType::I32:
      return 4;
    case DType::BF16:
    case DType::F16:
    case DType::I16:
      return 2;
    case DType::I8:
    case DType::U8:
    case DType::BOOL:
      return 1;
  }
  ILLADA_CHECK(false, "bad DType ", static_cast<int>(t));
}

int64_t TensorInfo::numel() const {
  uint64_t n = 1;  // unsigned: a zero dimension after huge ones must not be signed overflow
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return static_cast<int64_t>(n);
}

SafetensorsHeader parse_safetensors_header(std::span<const std::byte> prefix, uint64_t file_size,
                                           const std::string& source) {
  if (file_size < 8 || prefix.size() < 8) {
    fail(source, ": file is ", std::min<uint64_t>(file_size, prefix.size()),
         " bytes, too short for the 8-byte header length of a safetensors file");
  }
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(prefix[i]);
  if (n > file_size - 8) {
    fail(source, ": header length ", n, " exceeds the ", file_size - 8,
         " bytes after the length field (truncated file, or not safetensors)");
  }
  if (n > kMaxHeaderBytes)
    fail(source, ": header length ", n, " exceeds the limit of ", kMaxHeaderBytes);
  if (prefix.size() - 8 < n) {
    fail(source, ": header length ", n, " but only ", prefix.size() - 8, " header bytes were read");
  }

  const char* json_begin = reinterpret_cast<const char*>(prefix.data() + 8);
  const Json j = parse_header_json(json_begin, json_begin + n, source);
  if (!j.is_object()) fail(source, ": header must be a JSON object, got ", j.type_name());

  SafetensorsHeader h;
  h.data_start = 8 + n;
  const uint64_t data_size = file_size - h.data_start;
  for (const auto& [key, value] : j.items()) {
    if (key == "__metadata__") {
      if (!value.is_object())
        fail(source, ": '__metadata__' must be a JSON object, got ", value.type_name());
      for (const auto& [mk, mv] : value.items()) {
        if (!mv.is_string())
          fail(source, ": '__metadata__' value of '", clip(mk), "' must be a string, got ",
               mv.type_name());
        h.metadata[mk] = mv.get<std::string>();
      }
      continue;
    }
    h.tensors.push_back(parse_tensor_entry(key, value, data_size, source));
  }

  // The data must tile the data section exactly, as the reference implementation demands:
  // overlaps would alias tensors, gaps or a tail would be bytes nobody accounts for.
  std::stable_sort(h.tensors.begin(), h.tensors.end(),
                   [](const TensorInfo& a, const TensorInfo& b) {
                     return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
                   });
  uint64_t pos = 0;
  for (size_t i = 0; i < h.tensors.size(); ++i) {
    const TensorInfo& t = h.tensors[i];
    if (t.begin < pos) {
      const TensorInfo& prev = h.tensors[i - 1];
      fail(source, ": tensors '", clip(prev.name), "' [", prev.begin, ", ", prev.end, "] and '",
           clip(t.name), "' [", t.begin, ", ", t.end, "] overlap");
    }
    if (t.begin > pos) {
      fail(source, ": tensor '", clip(t.name), "' starts at ", t.begin,
           " but the data before it ends at ", pos, " (gap in the data section)");
    }
    pos = t.end;
  }
  if (pos != data_size) {
    fail(source, ": tensors cover ", pos, " bytes of the ", data_size,
         "-byte data section (trailing bytes)");
  }
  return h;
}

// ---- SafetensorsFile ----

std::unique_ptr<SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  // Before open(): opening a FIFO would block until something writes to it.
  check_readable(path, {.max_bytes = UINT64_MAX, .what = "safetensors file"});
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) fail("cannot open ", path, ": ", errno_str());
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) fail("cannot stat ", path, ": ", errno_str());
  if (!S_ISREG(st.st_mode)) fail(path, ": not a regular file");
  const uint64_t size = static_cast<uint64_t>(st.st_size);

  std::unique_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->path_ = path;
  if (size > 0) {  // mmap rejects length 0; the parser reports the empty file
    void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd.get(), 0);
    if (p == MAP_FAILED) fail("cannot mmap ", path, ": ", errno_str());
    f->map_ = static_cast<const std::byte*>(p);
    f->map_size_ = size;
  }
  f->header_ = parse_safetensors_header({f->map_, f->map_size_}, size, path);
  return f;
}

SafetensorsFile::~SafetensorsFile() {
  if (map_) ::munmap(const_cast<std::byte*>(map_), map_size_);
}

const TensorInfo* SafetensorsFile::find(std::string_view name) const {
  for (const TensorInfo& t : header_.tensors) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

std::span<const std::byte> SafetensorsFile::bytes(const TensorInfo& t) const {
  ILLADA_CHECK(header_.data_start + t.end <= map_size_, path_, ": tensor '", t.name,
               "' is not from this file");
  return {map_ + header_.data_start + t.begin, t.end - t.begin};
}

// ---- TensorStore ----

TensorStore TensorStore::open_file(const std::string& path) {
  TensorStore s(path);
  std::shared_ptr<const SafetensorsFile> f = SafetensorsFile::open(path);
  s.origins_.push_back(path);
  s.owners_.push_back(f);
  for (const TensorInfo& t : f->header().tensors) s.index_.emplace(t.name, Entry{&t, nullptr, f->bytes(t), 0, true});
  return s;
}

TensorStore TensorStore::open_dir(const std::string& dir) {
  const fs::path index_path = fs::path(dir) / "model.safetensors.index.json";
  const fs::path single_path = fs::path(dir) / "model.safetensors";
  std::error_code ec;
  if (!fs::exists(index_path, ec)) {
    if (fs::exists(single_path, ec)) return open_file(single_path.string());
    fail("neither model.safetensors.index.json nor model.safetensors exists in ", dir,
         fs::is_directory(dir, ec) ? "" : " (which is not a directory)");
  }

  const std::string ipath = index_path.string();
  const std::string text = read_file(ipath, {.max_bytes = kConfigFileLimits.max_bytes, .what = "safetensors index"});
  Json index;
  try {
    index = Json::parse(text);
  } catch (const Json::exception& e) {
    fail(ipath, ": not valid JSON: ", e.what());
  }
  if (!index.is_object()) fail(ipath, ": must be a JSON object, got ", index.type_name());
  auto wm = index.find("weight_map");
  if (wm == index.end() || !wm->is_object())
    fail(ipath, ": 'weight_map' must be an object of tensor name -> shard file");

  TensorStore s(dir);
  std::vector<std::shared_ptr<const SafetensorsFile>> files;
  std::map<std::string, size_t> shard_ids;  // shard file name -> position in files
  for (const auto& [name, shard] : wm->items()) {
    if (!shard.is_string())
      fail(ipath, ": weight_map entry '", name, "' must be a file name string");
    const std::string& file = shard.get_ref<const std::string&>();
    // Shards live in the model folder; an index must not point elsewhere on the disk.
    const fs::path rel(file);
    if (file.empty() || rel.is_absolute() ||
        std::find(rel.begin(), rel.end(), fs::path("..")) != rel.end()) {
      fail(ipath, ": weight_map entry '", name, "' names shard '", file, "' outside ", dir);
    }
    if (shard_ids.count(file)) continue;
    const std::string shard_path = (fs::path(dir) / rel).string();
    try {
      files.push_back(SafetensorsFile::open(shard_path));
    } catch (const Error& e) {
      fail(ipath, ": shard '", file, "' (listed for tensor '", name, "'): ", e.what());
    }
    shard_ids.emplace(file, files.size() - 1);
  }
  for (size_t i = 0; i < files.size(); ++i) {
    s.origins_.push_back(files[i]->path());
    s.owners_.push_back(files[i]);
    for (const TensorInfo& t : files[i]->header().tensors) {
      auto [it, inserted] = s.index_.emplace(t.name, Entry{&t, nullptr, files[i]->bytes(t), i, true});
      if (!inserted) {
        fail(dir, ": tensor '", t.name, "' appears in two shards, ",
             s.origins_[it->second.origin], " and ", files[i]->path());
      }
    }
  }
  for (const auto& [name, shard] : wm->items()) {
    const std::string& file = shard.get_ref<const std::string&>();
    auto it = s.index_.find(name);
    if (it == s.index_.end() || it->second.origin != shard_ids.at(file)) {
      fail(ipath, ": tensor '", name, "' is listed in shard '", file,
           "' but that shard does not contain it");
    }
  }
  return s;
}

void TensorStore::add(TensorInfo info, std::span<const std::byte> data,
                      std::shared_ptr<const void> owner, const std::string& file) {
  if (index_.count(info.name)) fail(file, ": tensor '", info.name, "' is given twice");
  uint64_t numel = 0, nbytes = 0;
  if (!shape_numel(info.shape, &numel)) {
    fail(file, ": tensor '", info.name, "' shape ", shape_str(info.shape), " has too many elements");
  }
  if (info.block_type) {
    const GgmlTypeTraits& tr = ggml_traits(*info.block_type);
    const int64_t cols = info.shape.empty() ? 1 : info.shape.back();
    if (cols % tr.block_size != 0) {
      fail(file, ": tensor '", info.name, "' rows of ", cols, " values are not whole ", tr.name, " blocks");
    }
    nbytes = numel / tr.block_size * tr.type_size;
    info.dtype = DType::U8;
  } else {
    nbytes = numel * dtype_size(info.dtype);
  }
  if (data.size() != nbytes) {
    fail(file, ": tensor '", info.name, "' ", shape_str(info.shape), " needs ", nbytes, " bytes, got ",
         data.size());
  }
  info.begin = 0;
  info.end = nbytes;
  size_t origin = 0;
  while (origin < origins_.size() && origins_[origin] != file) ++origin;
  if (origin == origins_.size()) origins_.push_back(file);
  if (owner) owners_.push_back(std::move(owner));
  auto owned = std::make_shared<const TensorInfo>(std::move(info));
  const std::string name = owned->name;
  index_.emplace(name, Entry{owned.get(), owned, data, origin});
}

void TensorStore::release(std::string_view name) const {
  const Entry& e = entry(name);
  if (e.mapped) release_mapped_pages(e.data.data(), e.data.size());
}

TensorStore::Blocks TensorStore::blocks(std::string_view name) const {
  const Entry& e = entry(name);
  if (!e.info->block_type) {
    fail(origins_[e.origin], ": tensor '", name, "' is ", dtype_name(e.info->dtype),
         ", not block-quantised");
  }
  const int64_t cols = e.info->shape.empty() ? 1 : e.info->shape.back();
  return {*e.info->block_type, cols ? e.info->numel() / cols : 0, cols, e.data};
}

const TensorStore::Entry& TensorStore::entry(std::string_view name) const {
  auto it = index_.find(name);
  if (it == index_.end()) fail(source_, ": no tensor '", name, "'");
  return it->second;
}

const TensorInfo* TensorStore::find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : it->second.info;
}

std::vector<std::string> TensorStore::names() const {
  std::vector<std::string> out;
  out.reserve(index_.size());
  for (const auto& kv : index_) out.push_back(kv.first);
  return out;
}

const std::string& TensorStore::file_of(std::string_view name) const {
  return origins_[entry(name).origin];
}

std::span<const std::byte> TensorStore::bytes(std::string_view name) const {
  return entry(name).data;
}

namespace {

// Shared checks of read_f32/read_bf16: the tensor must be a float type of the right size.
void check_float_read(const TensorInfo& t, size_t out_size, const std::string& file,
                      const char* dest) {
  if (t.block_type) {
    fail(file, ": tensor '", t.name, "' is block-quantised (", ggml_type_name(*t.block_type),
         "), not readable as ", dest, " directly");
  }
  if (t.dtype != DType::F32 && t.dtype != DType::BF16 && t.dtype != DType::F16) {
    fail(file, ": tensor '", t.name, "' is ", dtype_name(t.dtype),
         ", expected F32, BF16 or F16 to read as ", dest);
  }
  if (static_cast<uint64_t>(t.numel()) != out_size) {
    fail(file, ": tensor '", t.name, "' ", dtype_name(t.dtype), " ", shape_str(t.shape), " has ",
         t.numel(), " elements but the destination holds ", out_size);
  }
}

}  // namespace

void TensorStore::read_f32(std::string_view name, std::span<float> out) const {
  const Entry& e = entry(name);
  const TensorInfo* info = e.info;
  check_float_read(*info, out.size(), origins_[e.origin], "F32");
  const std::byte* src = e.data.data();
  float* dst = out.data();
  const int64_t n = static_cast<int64_t>(out.size());
  switch (info->dtype) {
    case DType::F32:
      for_chunks(n, [&](int64_t b, int64_t e) { std::memcpy(dst + b, src + 4 * b, 4 * (e - b)); });
      break;
    case DType::BF16:
      for_chunks(n, [&](int64_t b, int64_t e) { bf16_to_f32(dst + b, src + 2 * b, e - b); });
      break;
    case DType::F16:
      for_chunks(n, [&](int64_t b, int64_t e) { f16_to_f32(dst + b, src + 2 * b, e - b); });
      break;
    default:
      ILLADA_CHECK(false, "unreachable");
  }
}

void TensorStore::read_bf16(std::string_view name, std::span<bf16> out) const {
  const Entry& e = entry(name);
  const TensorInfo* info = e.info;
  check_float_read(*info, out.size(), origins_[e.origin], "BF16");
  const std::byte* src = e.data.data();
  bf16* dst = out.data();
  const int64_t n = static_cast<int64_t>(out.size());
  switch (info->dtype) {
    case DType::F32:
      for_chunks(n, [&](int64_t b, int64_t e) { f32_to_bf16(dst + b, src + 4 * b, e - b); });
      break;
    case DType::BF16:
      for_chunks(n, [&](int64_t b, int64_t e) { std::memcpy(dst + b, src + 2 * b, 2 * (e - b)); });
      break;
    case DType::F16:
      for_chunks(n, [&](int64_t b, int64_t e) { f16_to_bf16(dst + b, src + 2 * b, e - b); });
      break;
    default:
      ILLADA_CHECK(false, "unreachable");
  }
}

// ---- writing ----

void write_safetensors(const std::string& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  const std::vector<uint64_t> sizes = validate_tensors(tensors, path);
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorToWrite& t = tensors[i];
    header[t.name] = {{"dtype", std::string(dtype_name(t.dtype))},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + sizes[i]}}};
    offset += sizes[i];
  }
  std::string text = dump_json(header, path);
  // Spaces are legal JSON whitespace; padding makes every tensor 8-byte aligned in the mmap
  // (our offsets are multiples of the element size only after an aligned data start).
  text.append((8 - text.size() % 8) % 8, ' ');
  std::byte len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<std::byte>((text.size() >> (8 * i)) & 0xff);

  std::vector<std::span<const std::byte>> pieces = {{len, 8}, std::as_bytes(std::span(text))};
  for (const TensorToWrite& t : tensors) pieces.push_back(t.data);
  write_file_atomic(path, pieces);
}

void write_safetensors_sharded(const std::string& dir, const std::vector<TensorToWrite>& tensors,
                               uint64_t max_shard_bytes,
                               const std::map<std::string, std::string>& metadata) {
  const std::string index_path = (fs::path(dir) / "model.safetensors.index.json").string();
  const std::vector<uint64_t> sizes = validate_tensors(tensors, index_path);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) fail("cannot create directory ", dir, ": ", ec.message());

  // Greedy in order: a shard closes when the next tensor would push it past the limit.
  std::vector<std::vector<size_t>> shards;
  uint64_t shard_bytes = 0, total = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (shards.empty() || (!shards.back().empty() && shard_bytes + sizes[i] > max_shard_bytes)) {
      shards.emplace_back();
      shard_bytes = 0;
    }
    shards.back().push_back(i);
    shard_bytes += sizes[i];
    total += sizes[i];
  }
  if (shards.empty()) shards.emplace_back();  // an empty model still gets a loadable shard

  std::map<std::string, std::string> weight_map;  // sorted by name, as transformers writes it
  for (size_t k = 0; k < shards.size(); ++k) {
    char name[64];
    std::snprintf(name, sizeof(name), "model-%05zu-of-%05zu.safetensors", k + 1, shards.size());
    std::vector<TensorToWrite> part;
    for (size_t i : shards[k]) {
      part.push_back(tensors[i]);
      weight_map[tensors[i].name] = name;
    }
    write_safetensors((fs::path(dir) / name).string(), part, metadata);
  }
  nlohmann::ordered_json index = {{"metadata", {{"total_size", total}}},
                                  {"weight_map", weight_map}};
  const std::string text = dump_json(index, index_path, 2) + "\n";
  write_file_atomic(index_path, text);
}

}  // namespace illada

// GGUF reading (mmap; a parser that bounds every read by the bytes left and every allocation by
// the file size, because the file is untrusted and fuzzed) and atomic writing.
#include "io/gguf.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <set>
#include <utility>

#include "util/check.h"
#include "util/file.h"

namespace illada {
namespace {

// Far above what real models use (LLaDA-8B: 126464 tokens, a tokenizer.json of ~10 MB) yet
// small enough that a lying count cannot make us allocate without bound.
constexpr uint64_t kMaxStringBytes = uint64_t{1} << 28;
constexpr uint64_t kMaxArrayElements = uint64_t{1} << 26;
constexpr uint64_t kMaxTensors = uint64_t{1} << 20;
constexpr uint32_t kMaxAlignment = uint32_t{1} << 30;
constexpr uint32_t kMaxDims = 4;  // ggml's GGML_MAX_DIMS

size_t scalar_size(GgufType t) {
  switch (t) {
    case GgufType::U8:
    case GgufType::I8:
    case GgufType::BOOL:
      return 1;
    case GgufType::U16:
    case GgufType::I16:
      return 2;
    case GgufType::U32:
    case GgufType::I32:
    case GgufType::F32:
      return 4;
    case GgufType::U64:
    case GgufType::I64:
    case GgufType::F64:
      return 8;
    case GgufType::STRING:
    case GgufType::ARRAY:
      return 0;
  }
  return 0;
}

bool valid_value_type(uint32_t t) { return t <= static_cast<uint32_t>(GgufType::F64); }

// Names from an untrusted file go into error messages; a megabyte-long one should not.
std::string clip(std::string_view s) {
  constexpr size_t kMax = 120;
  std::string out;
  for (char c : s.substr(0, kMax)) {
    const auto u = static_cast<unsigned char>(c);
    out += (u >= 0x20 && u < 0x7f) ? c : '?';
  }
  if (s.size() > kMax) out += str_cat("...(", s.size(), " bytes)");
  return out;
}

std::string errno_str() { return std::strerror(errno); }

std::string ne_str(const std::vector<int64_t>& ne) {
  std::string s = "[";
  for (size_t i = 0; i < ne.size(); ++i) s += (i ? ", " : "") + std::to_string(ne[i]);
  return s + "]";
}

// Sequential bounded reads over the file bytes.
class Cursor {
 public:
  Cursor(std::span<const std::byte> data, const std::string& source)
      : data_(data), source_(source) {}

  uint64_t pos() const { return pos_; }
  uint64_t left() const { return data_.size() - pos_; }

  // Throws unless n more bytes exist; `what` names the field for the message.
  void need(uint64_t n, const std::string& what) const {
    if (n > left()) {
      fail(source_, ": truncated file: ", what, " needs ", n, " bytes at offset ", pos_,
           " but only ", left(), " remain");
    }
  }
  template <class T>
  T read(const std::string& what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, data_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string read_string(const std::string& what, uint64_t max_bytes) {
    const uint64_t n = read<uint64_t>(what + " (length)");
    if (n > max_bytes) fail(source_, ": ", what, " is ", n, " bytes long, more than the limit of ", max_bytes);
    need(n, what);
    std::string s(reinterpret_cast<const char*>(data_.data() + pos_), static_cast<size_t>(n));
    pos_ += n;
    return s;
  }
  const std::byte* here() const { return data_.data() + pos_; }
  void skip(uint64_t n) { pos_ += n; }

 private:
  std::span<const std::byte> data_;
  const std::string& source_;
  uint64_t pos_ = 0;
};

GgufValue read_value(Cursor& c, uint32_t raw_type, const std::string& where,
                     const std::string& source) {
  if (!valid_value_type(raw_type)) {
    fail(source, ": ", where, " has unknown value type ", raw_type, " (GGUF defines 0-12)");
  }
  GgufValue v;
  v.type = static_cast<GgufType>(raw_type);
  uint64_t n = 1;
  if (v.type == GgufType::ARRAY) {
    const uint32_t elem = c.read<uint32_t>(where + " (array element type)");
    if (!valid_value_type(elem)) {
      fail(source, ": ", where, " is an array of unknown value type ", elem, " (GGUF defines 0-12)");
    }
    if (elem == static_cast<uint32_t>(GgufType::ARRAY)) {
      fail(source, ": ", where, " is an array of arrays, which GGUF readers do not support");
    }
    v.type = static_cast<GgufType>(elem);
    v.array = true;
    n = c.read<uint64_t>(where + " (array length)");
    // Every element takes at least its size (a string at least its 8-byte length) in the file.
    const uint64_t min_bytes = v.type == GgufType::STRING ? 8 : scalar_size(v.type);
    if (n > kMaxArrayElements || n > c.left() / min_bytes) {
      fail(source, ": ", where, " claims ", n, " elements, more than the ", c.left(),
           " bytes left in the file can hold", n > kMaxArrayElements ? " (or the limit of 2^26)" : "");
    }
  }
  if (v.type == GgufType::STRING) {
    v.strings.reserve(static_cast<size_t>(n));
    for (uint64_t i = 0; i < n; ++i) {
      v.strings.push_back(c.read_string(v.array ? str_cat(where, "[", i, "]") : where, kMaxStringBytes));
    }
    return v;
  }
  const uint64_t bytes = n * scalar_size(v.type);
  c.need(bytes, where);
  v.data.assign(reinterpret_cast<const uint8_t*>(c.here()), reinterpret_cast<const uint8_t*>(c.here()) + bytes);
  c.skip(bytes);
  if (v.type == GgufType::BOOL) {
    for (uint8_t& b : v.data) b = b != 0;  // as ggml reads them: any non-zero byte is true
  }
  return v;
}

template <class T>
GgufValue scalar_value(GgufType t, T x) {
  GgufValue v;
  v.type = t;
  v.data.resize(sizeof(T));
  std::memcpy(v.data.data(), &x, sizeof(T));
  return v;
}

template <class T>
GgufValue array_value(GgufType t, const std::vector<T>& xs) {
  GgufValue v;
  v.type = t;
  v.array = true;
  v.data.resize(xs.size() * sizeof(T));
  if (!xs.empty()) std::memcpy(v.data.data(), xs.data(), v.data.size());
  return v;
}

template <class T>
T element(const GgufValue& v, uint64_t i) {
  T x;
  std::memcpy(&x, v.data.data() + i * sizeof(T), sizeof(T));
  return x;
}

// Element count and byte size of a tensor, or an Error naming it.
void size_tensor(GgufTensorInfo& t, const std::string& source) {
  const GgmlTypeTraits& tr = ggml_traits(t.type);
  uint64_t numel = 1;
  bool zero = false;
  for (int64_t d : t.ne) {
    if (d < 0) fail(source, ": tensor '", clip(t.name), "' has a negative dimension in ", ne_str(t.ne));
    if (d == 0) zero = true;
  }
  if (!zero) {
    for (int64_t d : t.ne) {
      if (__builtin_mul_overflow(numel, static_cast<uint64_t>(d), &numel) ||
          numel > static_cast<uint64_t>(INT64_MAX)) {
        fail(source, ": tensor '", clip(t.name), "' shape ", ne_str(t.ne), " has too many elements");
      }
    }
  } else {
    numel = 0;
  }
  const int64_t row = t.ne.empty() ? 1 : t.ne[0];
  if (row % tr.block_size != 0) {
    fail(source, ": tensor '", clip(t.name), "' of type ", tr.name, " has rows of ", row,
         " values, not a multiple of its block size ", tr.block_size);
  }
  if (__builtin_mul_overflow(numel / tr.block_size, static_cast<uint64_t>(tr.type_size), &t.nbytes)) {
    fail(source, ": tensor '", clip(t.name), "' shape ", ne_str(t.ne), " is too large");
  }
}

uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

// ggml writes as many dimensions as the last one that is not 1 (at least one).
size_t written_dims(const std::vector<int64_t>& ne) {
  size_t n = ne.size();
  while (n > 1 && ne[n - 1] == 1) --n;
  return std::max<size_t>(n, 1);
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// Appends little-endian values to a byte vector (the header of a file being written).
struct Out {
  std::vector<std::byte> bytes;
  template <class T>
  void put(T v) {
    const auto* p = reinterpret_cast<const std::byte*>(&v);
    bytes.insert(bytes.end(), p, p + sizeof(T));
  }
  void put_string(std::string_view s) {
    put<uint64_t>(s.size());
    const auto* p = reinterpret_cast<const std::byte*>(s.data());
    bytes.insert(bytes.end(), p, p + s.size());
  }
  void put_value(const GgufValue& v) {
    if (v.array) {
      put<uint32_t>(static_cast<uint32_t>(GgufType::ARRAY));
      put<uint32_t>(static_cast<uint32_t>(v.type));
      put<uint64_t>(v.count());
    } else {
      put<uint32_t>(static_cast<uint32_t>(v.type));
    }
    if (v.type == GgufType::STRING) {
      for (const std::string& s : v.strings) put_string(s);
    } else {
      const auto* p = reinterpret_cast<const std::byte*>(v.data.data());
      bytes.insert(bytes.end(), p, p + v.data.size());
    }
  }
};

}  // namespace

std::string_view gguf_type_name(GgufType t) {
  static constexpr std::string_view kNames[] = {"u8",  "i8",  "u16",  "i16", "u32", "i32", "f32",
                                                "bool", "str", "arr", "u64", "i64", "f64"};
  const auto i = static_cast<uint32_t>(t);
  return i < std::size(kNames) ? kNames[i] : "?";
}

// ---- GgufValue ----

uint64_t GgufValue::count() const {
  if (type == GgufType::STRING) return strings.size();
  const size_t s = scalar_size(type);
  return s ? data.size() / s : 0;
}

GgufValue GgufValue::u32(uint32_t v) { return scalar_value(GgufType::U32, v); }
GgufValue GgufValue::i32(int32_t v) { return scalar_value(GgufType::I32, v); }
GgufValue GgufValue::u64(uint64_t v) { return scalar_value(GgufType::U64, v); }
GgufValue GgufValue::f32(float v) { return scalar_value(GgufType::F32, v); }
GgufValue GgufValue::f64(double v) { return scalar_value(GgufType::F64, v); }
GgufValue GgufValue::boolean(bool v) { return scalar_value(GgufType::BOOL, static_cast<uint8_t>(v)); }
GgufValue GgufValue::str(std::string v) {
  GgufValue g;
  g.type = GgufType::STRING;
  g.strings.push_back(std::move(v));
  return g;
}
GgufValue GgufValue::str_array(std::vector<std::string> v) {
  GgufValue g;
  g.type = GgufType::STRING;
  g.array = true;
  g.strings = std::move(v);
  return g;
}
GgufValue GgufValue::i32_array(const std::vector<int32_t>& v) { return array_value(GgufType::I32, v); }
GgufValue GgufValue::f32_array(const std::vector<float>& v) { return array_value(GgufType::F32, v); }

std::optional<int64_t> GgufValue::as_int(uint64_t i) const {
  if (i >= count()) return std::nullopt;
  switch (type) {
    case GgufType::U8: return element<uint8_t>(*this, i);
    case GgufType::I8: return element<int8_t>(*this, i);
    case GgufType::BOOL: return element<uint8_t>(*this, i);
    case GgufType::U16: return element<uint16_t>(*this, i);
    case GgufType::I16: return element<int16_t>(*this, i);
    case GgufType::U32: return element<uint32_t>(*this, i);
    case GgufType::I32: return element<int32_t>(*this, i);
    case GgufType::I64: return element<int64_t>(*this, i);
    case GgufType::U64: {
      const uint64_t u = element<uint64_t>(*this, i);
      if (u > static_cast<uint64_t>(INT64_MAX)) return std::nullopt;
      return static_cast<int64_t>(u);
    }
    default: return std::nullopt;
  }
}

std::optional<double> GgufValue::as_number(uint64_t i) const {
  if (i >= count()) return std::nullopt;
  if (type == GgufType::F32) return element<float>(*this, i);
  if (type == GgufType::F64) return element<double>(*this, i);
  if (type == GgufType::BOOL || type == GgufType::STRING) return std::nullopt;
  const auto n = as_int(i);
  if (!n) return std::nullopt;
  return static_cast<double>(*n);
}

const std::string* GgufValue::as_string(uint64_t i) const {
  if (type != GgufType::STRING || i >= strings.size()) return nullptr;
  return &strings[i];
}

std::string GgufValue::describe() const {
  if (array) return str_cat("array of ", count(), " ", gguf_type_name(type));
  if (type == GgufType::STRING) return str_cat("str \"", clip(strings.empty() ? "" : strings[0]), "\"");
  if (type == GgufType::BOOL) return str_cat("bool ", as_int() == 1 ? "true" : "false");
  if (type == GgufType::F32 || type == GgufType::F64) return str_cat(gguf_type_name(type), " ", *as_number());
  if (const auto n = as_int()) return str_cat(gguf_type_name(type), " ", *n);
  return str_cat(gguf_type_name(type), " ", element<uint64_t>(*this, 0));
}

int64_t GgufTensorInfo::numel() const {
  uint64_t n = 1;  // unsigned: a zero dimension after huge ones must not be signed overflow
  for (int64_t d : ne) n *= static_cast<uint64_t>(d);
  return static_cast<int64_t>(n);
}

int64_t GgufTensorInfo::rows() const { return ne.empty() || ne[0] == 0 ? 0 : numel() / ne[0]; }

const GgufValue* GgufHeader::find(std::string_view key) const {
  for (const auto& [k, v] : kv) {
    if (k == key) return &v;
  }
  return nullptr;
}

const GgufTensorInfo* GgufHeader::find_tensor(std::string_view name) const {
  for (const GgufTensorInfo& t : tensors) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

// ---- parsing ----

GgufHeader parse_gguf(std::span<const std::byte> file, const std::string& source) {
  Cursor c(file, source);
  if (file.size() < 4 || std::memcmp(file.data(), "GGUF", 4) != 0) {
    fail(source, ": not a GGUF file (the first 4 bytes are not \"GGUF\")");
  }
  c.skip(4);
  GgufHeader h;
  h.version = c.read<uint32_t>("the version");
  if ((h.version & 0xffffu) == 0 && h.version != 0) {
    fail(source, ": GGUF version field reads ", h.version,
         ": a big-endian file, which illada does not read");
  }
  if (h.version == 1) fail(source, ": GGUF version 1 is obsolete (expected version 2 or 3)");
  if (h.version < 2 || h.version > kGgufVersion) {
    fail(source, ": unsupported GGUF version ", h.version, " (expected 2 or 3)");
  }
  const uint64_t n_tensors = c.read<uint64_t>("the tensor count");
  const uint64_t n_kv = c.read<uint64_t>("the key/value count");
  // A key/value pair takes at least 8 (key length) + 1 (key) + 4 (type) + 1 bytes; a tensor
  // info 8 + 1 + 4 + 4 + 8: counts beyond that are lies, refused before allocating.
  if (n_kv > c.left() / 14) {
    fail(source, ": header claims ", n_kv, " key/value pairs, more than the ", c.left(),
         " bytes of the file can hold");
  }
  if (n_tensors > kMaxTensors || n_tensors > c.left() / 25) {
    fail(source, ": header claims ", n_tensors, " tensors, more than the ", c.left(),
         " bytes of the file can hold");
  }

  std::set<std::string, std::less<>> keys;
  h.kv.reserve(static_cast<size_t>(n_kv));
  for (uint64_t i = 0; i < n_kv; ++i) {
    const std::string where = str_cat("key/value pair ", i);
    std::string key = c.read_string(where + " (key)", 1 << 16);
    if (key.empty()) fail(source, ": ", where, " has an empty key");
    const std::string kwhere = str_cat("key '", clip(key), "'");
    if (!keys.insert(key).second) fail(source, ": ", kwhere, " appears twice");
    const uint32_t type = c.read<uint32_t>(kwhere + " (type)");
    GgufValue v = read_value(c, type, kwhere, source);
    h.kv.emplace_back(std::move(key), std::move(v));
  }

  if (const GgufValue* a = h.find("general.alignment")) {
    if (a->array || a->type != GgufType::U32) {
      fail(source, ": key 'general.alignment' must be a u32, got ", a->describe());
    }
    const uint32_t al = static_cast<uint32_t>(*a->as_int());
    if (al == 0 || (al & (al - 1)) != 0 || al > kMaxAlignment) {
      fail(source, ": key 'general.alignment' = ", al, " is not a power of two up to 2^30");
    }
    h.alignment = al;
  }

  std::set<std::string, std::less<>> names;
  h.tensors.reserve(static_cast<size_t>(n_tensors));
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensorInfo t;
    const std::string where = str_cat("tensor info ", i);
    t.name = c.read_string(where + " (name)", 1 << 16);
    if (t.name.empty()) fail(source, ": ", where, " has an empty name");
    if (t.name.size() > kGgufMaxNameBytes) {
      fail(source, ": tensor name '", clip(t.name), "' is ", t.name.size(), " bytes, longer than ",
           kGgufMaxNameBytes);
    }
    if (!names.insert(t.name).second) fail(source, ": tensor '", t.name, "' appears twice");
    const std::string twhere = str_cat("tensor '", t.name, "'");
    const uint32_t n_dims = c.read<uint32_t>(twhere + " (dimension count)");
    if (n_dims > kMaxDims) {
      fail(source, ": ", twhere, " has ", n_dims, " dimensions (GGUF allows at most ", kMaxDims, ")");
    }
    for (uint32_t d = 0; d < n_dims; ++d) t.ne.push_back(c.read<int64_t>(twhere + " (shape)"));
    const uint32_t type = c.read<uint32_t>(twhere + " (type)");
    const GgmlTypeTraits* tr = ggml_type_traits(type);
    if (!tr) fail(source, ": ", twhere, " has unknown ggml type ", type);
    t.type = tr->type;
    size_tensor(t, source);
    t.offset = c.read<uint64_t>(twhere + " (offset)");
    if (t.offset % h.alignment != 0) {
      fail(source, ": ", twhere, " starts at data offset ", t.offset,
           ", not a multiple of the alignment ", h.alignment);
    }
    h.tensors.push_back(std::move(t));
  }

  h.data_offset = align_up(c.pos(), h.alignment);
  if (h.tensors.empty()) return h;
  if (h.data_offset > file.size()) {
    fail(source, ": truncated file: the data section should start at byte ", h.data_offset,
         " but the file has ", file.size());
  }
  const uint64_t data_size = file.size() - h.data_offset;
  std::vector<const GgufTensorInfo*> by_offset;
  for (const GgufTensorInfo& t : h.tensors) {
    if (t.offset > data_size || t.nbytes > data_size - t.offset) {
      fail(source, ": tensor '", t.name, "' (", ggml_type_name(t.type), " ", ne_str(t.ne), ", ",
           t.nbytes, " bytes at data offset ", t.offset, ") reaches past the end of the file (",
           data_size, " data bytes): truncated file or a wrong offset");
    }
    by_offset.push_back(&t);
  }
  std::stable_sort(by_offset.begin(), by_offset.end(),
                   [](const GgufTensorInfo* a, const GgufTensorInfo* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const GgufTensorInfo& a = *by_offset[i - 1];
    const GgufTensorInfo& b = *by_offset[i];
    if (b.offset < a.offset + a.nbytes) {
      fail(source, ": tensors '", a.name, "' [", a.offset, ", ", a.offset + a.nbytes, ") and '",
           b.name, "' [", b.offset, ", ", b.offset + b.nbytes, ") overlap");
    }
  }
  return h;
}

// ---- GgufFile ----

std::shared_ptr<const GgufFile> GgufFile::open(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) fail("cannot open ", path, ": ", errno_str());
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) fail("cannot stat ", path, ": ", errno_str());
  if (!S_ISREG(st.st_mode)) fail(path, ": not a regular file");
  std::shared_ptr<GgufFile> f(new GgufFile());
  f->path_ = path;
  const auto size = static_cast<uint64_t>(st.st_size);
  if (size > 0) {
    void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd.get(), 0);
    if (p == MAP_FAILED) fail("cannot mmap ", path, ": ", errno_str());
    f->map_ = static_cast<const std::byte*>(p);
    f->map_size_ = size;
  }
  f->header_ = parse_gguf({f->map_, f->map_size_}, path);
  return f;
}

GgufFile::~GgufFile() {
  if (map_) ::munmap(const_cast<std::byte*>(map_), map_size_);
}

std::span<const std::byte> GgufFile::bytes(const GgufTensorInfo& t) const {
  ILLADA_CHECK(header_.data_offset + t.offset + t.nbytes <= map_size_, path_, ": tensor '",
               t.name, "' is not from this file");
  return {map_ + header_.data_offset + t.offset, t.nbytes};
}

bool is_gguf_file(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return false;
  struct stat st;
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) return false;
  char magic[4];
  return ::read(fd.get(), magic, 4) == 4 && std::memcmp(magic, "GGUF", 4) == 0;
}

// ---- GgufWriter ----

void GgufWriter::set(const std::string& key, GgufValue value) {
  ILLADA_CHECK(!key.empty(), "empty GGUF key");
  ILLADA_CHECK(value.type != GgufType::ARRAY, "nested GGUF array for ", key);
  remove(key);
  kv_.emplace_back(key, std::move(value));
}

bool GgufWriter::remove(std::string_view key) {
  for (auto it = kv_.begin(); it != kv_.end(); ++it) {
    if (it->first == key) {
      kv_.erase(it);
      return true;
    }
  }
  return false;
}

const GgufValue* GgufWriter::find(std::string_view key) const {
  for (const auto& [k, v] : kv_) {
    if (k == key) return &v;
  }
  return nullptr;
}

void GgufWriter::add_tensor(const std::string& name, std::vector<int64_t> ne, GgmlType type,
                            Fill fill) {
  if (name.empty() || name.size() > kGgufMaxNameBytes) {
    fail("GGUF tensor name '", clip(name), "' must be 1 to ", kGgufMaxNameBytes, " bytes");
  }
  if (ne.empty() || ne.size() > kMaxDims) {
    fail("GGUF tensor '", name, "' must have 1 to ", kMaxDims, " dimensions, got ", ne.size());
  }
  for (const Pending& p : tensors_) {
    if (p.info.name == name) fail("GGUF tensor '", name, "' is added twice");
  }
  GgufTensorInfo t;
  t.name = name;
  t.ne = std::move(ne);
  t.type = type;
  size_tensor(t, "GGUF writer");
  tensors_.push_back({std::move(t), std::move(fill)});
}

void GgufWriter::add_tensor(const std::string& name, std::vector<int64_t> ne, GgmlType type,
                            std::span<const std::byte> data) {
  add_tensor(name, std::move(ne), type, [data, name](std::span<std::byte> out) {
    if (out.size() != data.size()) {
      fail("GGUF tensor '", name, "' needs ", out.size(), " bytes but ", data.size(), " were given");
    }
    std::memcpy(out.data(), data.data(), data.size());
  });
}

uint32_t GgufWriter::alignment(const std::string& where) const {
  const GgufValue* a = find("general.alignment");
  if (!a) return kGgufDefaultAlignment;
  const auto v = a->as_int();
  if (a->array || a->type != GgufType::U32 || !v || *v == 0 || (*v & (*v - 1)) != 0 ||
      *v > kMaxAlignment) {
    fail(where, ": general.alignment must be a u32 power of two up to 2^30, got ", a->describe());
  }
  return static_cast<uint32_t>(*v);
}

std::vector<std::byte> GgufWriter::header_bytes() const {
  const uint32_t align = alignment("GGUF writer");
  Out o;
  o.bytes.insert(o.bytes.end(), {std::byte{'G'}, std::byte{'G'}, std::byte{'U'}, std::byte{'F'}});
  o.put<uint32_t>(kGgufVersion);
  o.put<uint64_t>(tensors_.size());
  o.put<uint64_t>(kv_.size());
  for (const auto& [k, v] : kv_) {
    o.put_string(k);
    o.put_value(v);
  }
  uint64_t offset = 0;
  for (const Pending& p : tensors_) {
    const GgufTensorInfo& t = p.info;
    o.put_string(t.name);
    const size_t dims = written_dims(t.ne);
    o.put<uint32_t>(static_cast<uint32_t>(dims));
    for (size_t d = 0; d < dims; ++d) o.put<int64_t>(t.ne[d]);
    o.put<uint32_t>(static_cast<uint32_t>(t.type));
    o.put<uint64_t>(offset);
    offset = align_up(offset + t.nbytes, align);
  }
  o.bytes.resize(align_up(o.bytes.size(), align), std::byte{0});
  return o.bytes;
}

void GgufWriter::write(const std::string& path, const Progress& progress) const {
  const uint32_t align = alignment(path);
  const std::vector<std::byte> header = header_bytes();
  OutputFile f(path);  // atomic over regular files; written through FIFOs and devices
  f.write(header);
  std::vector<std::byte> buf;
  const std::vector<std::byte> zeros(align, std::byte{0});
  for (size_t i = 0; i < tensors_.size(); ++i) {
    const Pending& p = tensors_[i];
    if (progress) progress(i, tensors_.size(), p.info);
    buf.assign(p.info.nbytes, std::byte{0});
    p.fill(buf);
    f.write(buf);
    f.write(std::span<const std::byte>(zeros.data(), align_up(p.info.nbytes, align) - p.info.nbytes));
  }
  f.commit();
}

}  // namespace illada

// Whole-file I/O shared by every writer of checkpoints, shards and configs: durable atomic
// writes (temporary file next to the target, fsync, rename, fsync of the directory), so a
// crash or a failed write leaves either the old file or the new one, never half of one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace illada {

// Writes the concatenation of `pieces` to `path` atomically. Throws Error naming the path;
// the temporary file is removed on failure.
void write_file_atomic(const std::string& path, const std::vector<std::span<const std::byte>>& pieces);
void write_file_atomic(const std::string& path, std::string_view data);

// A file written piece by piece and published atomically: the bytes go to a temporary file
// next to `path`; commit() fsyncs and renames it over `path`. Destroying an uncommitted
// AtomicFile removes the temporary file, so a failed writer leaves no half-written target.
// For outputs too large to hold in memory at once (a quantised model written tensor by tensor).
class AtomicFile {
 public:
  explicit AtomicFile(std::string path);  // throws Error naming the path
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(std::span<const std::byte> data);  // throws Error naming the path
  void write_zeros(size_t n);
  uint64_t size() const { return written_; }  // bytes written so far
  void commit();

 private:
  std::string path_, tmp_;
  int fd_ = -1;
  uint64_t written_ = 0;
};

// fsyncs a file or directory (ignored where the file system does not support it).
void fsync_path(const std::string& path);

// A whole file; throws Error naming `path` when it cannot be read.
std::string read_file(const std::string& path);

}  // namespace illada

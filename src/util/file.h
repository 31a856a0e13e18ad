// File I/O shared by every reader and writer: one output helper (OutputFile) that every
// command and every writer of checkpoints, shards and reports goes through, and bounded reads
// that check what kind of file they are given.
//
// Writing to a path:
//   "-"                       standard output (OutputFile only; internal paths never are "-")
//   a regular file, or a new path   a temporary file next to it, fsync, rename over it (and an
//                             fsync of the directory): a crash or a failed write leaves the
//                             old file or the new one, never half of one
//   a FIFO, character device or socket   written through (never replaced: /dev/null stays a
//                             device, a pipe's reader gets the data)
//   a symbolic link           followed; the rules above apply to what it points at, so the
//                             link itself stays
//   a directory               an error naming the path
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace illada {

class OutputFile {
 public:
  // `label` prefixes error messages (e.g. "--out"); empty: the path alone.
  explicit OutputFile(const std::string& path, std::string label = "");
  ~OutputFile();  // without commit(): a temporary file is removed, the target left as it was
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  void write(std::string_view data);
  void write(std::span<const std::byte> data);
  // Makes the data visible at the path (rename for regular files); throws Error naming it.
  void commit();
  // Where the bytes actually go (the symlink's target, "stdout", ...), for messages.
  const std::string& target() const { return target_; }
  bool atomic() const { return !tmp_.empty(); }

 private:
  std::string path_, label_, target_, tmp_;
  int fd_ = -1;
  bool owns_fd_ = false, committed_ = false;
  std::string where() const;
};

// Writes the concatenation of `pieces` to `path` by the rules above. Throws Error naming the
// path; nothing is replaced on failure.
void write_file_atomic(const std::string& path, const std::vector<std::span<const std::byte>>& pieces);
void write_file_atomic(const std::string& path, std::string_view data);

// fsyncs a file or directory (ignored where the file system does not support it).
void fsync_path(const std::string& path);

// What a reader accepts. Model files (config.json, tokenizer.json, safetensors) are always
// files on disk: anything else (a FIFO with no writer, /dev/zero) would hang or never end.
// Text inputs (task files, corpora) may also come through a pipe; devices are refused.
struct ReadLimits {
  uint64_t max_bytes = uint64_t{1} << 30;
  bool allow_stream = false;  // FIFOs and pipes (read up to max_bytes)
  const char* what = "file";  // named in messages ("tokenizer file", "task file", ...)
};
inline constexpr ReadLimits kConfigFileLimits{.max_bytes = uint64_t{64} << 20, .what = "JSON file"};
inline constexpr ReadLimits kTextInputLimits{
    .max_bytes = uint64_t{8} << 30, .allow_stream = true, .what = "text input"};

// Checks the kind (and, for regular files, the size) of `path` before anything opens it, so a
// FIFO never blocks a reader that expects a file. Throws Error naming the path.
void check_readable(const std::string& path, const ReadLimits& limits);

// A whole file, checked as above and read up to the limit. Throws Error naming `path`.
std::string read_file(const std::string& path, const ReadLimits& limits = {});

// Text input must be text: throws Error naming `source`, the line and the byte offset of the
// first invalid UTF-8 sequence, or of the first NUL byte when more than 1 byte in 64 is NUL
// (a binary or UTF-16 file; a stray U+0000 is valid text) ("looks like a binary file").
void check_text(std::string_view data, const std::string& source, int64_t first_line = 1,
                uint64_t first_offset = 0);

}  // namespace illada

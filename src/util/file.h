// Whole-file I/O shared by every writer of checkpoints, shards and configs: durable atomic
// writes (temporary file next to the target, fsync, rename, fsync of the directory), so a
// crash or a failed write leaves either the old file or the new one, never half of one.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace illada {

// Writes the concatenation of `pieces` to `path` atomically. Throws Error naming the path;
// the temporary file is removed on failure.
void write_file_atomic(const std::string& path, const std::vector<std::span<const std::byte>>& pieces);
void write_file_atomic(const std::string& path, std::string_view data);

// fsyncs a file or directory (ignored where the file system does not support it).
void fsync_path(const std::string& path);

// A whole file; throws Error naming `path` when it cannot be read.
std::string read_file(const std::string& path);

}  // namespace illada

// Durable file writes for checkpoints and datasets: write a temporary file, fsync, rename
// into place, fsync the directory, so a crash leaves either the old file or the new one.
#pragma once

#include <string>
#include <string_view>

namespace illada::train {

// Writes `data` to `path` atomically and durably. Throws Error naming the path.
void write_file_atomic(const std::string& path, std::string_view data);
// fsyncs a file or directory (errors are ignored where the filesystem does not support it).
void fsync_path(const std::string& path);
// Reads a whole file; throws Error naming `path` when it cannot be read.
std::string read_file(const std::string& path);

}  // namespace illada::train

// Durable atomic writes and whole-file reads (see file.h).
#include "util/file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "util/check.h"

namespace illada {
namespace {

std::string errno_str() { return std::strerror(errno); }

void write_all(int fd, std::span<const std::byte> data, const std::string& path) {
  constexpr size_t kMaxWrite = size_t{1} << 30;  // write() moves at most ~2 GB per call
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), std::min(data.size(), kMaxWrite));
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("cannot write ", path, ": ", errno_str());
    }
    data = data.subspan(static_cast<size_t>(n));
  }
}

}  // namespace

void fsync_path(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

void write_file_atomic(const std::string& path,
                       const std::vector<std::span<const std::byte>>& pieces) {
  const std::string tmp = str_cat(path, ".tmp.", ::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail("cannot create ", tmp, " to write ", path, ": ", errno_str());
  try {
    for (auto piece : pieces) write_all(fd, piece, path);
    if (::fsync(fd) != 0) fail("cannot write ", path, ": fsync: ", errno_str());
    const int closing = fd;
    fd = -1;
    if (::close(closing) != 0) fail("cannot write ", path, ": close: ", errno_str());
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
      fail("cannot write ", path, ": rename from ", tmp, ": ", errno_str());
    }
  } catch (...) {
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  const auto parent = std::filesystem::path(path).parent_path();
  fsync_path(parent.empty() ? "." : parent.string());  // make the rename itself durable
}

void write_file_atomic(const std::string& path, std::string_view data) {
  write_file_atomic(path, {std::as_bytes(std::span<const char>(data.data(), data.size()))});
}

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail(path, ": cannot read (no such file or no permission)");
  std::ostringstream ss;
  ss << f.rdbuf();
  if (f.bad()) fail(path, ": read error");
  return ss.str();
}

}  // namespace illada

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
#include <utility>

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

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  tmp_ = str_cat(path_, ".tmp.", ::getpid());
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) fail("cannot create ", tmp_, " to write ", path_, ": ", errno_str());
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(tmp_.c_str());
  }
}

void AtomicFile::write(std::span<const std::byte> data) {
  ILLADA_CHECK(fd_ >= 0, "write after commit of ", path_);
  write_all(fd_, data, path_);
  written_ += data.size();
}

void AtomicFile::write_zeros(size_t n) {
  static const std::byte kZeros[4096] = {};
  while (n > 0) {
    const size_t k = std::min(n, sizeof(kZeros));
    write({kZeros, k});
    n -= k;
  }
}

void AtomicFile::commit() {
  ILLADA_CHECK(fd_ >= 0, "second commit of ", path_);
  if (::fsync(fd_) != 0) fail("cannot write ", path_, ": fsync: ", errno_str());
  const int closing = fd_;
  fd_ = -1;
  if (::close(closing) != 0) {
    ::unlink(tmp_.c_str());
    fail("cannot write ", path_, ": close: ", errno_str());
  }
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
    const std::string why = errno_str();
    ::unlink(tmp_.c_str());
    fail("cannot write ", path_, ": rename from ", tmp_, ": ", why);
  }
  const auto parent = std::filesystem::path(path_).parent_path();
  fsync_path(parent.empty() ? "." : parent.string());  // make the rename itself durable
}

void write_file_atomic(const std::string& path,
                       const std::vector<std::span<const std::byte>>& pieces) {
  AtomicFile f(path);
  for (auto piece : pieces) f.write(piece);
  f.commit();
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

// Output files by kind of target, bounded reads and the text check (see file.h).
#include "util/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "util/check.h"

namespace illada {
namespace {

namespace fs = std::filesystem;

std::string errno_str() { return std::strerror(errno); }

std::string kind_of(mode_t m) {
  if (S_ISDIR(m)) return "a directory";
  if (S_ISFIFO(m)) return "a FIFO (named pipe)";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  if (S_ISSOCK(m)) return "a socket";
  return "not a regular file";
}

std::string human_bytes(uint64_t b) {
  char buf[32];
  if (b >= (uint64_t{1} << 30)) {
    std::snprintf(buf, sizeof buf, "%.1f GiB", static_cast<double>(b) / (1 << 30));
  } else if (b >= (uint64_t{1} << 20)) {
    std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(b) / (1 << 20));
  } else {
    std::snprintf(buf, sizeof buf, "%llu bytes", static_cast<unsigned long long>(b));
  }
  return buf;
}

void write_all(int fd, std::span<const std::byte> data, const std::string& where) {
  constexpr size_t kMaxWrite = size_t{1} << 30;  // write() moves at most ~2 GB per call
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), std::min(data.size(), kMaxWrite));
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("cannot write ", where, ": ", errno_str());
    }
    data = data.subspan(static_cast<size_t>(n));
  }
}

std::atomic<uint64_t> g_tmp_counter{0};

}  // namespace

void fsync_path(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

// ---- OutputFile ----

OutputFile::OutputFile(const std::string& path, std::string label) : path_(path), label_(std::move(label)) {
  if (path.empty()) fail(label_.empty() ? std::string("output") : label_, ": the path is empty");
  if (path == "-") {
    std::fflush(stdout);  // keep the order of anything printf'd before
    fd_ = STDOUT_FILENO;
    target_ = "standard output";
    return;
  }
  // Follow symbolic links to what they name: the link stays, its target gets the data.
  std::string p = path;
  struct stat st;
  bool exists = false;
  for (int hops = 0;; ++hops) {
    if (::lstat(p.c_str(), &st) != 0) {
      if (errno != ENOENT) fail(where(), ": cannot inspect ", p, ": ", errno_str());
      break;
    }
    if (!S_ISLNK(st.st_mode)) {
      exists = true;
      break;
    }
    if (hops >= 40) fail(where(), ": too many levels of symbolic links");
    std::error_code ec;
    fs::path next = fs::read_symlink(p, ec);
    if (ec) fail(where(), ": cannot read the symbolic link ", p, ": ", ec.message());
    if (next.is_relative()) next = fs::path(p).parent_path() / next;
    p = next.string();
  }
  target_ = p;
  if (exists && S_ISDIR(st.st_mode)) fail(where(), ": is a directory (expected a file path)");
  if (exists && !S_ISREG(st.st_mode)) {
    // FIFO, device, socket: write through, never replace.
    fd_ = ::open(p.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd_ < 0) fail(where(), ": cannot open ", kind_of(st.st_mode), " for writing: ", errno_str());
    owns_fd_ = true;
    return;
  }
  tmp_ = str_cat(p, ".tmp.", ::getpid(), ".", g_tmp_counter++);
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    const std::string err = errno_str();
    tmp_.clear();
    fail(where(), ": cannot create a file next to it: ", err);
  }
  owns_fd_ = true;
  if (exists) ::fchmod(fd_, st.st_mode & 07777);  // a replaced file keeps its permissions
}

std::string OutputFile::where() const {
  if (label_.empty()) return path_;
  return label_ + " " + path_;
}

OutputFile::~OutputFile() {
  if (committed_) return;
  if (owns_fd_ && fd_ >= 0) ::close(fd_);
  if (!tmp_.empty()) ::unlink(tmp_.c_str());
}

void OutputFile::write(std::span<const std::byte> data) {
  ILLADA_CHECK(!committed_, "write after commit to ", path_);
  write_all(fd_, data, where());
}

void OutputFile::write(std::string_view data) {
  write(std::as_bytes(std::span<const char>(data.data(), data.size())));
}

void OutputFile::commit() {
  ILLADA_CHECK(!committed_, "second commit of ", path_);
  if (!owns_fd_) {  // standard output stays open
    committed_ = true;
    return;
  }
  if (!tmp_.empty() && ::fsync(fd_) != 0) fail("cannot write ", where(), ": fsync: ", errno_str());
  const int closing = fd_;
  fd_ = -1;
  if (::close(closing) != 0) fail("cannot write ", where(), ": close: ", errno_str());
  if (!tmp_.empty()) {
    if (::rename(tmp_.c_str(), target_.c_str()) != 0) {
      fail("cannot write ", where(), ": rename from ", tmp_, ": ", errno_str());
    }
    const auto parent = fs::path(target_).parent_path();
    fsync_path(parent.empty() ? "." : parent.string());  // make the rename itself durable
  }
  committed_ = true;
}

void write_file_atomic(const std::string& path, const std::vector<std::span<const std::byte>>& pieces) {
  OutputFile f(path);
  for (auto piece : pieces) f.write(piece);
  f.commit();
}

void write_file_atomic(const std::string& path, std::string_view data) {
  write_file_atomic(path, {std::as_bytes(std::span<const char>(data.data(), data.size()))});
}

// ---- reading ----

void check_readable(const std::string& path, const ReadLimits& lim) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) fail(path, ": cannot read: no such file (expected a ", lim.what, ")");
    fail(path, ": cannot read: ", errno_str());
  }
  if (S_ISREG(st.st_mode)) {
    if (static_cast<uint64_t>(st.st_size) > lim.max_bytes) {
      fail(path, ": ", human_bytes(static_cast<uint64_t>(st.st_size)), " is more than the ",
           human_bytes(lim.max_bytes), " a ", lim.what, " may have");
    }
    return;
  }
  if (S_ISFIFO(st.st_mode) && lim.allow_stream) return;
  fail(path, ": is ", kind_of(st.st_mode), ", expected a ", lim.allow_stream ? "file or a pipe" : "regular file",
       " (", lim.what, ")");
}

std::string read_file(const std::string& path, const ReadLimits& lim) {
  check_readable(path, lim);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path, ": cannot read: ", errno_str());
  std::string out;
  std::vector<char> buf(1 << 20);
  for (;;) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      const std::string err = errno_str();
      ::close(fd);
      fail(path, ": read error: ", err);
    }
    if (n == 0) break;
    if (out.size() + static_cast<size_t>(n) > lim.max_bytes) {
      ::close(fd);
      fail(path, ": more than ", human_bytes(lim.max_bytes), " of data; a ", lim.what,
           " may not be longer (an endless stream?)");
    }
    out.append(buf.data(), static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

void check_text(std::string_view s, const std::string& source, int64_t first_line, uint64_t first_offset) {
  int64_t line = first_line;
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  auto bad = [&](size_t i, const std::string& what) {
    fail(source, ": line ", line, " (byte ", first_offset + i, ") ", what,
         ": this looks like a binary file, expected UTF-8 text");
  };
  // U+0000 is valid UTF-8 and tokenizer corpora may hold a few; many NUL bytes mean a binary
  // or UTF-16 file.
  size_t nuls = 0, first_nul = 0;
  int64_t first_nul_line = 0;
  for (size_t i = 0; i < n;) {
    const unsigned char c = p[i];
    if (c < 0x80) {
      if (c == 0 && nuls++ == 0) first_nul = i, first_nul_line = line;
      if (c == '\n') ++line;
      ++i;
      continue;
    }
    // Multi-byte sequence: lead byte, then 1-3 continuation bytes, no overlong forms,
    // no surrogates, nothing above U+10FFFF.
    int len = 0;
    uint32_t cp = 0;
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2, cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3, cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4, cp = c & 0x07;
    } else {
      bad(i, "is not valid UTF-8");
    }
    for (int k = 1; k < len; ++k) {
      if (i + k >= n) bad(i, "ends inside a UTF-8 sequence");
      if ((p[i + k] & 0xC0) != 0x80) bad(i, "is not valid UTF-8");
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))) {
      bad(i, "is not valid UTF-8");
    }
    i += len;
  }
  if (nuls * 64 > n) {
    line = first_nul_line;
    bad(first_nul, str_cat("holds a NUL byte (", nuls, " in ", n, " bytes)"));
  }
}

}  // namespace illada

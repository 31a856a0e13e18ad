// OutputFile by kind of target, bounded reads by kind of source, and the text check.
#include "util/file.h"

#include <fcntl.h>
#include <signal.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "util/check.h"

namespace illada {
namespace {

namespace fs = std::filesystem;

class FileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("illada_file_test_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  static std::string slurp(const std::string& p) {
    std::ifstream f(p, std::ios::binary);
    std::ostringstream s;
    s << f.rdbuf();
    return s.str();
  }
  size_t entries() const { return static_cast<size_t>(std::distance(fs::directory_iterator(dir_), {})); }
  fs::path dir_;
};

TEST_F(FileTest, RegularFileIsReplacedOnlyOnCommit) {
  const std::string p = path("out.txt");
  write_file_atomic(p, "old");
  ::chmod(p.c_str(), 0600);
  {
    OutputFile f(p);
    EXPECT_TRUE(f.atomic());
    f.write("new data");
    EXPECT_EQ(slurp(p), "old");  // not visible before commit
  }  // destroyed without commit: nothing replaced, no temporary left
  EXPECT_EQ(slurp(p), "old");
  EXPECT_EQ(entries(), 1u);
  OutputFile f(p);
  f.write("new data");
  f.commit();
  EXPECT_EQ(slurp(p), "new data");
  struct stat st;
  ASSERT_EQ(::stat(p.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);  // permissions kept
  EXPECT_EQ(entries(), 1u);
}

TEST_F(FileTest, SymlinkIsFollowedAndKept) {
  write_file_atomic(path("target"), "old");
  fs::create_symlink("target", path("link"));
  write_file_atomic(path("link"), "through the link");
  EXPECT_TRUE(fs::is_symlink(path("link")));
  EXPECT_EQ(slurp(path("target")), "through the link");
  fs::create_symlink("made", path("dangling"));
  write_file_atomic(path("dangling"), "created");
  EXPECT_TRUE(fs::is_symlink(path("dangling")));
  EXPECT_EQ(slurp(path("made")), "created");
}

TEST_F(FileTest, FifoAndDeviceAreWrittenThrough) {
  const std::string fifo = path("fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::string got;
  std::thread reader([&] { got = slurp(fifo); });
  {
    OutputFile f(fifo);
    EXPECT_FALSE(f.atomic());
    f.write("through the pipe");
    f.commit();
  }
  reader.join();
  EXPECT_EQ(got, "through the pipe");
  EXPECT_TRUE(fs::is_fifo(fifo));
  write_file_atomic("/dev/null", "discarded");
  EXPECT_TRUE(fs::is_character_file("/dev/null"));
}

TEST_F(FileTest, DirectoryAndMissingParentAreErrors) {
  EXPECT_THROW(OutputFile(dir_.string(), "--out"), Error);
  try {
    OutputFile f(path("no/such/dir/file"), "--out");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--out"), std::string::npos) << e.what();
  }
}

TEST_F(FileTest, ReadsCheckTheKindAndTheSize) {
  write_file_atomic(path("small"), std::string(100, 'x'));
  EXPECT_EQ(read_file(path("small")).size(), 100u);
  EXPECT_THROW(read_file(path("small"), {.max_bytes = 99}), Error);
  EXPECT_THROW(read_file(path("missing")), Error);
  EXPECT_THROW(read_file(dir_.string()), Error);
  EXPECT_THROW(read_file("/dev/zero", {.allow_stream = true}), Error);  // a device never ends
  const std::string fifo = path("fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  ::signal(SIGPIPE, SIG_IGN);  // the writer below outlives the reader
  // A model file must be a file: refused before open(), which would block without a writer.
  EXPECT_THROW(read_file(fifo, kConfigFileLimits), Error);
  // A stream is read up to the limit, then refused.
  std::thread writer([&] {
    const int fd = ::open(fifo.c_str(), O_WRONLY);
    const std::string chunk(4096, 'y');
    for (int i = 0; i < 64; ++i) {
      if (::write(fd, chunk.data(), chunk.size()) < 0) break;  // the reader gave up
    }
    ::close(fd);
  });
  EXPECT_THROW(read_file(fifo, {.max_bytes = 10000, .allow_stream = true}), Error);
  writer.join();
}

TEST(CheckText, AcceptsUtf8AndNamesTheFirstBadByte) {
  EXPECT_NO_THROW(check_text("plain\ncafé 中文 😀\n", "t"));
  auto message = [](std::string_view s) {
    try {
      check_text(s, "in.txt");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(message(std::string_view("ab\ncd\0e", 7)),
            "in.txt: line 2 (byte 5) holds a NUL byte (1 in 7 bytes): this looks like a binary file, expected "
            "UTF-8 text");
  std::string sparse(200, 'a');  // one U+0000 in 200 bytes is text
  sparse[100] = '\0';
  EXPECT_NO_THROW(check_text(sparse, "t"));
  EXPECT_NE(message(std::string_view("h\0i\0\n\0", 6)).find("line 1 (byte 1) holds a NUL byte"), std::string::npos);
  EXPECT_NE(message("caf\xe9\n").find("line 1 (byte 3) is not valid UTF-8"), std::string::npos);
  EXPECT_NE(message("\xc0\xaf").find("not valid UTF-8"), std::string::npos);          // overlong
  EXPECT_NE(message("\xed\xa0\x80").find("not valid UTF-8"), std::string::npos);      // surrogate
  EXPECT_NE(message("\xf4\x90\x80\x80").find("not valid UTF-8"), std::string::npos);  // > U+10FFFF
  EXPECT_NE(message("ok\xe4\xb8").find("ends inside a UTF-8 sequence"), std::string::npos);
}

}  // namespace
}  // namespace illada

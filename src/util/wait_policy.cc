// The start-up choice of the OpenMP wait policy (see wait_policy.h).
#include "util/wait_policy.h"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdio>

namespace illada {

int parse_running(std::string_view s) {
  // Fourth field: "running/total".
  size_t pos = 0;
  for (int field = 0; field < 3; ++field) {
    pos = s.find(' ', pos);
    if (pos == std::string_view::npos) return -1;
    while (pos < s.size() && s[pos] == ' ') ++pos;
  }
  const size_t slash = s.find('/', pos);
  if (slash == std::string_view::npos) return -1;
  int running = 0;
  const auto [p, ec] = std::from_chars(s.data() + pos, s.data() + slash, running);
  if (ec != std::errc() || p != s.data() + slash || running < 0) return -1;
  return running;
}

int others_running() {
  int most = -1;
  for (int sample = 0; sample < 3; ++sample) {
    if (sample > 0) ::usleep(300);
    FILE* f = std::fopen("/proc/loadavg", "r");
    if (!f) return -1;
    char buf[128] = {};
    const size_t n = std::fread(buf, 1, sizeof buf - 1, f);
    std::fclose(f);
    const int running = parse_running(std::string_view(buf, n));
    if (running < 0) return -1;
    most = std::max(most, running - 1);  // the reader itself is running
  }
  return most;
}

WaitPolicy choose_wait_policy(int others) {
  if (others == 0) return {"GOMP_SPINCOUNT", "10000"};
  return {"OMP_WAIT_POLICY", "passive"};
}

}  // namespace illada

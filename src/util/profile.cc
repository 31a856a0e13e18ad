// Storage and report of the opt-in region profile.
#include "util/profile.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace illada {
namespace {

struct Table {
  std::mutex mu;
  std::map<std::string, std::pair<double, long>> totals;
  ~Table() {
    if (totals.empty()) return;
    std::vector<std::pair<std::string, std::pair<double, long>>> rows(totals.begin(), totals.end());
    std::sort(rows.begin(), rows.end(),
              [](auto& a, auto& b) { return a.second.first > b.second.first; });
    double sum = 0;
    for (auto& r : rows) sum += r.second.first;
    std::fprintf(stderr, "illada profile (wall seconds, calls):\n");
    for (auto& r : rows) {
      std::fprintf(stderr, "  %-24s %9.3f s %5.1f%% %8ld\n", r.first.c_str(), r.second.first,
                   100.0 * r.second.first / sum, r.second.second);
    }
  }
};

Table& table() {
  static Table t;
  return t;
}

}  // namespace

bool profiling_enabled() {
  static const bool on = [] {
    const char* v = std::getenv("ILLADA_PROFILE");
    return v && *v && std::string(v) != "0";
  }();
  return on;
}

void profile_add(const char* name, double seconds) {
  Table& t = table();
  std::lock_guard<std::mutex> lock(t.mu);
  auto& e = t.totals[name];
  e.first += seconds;
  e.second += 1;
}

}  // namespace illada

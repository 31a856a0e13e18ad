// How OpenMP threads should wait for each other, chosen from what else runs on the machine
// when the program starts. Spinning (libgomp's default) is fastest when the cores are ours;
// when other processes compete for them, a spinning thread burns the time slice its partner
// needs and a 2-core run gets 5-20x slower, while passive waiting (sleep at once) stays within
// a few percent of the best setting. Measurements: docs/benchmarks.md, "Threading defaults".
#pragma once

#include <string>
#include <string_view>

namespace illada {

// Processes (threads) other than the caller that are running or runnable right now, from the
// kernel's count in /proc/loadavg ("R/T"), the largest of a few samples taken ~0.3 ms apart
// (-1 when unknown).
int others_running();

// The environment variable and value to set: {"GOMP_SPINCOUNT", "10000"} (spin about 0.1 ms,
// then sleep) when nothing else runs, {"OMP_WAIT_POLICY", "passive"} otherwise or unknown.
struct WaitPolicy {
  const char* variable;
  const char* value;
};
WaitPolicy choose_wait_policy(int others);

// Parses the running count out of /proc/loadavg's text ("0.10 0.20 0.30 2/345 6789"); -1 if
// malformed.
int parse_running(std::string_view loadavg);

}  // namespace illada

// The OpenMP runtime's wait policy, chosen before the runtime starts. libgomp reads
// OMP_WAIT_POLICY / GOMP_SPINCOUNT in its own constructor, before main(), so setting them in
// main is too late: the program re-executes itself once with the variable set, unless the
// user set either variable (theirs is kept). docs/benchmarks.md ("Threading defaults") has
// the measurements behind the choice: threads that wait by spinning (libgomp's default, about
// 3 ms per wait) make a 2-core machine shared with other busy processes 5-20x slower; passive
// waiting costs little on an idle machine.
#pragma once

namespace illada::cli {

inline constexpr const char* kDefaultWaitPolicy = "passive";

// Re-executes /proc/self/exe with OMP_WAIT_POLICY=kDefaultWaitPolicy when neither
// OMP_WAIT_POLICY nor GOMP_SPINCOUNT is set. Returns when nothing is to be done or the
// re-execution failed (the program then runs with the runtime's defaults).
void ensure_openmp_defaults(char** argv);

}  // namespace illada::cli

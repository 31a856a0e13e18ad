// The OpenMP runtime's wait policy, chosen before the runtime starts. libgomp reads
// OMP_WAIT_POLICY / GOMP_SPINCOUNT in its own constructor, before main(), so setting them in
// main is too late: the program re-executes itself once with the chosen variable set
// (util/wait_policy.h: a short spin when nothing else runs, passive waiting when other
// processes compete for the cores), unless the user set either variable (theirs is kept).
#pragma once

namespace illada::cli {

// Returns when nothing is to be done or the re-execution failed (the program then runs with
// the runtime's defaults).
void ensure_openmp_defaults(char** argv);

}  // namespace illada::cli

// Re-execution with the chosen OpenMP wait policy (see openmp_env.h).
#include "cli/openmp_env.h"

#include <unistd.h>

#include <cstdlib>

#include "util/wait_policy.h"

namespace illada::cli {

void ensure_openmp_defaults(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") || std::getenv("GOMP_SPINCOUNT")) return;
  const WaitPolicy p = choose_wait_policy(others_running());
  if (setenv(p.variable, p.value, 1) != 0) return;
  ::execv("/proc/self/exe", argv);
  // No /proc (or exec refused): carry on with the runtime's defaults; the variable stays set
  // for child processes, which then start with it.
}

}  // namespace illada::cli

// Out-of-line part of ILLADA_CHECK, so the macro stays small in hot code.
#include "util/check.h"

#include <cstdio>
#include <cstdlib>

namespace illada {

void check_failed(const char* expr, const char* file, int line, const std::string& msg) {
  std::fprintf(stderr, "illada: internal check failed at %s:%d: %s%s%s\n", file, line, expr,
               msg.empty() ? "" : ": ", msg.c_str());
  std::fflush(stderr);
  std::abort();
}

}  // namespace illada

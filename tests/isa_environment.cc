// Linked into the test programs that ctest also runs with ILLADA_ISA set to each lower
// instruction-set level (CMakeLists.txt): prints the level the kernels run at, and skips every
// test, saying why, when ILLADA_ISA asks for a level this CPU lacks (the run would only repeat
// a lower level under a wrong name).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>

#include "util/isa.h"

namespace illada {
namespace {

class IsaEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    const char* requested = std::getenv("ILLADA_ISA");
    if (!requested || !*requested) return;
    if (parse_isa(requested) > isa_supported()) {
      GTEST_SKIP() << "ILLADA_ISA=" << requested << " asks for more than this CPU supports ("
                   << isa_name(isa_supported()) << ")";
    }
    std::printf("[   ISA    ] kernels at %s (ILLADA_ISA=%s, CPU: %s)\n",
                isa_name(isa_level()), requested, isa_name(isa_supported()));
  }
};

[[maybe_unused]] const auto* const registered = ::testing::AddGlobalTestEnvironment(new IsaEnvironment);

}  // namespace
}  // namespace illada

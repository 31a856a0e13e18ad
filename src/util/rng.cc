// Out-of-line parts of the counter-based generator.
#include "util/rng.h"

#include <cmath>

namespace illada {

double Rng::normal() {
  const double u1 = 1.0 - uniform();  // (0, 1]
  const double u2 = uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
}

}  // namespace illada

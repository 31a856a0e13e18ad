// Counter-based random numbers: every draw is a pure function of (seed, stream, index), so
// results never depend on thread scheduling or on how much was drawn before. Streams name a
// purpose (e.g. request, step, position); see kStream* constants at the call sites.
#pragma once

#include <cstdint>

namespace illada {

inline uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// 64 random bits for (seed, stream, index).
inline uint64_t random_bits(uint64_t seed, uint64_t stream, uint64_t index) {
  return splitmix64(splitmix64(splitmix64(seed) ^ stream) ^ index);
}

// Uniform double in [0, 1) with 53 random bits.
inline double random_uniform(uint64_t seed, uint64_t stream, uint64_t index) {
  return static_cast<double>(random_bits(seed, stream, index) >> 11) * 0x1.0p-53;
}

// A sequential view of one stream, for code that draws many numbers in order.
class Rng {
 public:
  Rng(uint64_t seed, uint64_t stream) : seed_(seed), stream_(stream) {}
  uint64_t next_bits() { return random_bits(seed_, stream_, counter_++); }
  double uniform() { return random_uniform(seed_, stream_, counter_++); }
  // Standard normal by Box-Muller (two uniforms per draw, deterministic).
  double normal();
  // Uniform integer in [0, n).
  uint64_t below(uint64_t n) { return next_bits() % n; }

 private:
  uint64_t seed_, stream_, counter_ = 0;
};

}  // namespace illada

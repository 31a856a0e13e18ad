// 64-byte aligned std::vector storage for buffers that matrix products read or write. A large
// std::vector gets malloc's 16-byte alignment; oneDNN's AMX products run 5-17% faster on the
// training step's 2048-row shapes and about 2x faster on attention's 512x512x64 scores when
// their operands start on a cache line (measured on this machine, see docs/benchmarks.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <vector>

namespace illada {

constexpr std::size_t kBufferAlign = 64;

template <class T>
struct AlignedAllocator {
  using value_type = T;
  AlignedAllocator() = default;
  template <class U>
  AlignedAllocator(const AlignedAllocator<U>&) {}
  T* allocate(std::size_t n) {
    return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{kBufferAlign}));
  }
  void deallocate(T* p, std::size_t) { ::operator delete(p, std::align_val_t{kBufferAlign}); }
  template <class U>
  bool operator==(const AlignedAllocator<U>&) const {
    return true;
  }
};

// A growable buffer whose data() is 64-byte aligned.
template <class T>
using Buffer = std::vector<T, AlignedAllocator<T>>;

// v.data() with room for at least n elements (grows, never shrinks): scratch reused across
// calls.
template <class T, class Alloc>
T* sized(std::vector<T, Alloc>& v, int64_t n) {
  if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
  return v.data();
}

}  // namespace illada

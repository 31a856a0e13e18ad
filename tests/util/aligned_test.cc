// Buffer<T>: data() on a 64-byte boundary whatever the size and after growth.
#include <gtest/gtest.h>

#include <cstdint>

#include "util/aligned.h"
#include "util/bf16.h"

namespace illada {
namespace {

template <class T>
bool aligned(const Buffer<T>& b) {
  return reinterpret_cast<std::uintptr_t>(b.data()) % kBufferAlign == 0;
}

TEST(Buffer, DataIsCacheLineAligned) {
  for (size_t n : {1u, 3u, 17u, 1000u, 1u << 20}) {
    Buffer<float> f(n, 1.0f);
    Buffer<bf16> h(n);
    Buffer<uint8_t> u(n);
    EXPECT_TRUE(aligned(f) && aligned(h) && aligned(u)) << n;
    f.resize(3 * n + 5);  // reallocation keeps the alignment and the values
    EXPECT_TRUE(aligned(f)) << n;
    EXPECT_EQ(f[n - 1], 1.0f);
  }
}

}  // namespace
}  // namespace illada

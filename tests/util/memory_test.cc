// release_mapped_pages: only the whole pages inside the range are dropped. Shown on anonymous
// private memory, where a dropped page reads back as zeros (a file mapping reads the file again).
#include <gtest/gtest.h>

#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>

#include "util/memory.h"

namespace illada {
namespace {

TEST(ReleaseMappedPages, DropsOnlyTheWholePagesInsideTheRange) {
  const auto page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  void* p = ::mmap(nullptr, 4 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  auto* bytes = static_cast<uint8_t*>(p);
  std::memset(bytes, 7, 4 * page);
  // From the middle of page 0 to the middle of page 3: pages 1 and 2 lie wholly inside.
  release_mapped_pages(bytes + page / 2, 3 * page);
  for (size_t i = 0; i < 4 * page; ++i) {
    const bool dropped = i >= page && i < 3 * page;
    ASSERT_EQ(bytes[i], dropped ? 0 : 7) << "byte " << i << " (page " << i / page << ")";
  }
  // A range inside one page drops nothing.
  std::memset(bytes, 7, 4 * page);
  release_mapped_pages(bytes + 1, page - 2);
  for (size_t i = 0; i < page; ++i) ASSERT_EQ(bytes[i], 7) << "byte " << i;
  ::munmap(p, 4 * page);
}

}  // namespace
}  // namespace illada

// Memory size checks (see memory.h).
#include "util/memory.h"

#include <sys/mman.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include <cstdio>

#include "util/check.h"

namespace illada {

uint64_t total_memory_bytes() {
  struct sysinfo si;
  if (sysinfo(&si) != 0) return 0;
  return (static_cast<uint64_t>(si.totalram) + si.totalswap) * si.mem_unit;
}

void release_mapped_pages(const void* data, uint64_t bytes) {
  const auto page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto begin = reinterpret_cast<uintptr_t>(data);
  const uintptr_t first = (begin + page - 1) / page * page, last = (begin + bytes) / page * page;
  if (last > first) ::madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);
}

std::string format_bytes(double b) {
  const char* units[] = {"B", "KB", "MB", "GB", "TB", "PB", "EB"};
  int u = 0;
  while (b >= 1000 && u < 6) b /= 1000, ++u;
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.3g %s", b, units[u]);
  return buf;
}

void require_memory(double bytes, const std::string& what) {
  const uint64_t total = total_memory_bytes();
  if (total == 0) return;
  if (bytes > static_cast<double>(total)) {
    fail(what, " needs ", format_bytes(bytes), " of memory; this machine has ",
         format_bytes(static_cast<double>(total)), " (RAM and swap)");
  }
}

}  // namespace illada

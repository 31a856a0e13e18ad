// Up-front memory checks: a size that cannot fit in this machine's memory is reported with
// what needed it, instead of std::bad_alloc or the kernel's out-of-memory killer.
#pragma once

#include <cstdint>
#include <string>

namespace illada {

// Physical memory plus swap of this machine, in bytes (0 when unknown).
uint64_t total_memory_bytes();

// Throws Error "`what` needs X GB of memory; this machine has Y GB" when `bytes` exceeds
// total_memory_bytes(). `bytes` is a double so that sizes from absurd configs cannot wrap.
void require_memory(double bytes, const std::string& what);

// "1.23 GB"
std::string format_bytes(double bytes);

// Drops the whole pages of [data, data + bytes) of a file mapping from this process's memory
// (madvise MADV_DONTNEED): the file stays in the page cache, and a later read faults the pages
// back in. For mapped tensors that have been copied (packed, un-permuted) and are not read again.
void release_mapped_pages(const void* data, uint64_t bytes);

}  // namespace illada

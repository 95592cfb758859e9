#include "runtime/host_memory.h"

#include <cstdlib>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace switchyard {

void* allocate_host_block(size_t bytes, bool huge_pages) noexcept {
  if (!huge_pages || bytes < kHugePageBytes) {
    return std::aligned_alloc(kHostBlockAlignment,
                              (bytes + kHostBlockAlignment - 1) / kHostBlockAlignment * kHostBlockAlignment);
  }
  // aligned_alloc wants a size that is a multiple of the alignment.
  void* block = std::aligned_alloc(kHugePageBytes, (bytes + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes);
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  // NOTE: advice only: where it is refused (THP off, an old kernel) the block works on small pages.
  if (block != nullptr) ::madvise(block, bytes / kHugePageBytes * kHugePageBytes, MADV_HUGEPAGE);
#endif
  return block;
}

}  // namespace switchyard

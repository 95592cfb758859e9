// Host memory blocks from the C library for the CPU device's buffers, large ones on transparent
// huge pages: an expert GEMM walks its operands a row pitch at a time (16 KB and more), touching
// a new 4 KB page at nearly every step, so with small pages the TLB misses on most of them; on
// 2 MB pages the mid-size expert GEMM ran 15-20% faster (docs/benchmarks.md).
#pragma once

#include <cstddef>

namespace switchyard {

/// Every host block's alignment: a cache line, and a zmm vector.
constexpr size_t kHostBlockAlignment = 64;
/// The transparent huge page size of Linux on x86-64 (and of AArch64 kernels with 4 KB pages).
constexpr size_t kHugePageBytes = size_t{2} << 20;

/// A block of at least `bytes`, kHostBlockAlignment aligned, or nullptr when the C library has none; free
/// it with std::free. With `huge_pages`, a block of kHugePageBytes or more is aligned to a huge
/// page and its whole huge pages are advised to the kernel as such (madvise MADV_HUGEPAGE, which
/// Linux honours unless transparent huge pages are off; elsewhere nothing is advised). The tail
/// past the last whole huge page stays on small pages, so nothing is touched that was not asked.
void* allocate_host_block(size_t bytes, bool huge_pages) noexcept;

}  // namespace switchyard

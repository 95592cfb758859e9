// Host memory for the CPU device's buffers, kept for reuse: a freed block waits in a free list of
// its size class, so a steady-state forward or training step takes every buffer from the cache
// and asks the C library for nothing (as the CUDA device's memory pool does for the GPU). Blocks
// come from allocate_host_block (runtime/host_memory.h): large ones on huge pages unless the
// cache is made without.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace switchyard {

class HostBlockCache {
 public:
  struct Stats {
    uint64_t system_allocations = 0;  // blocks the C library gave (misses of the cache)
    size_t in_use = 0;                // bytes of the blocks handed out, by size class
    size_t cached = 0;                // bytes of the freed blocks kept for reuse
    size_t high_water = 0;            // the most in_use bytes at once since the last reset
  };

  /// `huge_pages`: advise blocks of a huge page or more as huge pages (allocate_host_block).
  explicit HostBlockCache(bool huge_pages = false) : huge_pages_(huge_pages) {}
  HostBlockCache(const HostBlockCache&) = delete;
  HostBlockCache& operator=(const HostBlockCache&) = delete;
  ~HostBlockCache();

  /// A 64-byte aligned block of at least `bytes`; nullptr when the C library has none.
  void* take(size_t bytes);
  /// Returns a block from take() to the cache; nullptr is ignored.
  void give_back(void* pointer) noexcept;
  /// Frees every cached block (the blocks in use stay).
  void trim() noexcept;
  Stats stats() const;
  /// Starts the high-water mark again from what is in use now.
  void reset_high_water();

  /// The size class of a request: 64-byte granules, then eight classes per power of two, so a
  /// block is at most an eighth larger than asked (the untouched tail of a large block costs
  /// address space only).
  static size_t size_class(size_t bytes);

 private:
  const bool huge_pages_;
  mutable std::mutex mutex_;
  std::unordered_map<void*, size_t> live_;     // block -> its size class
  std::map<size_t, std::vector<void*>> free_;  // size class -> freed blocks
  Stats stats_;
};

}  // namespace switchyard

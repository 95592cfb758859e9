#include "runtime/host_block_cache.h"

#include <algorithm>
#include <bit>
#include <cstdlib>

#include "runtime/host_memory.h"

namespace switchyard {
namespace {

constexpr size_t kAlignment = kHostBlockAlignment;  // size classes are whole granules of it
constexpr size_t kClassesPerPowerOfTwo = 8;

}  // namespace

// NOTE: blocks still in use are left alone: a buffer that outlives its device frees nothing twice.
HostBlockCache::~HostBlockCache() {
  trim();
}

size_t HostBlockCache::size_class(size_t bytes) {
  const size_t granules = std::max<size_t>(1, (bytes + kAlignment - 1) / kAlignment);
  if (granules <= kClassesPerPowerOfTwo) return granules * kAlignment;
  const size_t step = std::bit_floor(granules) / kClassesPerPowerOfTwo;
  return (granules + step - 1) / step * step * kAlignment;
}

void* HostBlockCache::take(size_t bytes) {
  const size_t size = size_class(bytes);
  std::lock_guard<std::mutex> lock(mutex_);
  void* pointer = nullptr;
  if (auto it = free_.find(size); it != free_.end() && !it->second.empty()) {
    pointer = it->second.back();
    it->second.pop_back();
    stats_.cached -= size;
  } else {
    pointer = allocate_host_block(size, huge_pages_);
    if (pointer == nullptr) return nullptr;
    ++stats_.system_allocations;
  }
  live_.emplace(pointer, size);
  stats_.in_use += size;
  stats_.high_water = std::max(stats_.high_water, stats_.in_use);
  return pointer;
}

void HostBlockCache::give_back(void* pointer) noexcept {
  if (pointer == nullptr) return;
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = live_.find(pointer);
  if (it == live_.end()) return;  // not ours: nothing to do rather than corrupt the lists
  const size_t size = it->second;
  live_.erase(it);
  stats_.in_use -= size;
  try {
    free_[size].push_back(pointer);
    stats_.cached += size;
  } catch (...) {  // no memory for the list: free the block instead of keeping it
    std::free(pointer);
  }
}

void HostBlockCache::trim() noexcept {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& [size, blocks] : free_)
    for (void* pointer : blocks) std::free(pointer);
  free_.clear();
  stats_.cached = 0;
}

HostBlockCache::Stats HostBlockCache::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

void HostBlockCache::reset_high_water() {
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.high_water = stats_.in_use;
}

}  // namespace switchyard

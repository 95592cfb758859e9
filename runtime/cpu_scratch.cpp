#include "runtime/cpu_scratch.h"

#include <atomic>
#include <cstdlib>

#include "runtime/host_block_cache.h"

namespace switchyard {
namespace {

std::atomic<uint64_t> scratch_allocations{0};
std::atomic<bool> scratch_refused{false};

struct ThreadScratch {
  void* pointer = nullptr;
  size_t bytes = 0;
  ThreadScratch() = default;
  ThreadScratch(const ThreadScratch&) = delete;
  ThreadScratch& operator=(const ThreadScratch&) = delete;
  ~ThreadScratch() { std::free(pointer); }
};

}  // namespace

extern "C" void* sy_cpu_thread_scratch(unsigned long bytes) noexcept {
  thread_local ThreadScratch scratch;
  if (scratch_refused.load(std::memory_order_relaxed)) return nullptr;
  if (scratch.bytes >= bytes && scratch.pointer != nullptr) return scratch.pointer;
  std::free(scratch.pointer);
  scratch.bytes = HostBlockCache::size_class(bytes);  // the next slightly larger ask fits too
  scratch.pointer = std::aligned_alloc(64, scratch.bytes);
  if (scratch.pointer == nullptr) scratch.bytes = 0;
  scratch_allocations.fetch_add(1, std::memory_order_relaxed);
  return scratch.pointer;
}

void refuse_cpu_scratch_for_testing(bool refused) {
  scratch_refused.store(refused, std::memory_order_relaxed);
}

uint64_t cpu_scratch_allocations() {
  return scratch_allocations.load(std::memory_order_relaxed);
}

}  // namespace switchyard

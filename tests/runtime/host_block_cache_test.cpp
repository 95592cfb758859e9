// The CPU device's block cache: size classes, reuse, accounting and trimming, checked by hand.
#include "runtime/host_block_cache.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>

#include "runtime/cpu_scratch.h"

namespace switchyard {
namespace {

TEST(HostBlockCache, SizeClassesHoldTheRequestAndWasteAtMostAnEighth) {
  EXPECT_EQ(HostBlockCache::size_class(0), 64u);
  EXPECT_EQ(HostBlockCache::size_class(1), 64u);
  EXPECT_EQ(HostBlockCache::size_class(64), 64u);
  EXPECT_EQ(HostBlockCache::size_class(65), 128u);
  EXPECT_EQ(HostBlockCache::size_class(512), 512u);
  EXPECT_EQ(HostBlockCache::size_class(513), 576u);    // 9 granules: steps of one granule
  EXPECT_EQ(HostBlockCache::size_class(1025), 1152u);  // 17 granules: steps of two
  EXPECT_EQ(HostBlockCache::size_class(1 << 20), 1u << 20);
  EXPECT_EQ(HostBlockCache::size_class((1 << 20) + 1), (1u << 20) + (1u << 17));
  for (size_t bytes = 1; bytes < (size_t{1} << 34); bytes = bytes * 3 + 7) {
    const size_t size = HostBlockCache::size_class(bytes);
    EXPECT_GE(size, bytes);
    EXPECT_EQ(size % 64, 0u) << bytes;
    EXPECT_LE(size, bytes + bytes / 8 + 128) << bytes;
    EXPECT_EQ(HostBlockCache::size_class(size), size) << "a class is its own class";
  }
}

TEST(HostBlockCache, AFreedBlockServesTheNextRequestOfItsClass) {
  HostBlockCache cache;
  void* a = cache.take(1000);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a) % 64, 0u);
  std::memset(a, 1, 1000);
  void* b = cache.take(5000);
  EXPECT_EQ(cache.stats().system_allocations, 2u);
  EXPECT_EQ(cache.stats().in_use, HostBlockCache::size_class(1000) + HostBlockCache::size_class(5000));
  cache.give_back(a);
  EXPECT_EQ(cache.stats().cached, HostBlockCache::size_class(1000));
  EXPECT_EQ(cache.take(990), a) << "990 and 1000 bytes share a class";
  EXPECT_EQ(cache.stats().system_allocations, 2u);
  void* c = cache.take(3000);  // another class: from the system
  EXPECT_EQ(cache.stats().system_allocations, 3u);
  EXPECT_NE(c, a);
  cache.give_back(a);
  cache.give_back(b);
  cache.give_back(c);
  const HostBlockCache::Stats s = cache.stats();
  EXPECT_EQ(s.in_use, 0u);
  EXPECT_EQ(s.high_water,
            HostBlockCache::size_class(1000) + HostBlockCache::size_class(5000) + HostBlockCache::size_class(3000));
  cache.trim();
  EXPECT_EQ(cache.stats().cached, 0u);
  cache.reset_high_water();
  EXPECT_EQ(cache.stats().high_water, 0u);
}

TEST(HostBlockCache, ForeignAndNullPointersAreIgnored) {
  HostBlockCache cache;
  int local = 0;
  cache.give_back(nullptr);
  cache.give_back(&local);  // not a block of this cache: neither kept nor freed
  EXPECT_EQ(cache.stats().cached, 0u);
  void* a = cache.take(64);
  cache.give_back(a);
  cache.give_back(a);  // a second give_back of the same block does not list it twice
  EXPECT_EQ(cache.stats().cached, 64u);
  EXPECT_EQ(cache.take(64), a);
  EXPECT_NE(cache.take(64), a);
}

TEST(CpuScratch, AThreadKeepsItsBlockUntilItNeedsMore) {
  const uint64_t before = cpu_scratch_allocations();
  void* a = sy_cpu_thread_scratch(1000000);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a) % 64, 0u);
  std::memset(a, 0, 1000000);
  EXPECT_EQ(sy_cpu_thread_scratch(1000), a);
  EXPECT_EQ(sy_cpu_thread_scratch(1 << 20), a) << "1 MiB is 1000000 bytes' size class";
  EXPECT_LE(cpu_scratch_allocations(), before + 1);
  void* larger = sy_cpu_thread_scratch(3 << 20);
  ASSERT_NE(larger, nullptr);
  std::memset(larger, 0, 3 << 20);
  EXPECT_EQ(sy_cpu_thread_scratch(1 << 20), larger);
}

}  // namespace
}  // namespace switchyard

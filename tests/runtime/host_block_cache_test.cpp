// The CPU device's block cache: size classes, reuse, accounting and trimming, checked by hand.
#include "runtime/host_block_cache.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

#include "core/error.h"
#include "core/settings.h"
#include "runtime/context.h"
#include "runtime/cpu_device.h"
#include "runtime/cpu_scratch.h"
#include "runtime/host_memory.h"
#include "runtime/pinned_host_buffer.h"
#include "tests/support/test_support.h"

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

// Whether the kernel holds madvise(MADV_HUGEPAGE) for the mapping that contains `address`: the
// "hg" flag of its VmFlags in /proc/self/smaps; nullopt without smaps (not Linux).
std::optional<bool> advised_huge(const void* address) {
  std::ifstream smaps("/proc/self/smaps");
  if (!smaps) return std::nullopt;
  const auto at = reinterpret_cast<uintptr_t>(address);
  bool inside = false;
  for (std::string line; std::getline(smaps, line);) {
    uintptr_t begin = 0, end = 0;
    char dash = 0;
    std::istringstream range(line);
    if (range >> std::hex >> begin >> dash >> end && dash == '-' && line.find(':') > line.find(' ')) {
      inside = begin <= at && at < end;  // a mapping's first line: "begin-end perms ..."
    } else if (inside && line.rfind("VmFlags:", 0) == 0) {
      std::istringstream flags(line.substr(8));
      for (std::string flag; flags >> flag;)
        if (flag == "hg") return true;
      return false;
    }
  }
  return std::nullopt;
}

TEST(HostMemory, LargeBlocksAreAlignedToAndAdvisedAsHugePages) {
  const size_t bytes = 3 * kHugePageBytes + 12345;
  void* huge = allocate_host_block(bytes, true);
  void* plain = allocate_host_block(bytes, false);
  void* small = allocate_host_block(kHugePageBytes - 64, true);
  ASSERT_NE(huge, nullptr);
  ASSERT_NE(plain, nullptr);
  ASSERT_NE(small, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(huge) % kHugePageBytes, 0u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(plain) % 64, 0u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(small) % 64, 0u);
  std::memset(huge, 1, bytes);  // every byte asked for is usable, the tail past the huge pages too
  std::memset(plain, 1, bytes);
  const std::optional<bool> huge_flag = advised_huge(huge);
  if (!huge_flag) {
    std::free(huge), std::free(plain), std::free(small);
    GTEST_SKIP() << "no /proc/self/smaps: the advice cannot be observed on this system";
  }
  EXPECT_TRUE(*huge_flag) << "the block's whole huge pages are advised";
  EXPECT_TRUE(advised_huge(static_cast<char*>(huge) + 3 * kHugePageBytes - 1).value_or(false));
  EXPECT_FALSE(advised_huge(static_cast<char*>(huge) + 3 * kHugePageBytes).value_or(true))
      << "the tail past the last whole huge page stays on small pages";
  EXPECT_FALSE(advised_huge(plain).value_or(true)) << "without huge_pages nothing is advised";
  EXPECT_FALSE(advised_huge(small).value_or(true)) << "a block under a huge page is not advised";
  std::free(huge);
  std::free(plain);
  std::free(small);
}

TEST(HostMemory, TheCpuDevicesLargeBuffersAreOnHugePagesUnlessTurnedOff) {
  CpuDeviceOptions options;
  options.threads = 1;
  for (const bool huge_pages : {true, false}) {
    options.huge_pages = huge_pages;
    CpuDevice device(options);
    void* buffer = device.allocate(5 * kHugePageBytes);
    const std::optional<bool> flag = advised_huge(buffer);
    if (!flag) {
      device.release(buffer);
      GTEST_SKIP() << "no /proc/self/smaps: the advice cannot be observed on this system";
    }
    EXPECT_EQ(*flag, huge_pages);
    device.release(buffer);
  }
}

TEST(HostMemory, SwitchyardHugePagesIsABooleanThatDefaultsToOn) {
  {
    testing::ScopedEnv unset("SWITCHYARD_HUGE_PAGES", nullptr);
    EXPECT_TRUE(Settings::from_environment().huge_pages);
  }
  {
    testing::ScopedEnv off("SWITCHYARD_HUGE_PAGES", "0");
    EXPECT_FALSE(Settings::from_environment().huge_pages);
  }
  testing::ScopedEnv bad("SWITCHYARD_HUGE_PAGES", "big");
  try {
    Settings::from_environment();
    ADD_FAILURE() << "no error for SWITCHYARD_HUGE_PAGES=big";
  } catch (const UserError& e) {
    EXPECT_NE(std::string(e.what()).find("SWITCHYARD_HUGE_PAGES='big' is not a boolean"), std::string::npos)
        << e.what();
  }
}

// On the CPU device a staging buffer is plain host memory (nothing to page-lock); it grows only
// when asked for more. The CUDA side (registered, copies landing) is in gpu_device_ops_test.
TEST(PinnedHostBuffer, OnTheCpuItIsPageAlignedHostMemoryThatGrowsOnDemand) {
  Device& cpu = Context::global().cpu();
  PinnedHostBuffer buffer;
  EXPECT_EQ(buffer.size(), 0u);
  buffer.reserve(cpu, 10000);
  ASSERT_NE(buffer.data(), nullptr);
  EXPECT_GE(buffer.size(), 10000u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(buffer.data()) % 4096, 0u);
  EXPECT_FALSE(buffer.pinned());
  std::memset(buffer.data(), 7, buffer.size());
  char* first = buffer.data();
  buffer.reserve(cpu, 5000);
  EXPECT_EQ(buffer.data(), first) << "a smaller request keeps the memory";
  buffer.reserve(cpu, 1 << 20);
  EXPECT_GE(buffer.size(), size_t{1} << 20);
  std::memset(buffer.data(), 7, buffer.size());
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

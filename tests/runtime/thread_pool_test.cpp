// ThreadPool: every item of every grid runs exactly once, whether the workers are still spinning
// from the last grid (grids back to back) or asleep (grids further apart than the spin), a body's
// exception reaches the caller and leaves the pool usable, and a pool is destroyed promptly in
// either state.
#include "runtime/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

namespace switchyard {
namespace {

// Runs `grids` grids of `count` items, pausing `gap` between them; true when every item of every
// grid ran exactly once.
bool every_item_once(ThreadPool& pool, int grids, uint32_t count, std::chrono::microseconds gap) {
  std::vector<std::atomic<int>> runs(count);
  for (int g = 0; g < grids; ++g) {
    for (auto& r : runs) r = 0;
    pool.parallel_for(count, [&](uint32_t i) { runs[i].fetch_add(1); });
    for (const auto& r : runs)
      if (r.load() != 1) return false;
    if (gap.count() > 0) std::this_thread::sleep_for(gap);
  }
  return true;
}

TEST(ThreadPool, EveryItemRunsOnceBackToBackAndAfterSleeping) {
  ThreadPool pool(4);
  EXPECT_EQ(pool.size(), 4u);
  EXPECT_TRUE(every_item_once(pool, 2000, 7, std::chrono::microseconds(0))) << "grids back to back (spinning)";
  EXPECT_TRUE(every_item_once(pool, 20, 33, std::chrono::microseconds(2000))) << "grids after the workers slept";
  EXPECT_TRUE(every_item_once(pool, 50, 1, std::chrono::microseconds(0))) << "single-item grids";
  pool.parallel_for(0, [](uint32_t) { FAIL() << "an empty grid ran an item"; });
}

TEST(ThreadPool, ABodysExceptionReachesTheCallerAndThePoolGoesOn) {
  ThreadPool pool(3);
  std::atomic<int> ran{0};
  EXPECT_THROW(pool.parallel_for(16,
                                 [&](uint32_t i) {
                                   ran.fetch_add(1);
                                   if (i == 5) throw std::runtime_error("block 5 failed");
                                 }),
               std::runtime_error);
  EXPECT_EQ(ran.load(), 16) << "the other blocks still ran";
  EXPECT_TRUE(every_item_once(pool, 10, 9, std::chrono::microseconds(0)));
}

TEST(ThreadPool, DestroyedPromptlyWhetherSpinningOrAsleep) {
  for (int asleep : {0, 1}) {
    const auto start = std::chrono::steady_clock::now();
    {
      ThreadPool pool(4);
      pool.parallel_for(8, [](uint32_t) {});
      if (asleep) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2)) << (asleep ? "asleep" : "spinning");
  }
  ThreadPool alone(1);  // the caller only
  EXPECT_TRUE(every_item_once(alone, 3, 5, std::chrono::microseconds(0)));
}

}  // namespace
}  // namespace switchyard

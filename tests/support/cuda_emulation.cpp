#include "tests/support/cuda_emulation.h"

#include <ucontext.h>

#include <exception>
#include <vector>

#include "core/error.h"

namespace switchyard::emulation {

dim3 thread_index;
dim3 block_index;
dim3 block_dim;
dim3 grid_dim;

namespace {

// Deep enough for a kernel's frame in a Debug build under the sanitizers.
constexpr size_t kFiberStackBytes = 512 * 1024;
constexpr unsigned kWarp = 32;

// Where a fiber stopped: not started yet, at the block's barrier, at its warp's rendezvous, ended.
enum class Wait { kStart, kBlock, kWarp, kDone };

struct Fiber {
  ucontext_t context{};
  std::vector<char> stack;
  Wait wait = Wait::kStart;
  uint64_t deposit = 0;  // what it passes at a warp exchange
};

struct BlockRun {
  ucontext_t scheduler{};
  std::vector<Fiber> fibers;
  unsigned current = 0;
  const std::function<void()>* kernel = nullptr;
  std::exception_ptr error;
};

BlockRun* running = nullptr;

// A fiber's entry (makecontext passes no pointer portably): returns to the scheduler through
// uc_link.
void fiber_main() {
  BlockRun& run = *running;
  const unsigned me = run.current;
  try {
    (*run.kernel)();
  } catch (...) {
    if (!run.error) run.error = std::current_exception();
  }
  run.fibers[me].wait = Wait::kDone;
}

void start_fibers(BlockRun& run) {
  for (Fiber& fiber : run.fibers) {
    fiber.wait = Wait::kStart;
    SY_INTERNAL_CHECK(getcontext(&fiber.context) == 0) << "getcontext failed";
    fiber.context.uc_stack.ss_sp = fiber.stack.data();
    fiber.context.uc_stack.ss_size = fiber.stack.size();
    fiber.context.uc_link = &run.scheduler;
    makecontext(&fiber.context, fiber_main, 0);
  }
}

// Suspends the running fiber until the scheduler finds its block or warp all there.
void suspend(Wait wait) {
  SY_INTERNAL_CHECK(running != nullptr) << "a barrier or shuffle outside an emulated launch";
  BlockRun& run = *running;
  run.fibers[run.current].wait = wait;
  SY_INTERNAL_CHECK(swapcontext(&run.fibers[run.current].context, &run.scheduler) == 0) << "swapcontext failed";
}

// Whether every fiber of [begin, end) waits as `wait`, none having ended.
bool all_wait(const BlockRun& run, unsigned begin, unsigned end, Wait wait) {
  for (unsigned t = begin; t < end; ++t)
    if (run.fibers[t].wait != wait) return false;
  return true;
}

// The fibers that may run now: unstarted ones, those at a barrier the whole block reached, those
// at a rendezvous their whole warp reached.
std::vector<bool> ready_fibers(const BlockRun& run) {
  const auto threads = static_cast<unsigned>(run.fibers.size());
  const bool block_ready = all_wait(run, 0, threads, Wait::kBlock);
  std::vector<bool> ready(threads);
  for (unsigned t = 0; t < threads; ++t) {
    const unsigned warp0 = t / kWarp * kWarp;
    switch (run.fibers[t].wait) {
      case Wait::kStart:
        ready[t] = true;
        break;
      case Wait::kBlock:
        ready[t] = block_ready;
        break;
      case Wait::kWarp:
        ready[t] = all_wait(run, warp0, std::min(warp0 + kWarp, threads), Wait::kWarp);
        break;
      case Wait::kDone:
        break;
    }
  }
  return ready;
}

// Runs the block's fibers to their ends; false when some wait where the others cannot follow.
bool run_block(BlockRun& run) {
  const auto threads = static_cast<unsigned>(run.fibers.size());
  for (bool backwards = false;; backwards = !backwards) {
    const std::vector<bool> ready = ready_fibers(run);
    if (std::find(ready.begin(), ready.end(), true) == ready.end()) return all_wait(run, 0, threads, Wait::kDone);
    for (unsigned i = 0; i < threads; ++i) {
      const unsigned t = backwards ? threads - 1 - i : i;
      if (!ready[t]) continue;
      run.current = t;
      thread_index = dim3{t, 0, 0};
      SY_INTERNAL_CHECK(swapcontext(&run.scheduler, &run.fibers[t].context) == 0) << "swapcontext failed";
      if (run.error) return true;  // the others are abandoned where they wait: a kernel holds no resources
    }
  }
}

}  // namespace

void syncthreads() {
  suspend(Wait::kBlock);
}

uint64_t warp_exchange(uint64_t bits, int source_lane) {
  BlockRun& run = *running;
  const unsigned me = run.current, warp0 = me / kWarp * kWarp;
  run.fibers[me].deposit = bits;
  suspend(Wait::kWarp);  // every lane has deposited
  const bool inside = source_lane >= 0 && source_lane < static_cast<int>(kWarp) &&
                      warp0 + static_cast<unsigned>(source_lane) < run.fibers.size();
  const uint64_t got = inside ? run.fibers[warp0 + static_cast<unsigned>(source_lane)].deposit : bits;
  suspend(Wait::kWarp);  // every lane has read before any deposits again
  return got;
}

void check_full_warp(unsigned mask, int width) {
  SY_CHECK(mask == 0xffffffffu && width == static_cast<int>(kWarp))
      << "emulated shuffle: mask " << mask << ", width " << width << "; only full warps are emulated";
}

void launch(unsigned grid, unsigned block_threads, const std::function<void()>& kernel) {
  SY_CHECK(block_threads > 0 && block_threads <= 1024) << "emulated launch: " << block_threads << " threads a block";
  BlockRun run;
  run.kernel = &kernel;
  run.fibers.resize(block_threads);
  for (Fiber& fiber : run.fibers) fiber.stack.resize(kFiberStackBytes);
  running = &run;
  struct Reset {
    ~Reset() { running = nullptr; }
  } reset;
  block_dim = dim3{block_threads, 1, 1};
  grid_dim = dim3{grid, 1, 1};
  for (unsigned b = 0; b < grid && !run.error; ++b) {
    block_index = dim3{b, 0, 0};
    start_fibers(run);
    const bool ended = run_block(run);
    SY_CHECK(ended || run.error) << "emulated block " << b
                                 << ": some threads returned or wait elsewhere while others wait at __syncthreads "
                                    "or a shuffle";
  }
  if (run.error) std::rethrow_exception(run.error);
}

void launch(const LaunchConfig& config, const std::function<void()>& kernel) {
  SY_CHECK(config.shared_bytes == 0) << "emulated launch: " << config.shared_bytes
                                     << " bytes of dynamic shared memory; the emulator provides none";
  launch(config.grid, config.block, kernel);
}

}  // namespace switchyard::emulation

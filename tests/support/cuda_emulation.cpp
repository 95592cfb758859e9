#include "tests/support/cuda_emulation.h"

#include <ucontext.h>

#include <exception>
#include <vector>

#include "core/error.h"

namespace switchyard::emulation {

dim3 thread_index;
dim3 block_index;

namespace {

// Deep enough for a kernel's frame in a Debug build under the sanitizers.
constexpr size_t kFiberStackBytes = 512 * 1024;

struct Fiber {
  ucontext_t context{};
  std::vector<char> stack;
  bool done = false;
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
  run.fibers[me].done = true;
}

void start_fibers(BlockRun& run) {
  for (Fiber& fiber : run.fibers) {
    fiber.done = false;
    SY_INTERNAL_CHECK(getcontext(&fiber.context) == 0) << "getcontext failed";
    fiber.context.uc_stack.ss_sp = fiber.stack.data();
    fiber.context.uc_stack.ss_size = fiber.stack.size();
    fiber.context.uc_link = &run.scheduler;
    makecontext(&fiber.context, fiber_main, 0);
  }
}

// Runs every unfinished fiber up to its next barrier or its end; true when all have ended or one
// threw (the others are abandoned where they wait: a kernel holds no resources).
bool run_phase(BlockRun& run, bool backwards) {
  const auto threads = static_cast<unsigned>(run.fibers.size());
  for (unsigned i = 0; i < threads; ++i) {
    const unsigned t = backwards ? threads - 1 - i : i;
    if (run.fibers[t].done) continue;
    run.current = t;
    thread_index = dim3{t, 0, 0};
    SY_INTERNAL_CHECK(swapcontext(&run.scheduler, &run.fibers[t].context) == 0) << "swapcontext failed";
  }
  if (run.error) return true;
  unsigned ended = 0;
  for (const Fiber& fiber : run.fibers) ended += fiber.done;
  SY_CHECK(ended == 0 || ended == threads) << "emulated block " << block_index.x << ": " << ended << " of " << threads
                                           << " threads returned while the others wait at __syncthreads";
  return ended == threads;
}

}  // namespace

void syncthreads() {
  SY_INTERNAL_CHECK(running != nullptr) << "__syncthreads outside an emulated launch";
  BlockRun& run = *running;
  SY_INTERNAL_CHECK(swapcontext(&run.fibers[run.current].context, &run.scheduler) == 0) << "swapcontext failed";
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
  for (unsigned b = 0; b < grid && !run.error; ++b) {
    block_index = dim3{b, 0, 0};
    start_fibers(run);
    for (bool backwards = false; !run_phase(run, backwards); backwards = !backwards) {
    }
  }
  if (run.error) std::rethrow_exception(run.error);
}

}  // namespace switchyard::emulation

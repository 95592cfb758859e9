#include "tests/support/cuda_emulation.h"

#include <ucontext.h>

#include <array>
#include <exception>
#include <random>
#include <vector>

#include "core/error.h"

// The executable's data and bss (glibc and the GNU linker define them): where the emulated
// kernels' `static` __shared__ arrays live.
extern "C" char __data_start[], _end[];

namespace switchyard::emulation {

dim3 thread_index;
dim3 block_index;
dim3 block_dim;
dim3 grid_dim;

namespace {

// Deep enough for a kernel's frame in a Debug build under the sanitizers.
constexpr size_t kFiberStackBytes = 512 * 1024;
constexpr unsigned kWarp = 32;

// Where a fiber stopped: not started yet, at the block's barrier, at its warp's rendezvous, at a
// named barrier, spinning on a condition (runnable again at once), ended.
enum class Wait { kStart, kBlock, kWarp, kNamed, kSpin, kDone };

// How a block's run ended: every fiber done, some stuck at a barrier the others cannot reach, or
// every runnable fiber spinning with nothing changing.
enum class BlockEnd { kDone, kStuck, kDeadlock };

// The shared-memory window: 18 bits of address (what a wgmma descriptor holds), dynamic shared
// memory after 16 bytes of (imagined) static shared memory, so kernels must align it themselves.
constexpr size_t kWindowBytes = 256 * 1024;
constexpr size_t kWindowAlign = 1024;
constexpr size_t kDynamicOffset = 16;
// The tag of a static __shared__ array's address (an offset into the executable's data and bss,
// where the emulation's `static` arrays live); window offsets stay below it.
constexpr unsigned kStaticShared = 0x80000000u;

struct Fiber {
  ucontext_t context{};
  std::vector<char> stack;
  Wait wait = Wait::kStart;
  uint64_t deposit = 0;                          // what it passes at a warp exchange
  unsigned sit_out = 0;                          // rounds a spinning fiber lets pass before it runs again
  unsigned barrier_id = 0, barrier_threads = 0;  // the named barrier it waits at
};

struct BlockRun {
  ucontext_t scheduler{};
  std::vector<Fiber> fibers;
  unsigned current = 0;
  const std::function<void()>* kernel = nullptr;
  std::exception_ptr error;
  std::vector<std::function<void()>> end_checks;  // at_block_end's, for the running block
};

BlockRun* running = nullptr;
uint64_t progress_events = 0;
uint64_t blocks_run = 0;

struct SharedWindow {
  std::vector<unsigned char> storage = std::vector<unsigned char>(kWindowBytes + kWindowAlign);
  unsigned char* base() {
    const auto address = reinterpret_cast<uintptr_t>(storage.data());
    return storage.data() + (kWindowAlign - address % kWindowAlign) % kWindowAlign;
  }
};
SharedWindow& shared_window() {
  static SharedWindow window;
  return window;
}
unsigned dynamic_bytes = 0;

// Garbage, different for each block, where the block's dynamic shared memory is.
void fill_dynamic_shared(uint64_t seed) {
  unsigned char* bytes = shared_window().base() + kDynamicOffset;
  uint64_t state = seed * 0x9E3779B97F4A7C15ull + 1;
  for (unsigned i = 0; i < dynamic_bytes; ++i) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    bytes[i] = static_cast<unsigned char>(state >> 56);
  }
}

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

// Which named barriers have all their threads waiting (more than that is an error: a GPU would
// mix its phases).
std::array<bool, 16> full_named_barriers(const BlockRun& run) {
  std::array<unsigned, 16> waiting{};
  for (const Fiber& fiber : run.fibers)
    if (fiber.wait == Wait::kNamed) ++waiting[fiber.barrier_id];
  std::array<bool, 16> full{};
  for (const Fiber& fiber : run.fibers) {
    if (fiber.wait != Wait::kNamed) continue;
    SY_CHECK(waiting[fiber.barrier_id] <= fiber.barrier_threads)
        << "emulated named barrier " << fiber.barrier_id << ": " << waiting[fiber.barrier_id] << " threads wait for "
        << fiber.barrier_threads;
    full[fiber.barrier_id] = waiting[fiber.barrier_id] == fiber.barrier_threads;
  }
  return full;
}

// The fibers that may run now: unstarted ones, those at a barrier the whole block reached, those
// at a rendezvous their whole warp reached.
std::vector<bool> ready_fibers(const BlockRun& run) {
  const auto threads = static_cast<unsigned>(run.fibers.size());
  const bool block_ready = all_wait(run, 0, threads, Wait::kBlock);
  const std::array<bool, 16> named_full = full_named_barriers(run);
  std::vector<bool> ready(threads);
  for (unsigned t = 0; t < threads; ++t) {
    const unsigned warp0 = t / kWarp * kWarp;
    switch (run.fibers[t].wait) {
      case Wait::kStart:
      case Wait::kSpin:
        ready[t] = true;
        break;
      case Wait::kBlock:
        ready[t] = block_ready;
        break;
      case Wait::kWarp:
        ready[t] = all_wait(run, warp0, std::min(warp0 + kWarp, threads), Wait::kWarp);
        break;
      case Wait::kNamed:
        ready[t] = named_full[run.fibers[t].barrier_id];
        break;
      case Wait::kDone:
        break;
    }
  }
  return ready;
}

// Runs the block's fibers to their ends, or until they cannot go on. Each round runs the ready
// fibers in a new order (first to last, last to first, then shuffled, from a seed per block), and
// from the third round on a spinning fiber sits a round out at random, as a lagging warp would
// (and sits out the rounds it asked for):
// a thread relying on an order that no barrier or mbarrier gives sees it broken in some round.
// Rounds in which only spinning fibers ran and nothing changed are counted: past kIdleRounds of
// them in a row (every spinner ran in some of them, but for a chance of 2^-kIdleRounds), deadlock.
BlockEnd run_block(BlockRun& run) {
  constexpr int kIdleRounds = 64;
  const auto threads = static_cast<unsigned>(run.fibers.size());
  std::vector<unsigned> order(threads);
  std::mt19937 random(static_cast<unsigned>(blocks_run));
  int idle_rounds = 0;
  for (unsigned round = 0;; ++round) {
    const std::vector<bool> ready = ready_fibers(run);
    if (std::find(ready.begin(), ready.end(), true) == ready.end())
      return all_wait(run, 0, threads, Wait::kDone) ? BlockEnd::kDone : BlockEnd::kStuck;
    for (unsigned i = 0; i < threads; ++i) order[i] = round == 1 ? threads - 1 - i : i;
    if (round > 1) std::shuffle(order.begin(), order.end(), random);
    const uint64_t progress_before = progress_events;
    bool only_spinning = true;
    for (const unsigned t : order) {
      if (!ready[t]) continue;
      Fiber& fiber = run.fibers[t];
      const bool spinning = fiber.wait == Wait::kSpin;
      if (spinning && fiber.sit_out > 0) {
        --fiber.sit_out;
        continue;
      }
      if (spinning && round > 1 && (random() & 1u) != 0) continue;
      only_spinning = only_spinning && spinning;
      run.current = t;
      thread_index = dim3{t, 0, 0};
      SY_INTERNAL_CHECK(swapcontext(&run.scheduler, &run.fibers[t].context) == 0) << "swapcontext failed";
      if (run.error) return BlockEnd::kDone;  // the others are abandoned where they wait: a kernel holds no resources
      only_spinning = only_spinning && run.fibers[t].wait == Wait::kSpin;
    }
    const bool idle = only_spinning && progress_events == progress_before;
    idle_rounds = idle ? idle_rounds + 1 : 0;
    if (idle_rounds > kIdleRounds) return BlockEnd::kDeadlock;
  }
}

}  // namespace

void syncthreads() {
  suspend(Wait::kBlock);
}

void spin(unsigned sit_out_rounds) {
  running->fibers[running->current].sit_out = sit_out_rounds;
  suspend(Wait::kSpin);
}

void note_progress() {
  ++progress_events;
}

uint64_t block_serial() {
  return blocks_run;
}

void at_block_end(std::function<void()> check) {
  SY_INTERNAL_CHECK(running != nullptr) << "at_block_end outside an emulated launch";
  running->end_checks.push_back(std::move(check));
}

unsigned char* dynamic_shared_memory() {
  SY_INTERNAL_CHECK(running != nullptr) << "dynamic shared memory outside an emulated launch";
  SY_CHECK(dynamic_bytes > 0) << "emulated kernel: dynamic shared memory used by a launch of 0 bytes";
  return shared_window().base() + kDynamicOffset;
}

unsigned shared_window_offset(const void* pointer) {
  const auto* byte = static_cast<const unsigned char*>(pointer);
  const unsigned char* base = shared_window().base();
  SY_CHECK(running != nullptr) << "emulated shared address of " << pointer << " outside an emulated launch";
  if (byte >= base + kDynamicOffset && byte < base + kDynamicOffset + dynamic_bytes)
    return static_cast<unsigned>(byte - base);
  const auto* data = reinterpret_cast<const unsigned char*>(__data_start);
  SY_CHECK(byte >= data && byte < reinterpret_cast<const unsigned char*>(_end) &&
           static_cast<size_t>(byte - data) < kStaticShared)
      << "emulated shared address of " << pointer << ": neither in the block's " << dynamic_bytes
      << " bytes of dynamic shared memory nor a static __shared__ array";
  return kStaticShared | static_cast<unsigned>(byte - data);
}

unsigned char* shared_window_pointer(unsigned offset) {
  if ((offset & kStaticShared) != 0) {
    auto* byte = reinterpret_cast<unsigned char*>(__data_start) + (offset & ~kStaticShared);
    SY_CHECK(byte < reinterpret_cast<unsigned char*>(_end))
        << "emulated shared address " << offset << ": past the static __shared__ arrays";
    return byte;
  }
  SY_CHECK(offset >= kDynamicOffset && offset < kDynamicOffset + dynamic_bytes)
      << "emulated shared address " << offset << ": outside the block's " << dynamic_bytes
      << " bytes of dynamic shared memory at " << kDynamicOffset;
  return shared_window().base() + offset;
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

void warp_sync() {
  suspend(Wait::kWarp);
}

void warp_gather(const void* mine, size_t bytes, void* all) {
  BlockRun& run = *running;
  const unsigned me = run.current, warp0 = me / kWarp * kWarp;
  SY_CHECK(warp0 + kWarp <= run.fibers.size()) << "emulated warp-wide instruction in a partial warp";
  run.fibers[me].deposit = reinterpret_cast<uint64_t>(mine);  // on its fiber's stack until the lane returns
  suspend(Wait::kWarp);                                       // every lane has deposited
  for (unsigned lane = 0; lane < kWarp; ++lane)
    std::memcpy(static_cast<unsigned char*>(all) + lane * bytes,
                reinterpret_cast<const void*>(run.fibers[warp0 + lane].deposit), bytes);
  suspend(Wait::kWarp);  // every lane has read before any returns
}

void named_barrier(unsigned id, unsigned threads) {
  SY_CHECK(id >= 1 && id < 16 && threads % kWarp == 0 && threads <= block_dim.x)
      << "emulated bar.sync " << id << ", " << threads << ": ids 1-15 (0 is __syncthreads), whole warps of the block";
  Fiber& fiber = running->fibers[running->current];
  fiber.barrier_id = id;
  fiber.barrier_threads = threads;
  suspend(Wait::kNamed);
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
    ++blocks_run;
    fill_dynamic_shared(blocks_run);
    run.end_checks.clear();
    start_fibers(run);
    const BlockEnd end = run_block(run);
    SY_CHECK(end != BlockEnd::kStuck) << "emulated block " << b
                                      << ": some threads returned or wait elsewhere while others wait at "
                                         "__syncthreads or a shuffle";
    SY_CHECK(end != BlockEnd::kDeadlock) << "emulated block " << b
                                         << ": deadlock, every thread that can run spins (an mbarrier wait) and "
                                            "nothing changes";
    if (!run.error)
      for (const auto& check : run.end_checks) check();
  }
  if (run.error) std::rethrow_exception(run.error);
}

void launch(const LaunchConfig& config, const std::function<void()>& kernel) {
  SY_CHECK(config.shared_bytes <= kMaxDynamicSharedBytes)
      << "emulated launch: " << config.shared_bytes << " bytes of dynamic shared memory; a block has at most "
      << kMaxDynamicSharedBytes;
  dynamic_bytes = config.shared_bytes;
  struct Reset {
    ~Reset() { dynamic_bytes = 0; }
  } reset;
  launch(config.grid, config.block, kernel);
}

}  // namespace switchyard::emulation

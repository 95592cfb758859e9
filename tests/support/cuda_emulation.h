// The CUDA templates run on the host, so that CI machines without a GPU check what the kernels
// compute and not only that they compile. Each block's threads are fibers on the calling thread
// that switch at __syncthreads and at warp shuffles; a fiber resumes once its whole block (or
// warp) waits there, and each round runs the ready fibers in a new order (first to last, last to
// first, then shuffled), so that a thread reading another's shared-memory writes without a
// barrier between them reads stale data in some round. A thread may also spin (an mbarrier
// wait): it yields, and resumes at the next round; a round in which every runnable thread spins
// and nothing changed is a deadlock, reported as an error. Dynamic shared memory sits in a
// 1024-byte aligned window (at an offset, as after a kernel's static shared memory), filled with
// garbage before each block. The tensor-core primitives are in mma_emulation.h (cp.async,
// ldmatrix, mma.sync) and hopper_emulation.h (TMA, mbarriers, wgmma). Include it before any
// template.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <vector>

#include "jit/launch_config.h"

// The templates leave out their inline PTX, which the emulation's headers replace.
#define SY_CUDA_EMULATION 1

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
};

namespace switchyard::emulation {

extern dim3 thread_index;
extern dim3 block_index;
extern dim3 block_dim;
extern dim3 grid_dim;

/// The barrier of the running block (only inside launch()).
void syncthreads();

/// Lets the other threads of the block run: the calling thread polls a condition they change.
/// It resumes after at least `sit_out_rounds` rounds of the others (a thread that lags behind).
void spin(unsigned sit_out_rounds = 0);

/// Something a spinning thread may be waiting for changed (an mbarrier's state, a passed wait).
void note_progress();

/// Counts the blocks run so far: state kept per block (mbarriers, pending wgmma) starts afresh
/// where it changes.
uint64_t block_serial();

/// Runs `check` once the running block's threads have all returned (before the next block): what
/// must be true when a block ends (no asynchronous copy still reading its shared memory). It
/// throws switchyard::Error to fail the launch.
void at_block_end(std::function<void()> check);

/// The running block's `State` (one per type), made afresh when a block starts; `check` runs on it
/// once the block's threads have all returned (what must hold when a block ends).
template <typename State>
State& per_block(void (*check)(const State&)) {
  static uint64_t serial = 0;
  static State state;
  if (serial != block_serial()) {
    state = State{};
    serial = block_serial();
    at_block_end([check] { check(state); });
  }
  return state;
}

/// A thread's asynchronous operations (cp.async copies, wgmma, TMA stores), run only when it
/// waits for their group, as late as a GPU may: the open group, then the committed ones, oldest first.
struct AsyncGroups {
  std::vector<std::function<void()>> open;
  std::deque<std::vector<std::function<void()>>> committed;

  void commit() {
    committed.push_back(std::move(open));
    open.clear();
  }
  /// Runs the oldest committed groups until at most `pending` remain.
  void wait(int pending) {
    while (static_cast<int>(committed.size()) > pending) {
      for (const auto& operation : committed.front()) operation();
      committed.pop_front();
    }
  }
  bool idle() const { return open.empty() && committed.empty(); }
};

/// The running block's dynamic shared memory (the launch config's shared_bytes).
unsigned char* dynamic_shared_memory();

/// The shared-memory address of `pointer` (what cvta.to.shared gives): its offset in the block's
/// dynamic shared memory window, or, for a kernel's static __shared__ arrays (static storage
/// here), a tagged offset into the executable's data; and the pointer of such an address. Any
/// other pointer (global memory) is an error.
unsigned shared_window_offset(const void* pointer);
unsigned char* shared_window_pointer(unsigned offset);

/// Every lane of the calling thread's warp exchanges `bits`: returns what lane `source_lane` of
/// the warp passed (its own where the source is outside the warp). Full warps only.
uint64_t warp_exchange(uint64_t bits, int source_lane);

/// Waits until every lane of the calling thread's warp is here (what a .sync.aligned instruction
/// implies). Full warps only.
void warp_sync();

/// A warp-wide exchange of `bytes` from each lane (a .sync.aligned instruction's operands): every
/// lane gets all 32 lanes' `mine`, lane by lane, in `all` (32 x bytes). Full warps only.
void warp_gather(const void* mine, size_t bytes, void* all);

/// bar.sync id, threads: waits until `threads` threads of the block wait at barrier `id`.
void named_barrier(unsigned id, unsigned threads);

/// Runs `kernel` as every thread of `grid` blocks of `block_threads` threads, block after block.
/// Throws switchyard::Error where some threads of a block returned while others wait at a
/// barrier or shuffle (undefined on a GPU), or where the kernel threw.
void launch(unsigned grid, unsigned block_threads, const std::function<void()>& kernel);

/// The same with a family's launch config: grid, block and dynamic shared memory (at most
/// kMaxDynamicSharedBytes, the H100/H200's 227 KB).
void launch(const LaunchConfig& config, const std::function<void()>& kernel);
constexpr unsigned kMaxDynamicSharedBytes = 227 * 1024;

template <typename T>
T shuffle(T value, int source_lane) {
  static_assert(sizeof(T) <= sizeof(uint64_t), "shuffle: at most 8 bytes");
  uint64_t bits = 0;
  std::memcpy(&bits, &value, sizeof(T));
  bits = warp_exchange(bits, source_lane);
  std::memcpy(&value, &bits, sizeof(T));
  return value;
}
void check_full_warp(unsigned mask, int width);

}  // namespace switchyard::emulation

#define threadIdx (::switchyard::emulation::thread_index)
#define blockIdx (::switchyard::emulation::block_index)
#define blockDim (::switchyard::emulation::block_dim)
#define gridDim (::switchyard::emulation::grid_dim)
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __grid_constant__
// One block runs at a time, so a block's shared memory is the kernel's static storage.
#define __shared__ static
#define __syncthreads() ::switchyard::emulation::syncthreads()

template <typename T>
T __shfl_sync(unsigned mask, T value, int lane, int width = 32) {
  ::switchyard::emulation::check_full_warp(mask, width);
  return ::switchyard::emulation::shuffle(value, lane & 31);
}
template <typename T>
T __shfl_up_sync(unsigned mask, T value, unsigned delta, int width = 32) {
  ::switchyard::emulation::check_full_warp(mask, width);
  const int lane = static_cast<int>(threadIdx.x % 32);
  return ::switchyard::emulation::shuffle(value, lane - static_cast<int>(delta));
}
template <typename T>
T __shfl_down_sync(unsigned mask, T value, unsigned delta, int width = 32) {
  ::switchyard::emulation::check_full_warp(mask, width);
  const int lane = static_cast<int>(threadIdx.x % 32);
  return ::switchyard::emulation::shuffle(value, lane + static_cast<int>(delta));
}
template <typename T>
T __shfl_xor_sync(unsigned mask, T value, int lane_mask, int width = 32) {
  ::switchyard::emulation::check_full_warp(mask, width);
  return ::switchyard::emulation::shuffle(value, static_cast<int>(threadIdx.x % 32) ^ lane_mask);
}

inline int min(int a, int b) {
  return std::min(a, b);
}
inline int max(int a, int b) {
  return std::max(a, b);
}
inline float __uint_as_float(unsigned bits) {
  return std::bit_cast<float>(bits);
}
inline float __int_as_float(int bits) {
  return std::bit_cast<float>(bits);
}
inline double __longlong_as_double(long long bits) {
  return std::bit_cast<double>(bits);
}
inline unsigned __float_as_uint(float f) {
  return std::bit_cast<unsigned>(f);
}
inline float __expf(float x) {
  return std::exp(x);
}
inline float __double2float_rn(double d) {
  return static_cast<float>(d);
}
inline float __double2float_rz(double d) {
  const float nearest = static_cast<float>(d);
  return std::fabs(static_cast<double>(nearest)) > std::fabs(d) ? std::nextafter(nearest, 0.0f) : nearest;
}

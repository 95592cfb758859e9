// How a kernel is launched, as each kernel family's launch_config computes it from a spec and a
// problem: the same shape on the CPU (blocks of the grid run across the thread pool) and CUDA.
#pragma once

#include <algorithm>
#include <cstdint>

namespace switchyard {

struct LaunchConfig {
  unsigned grid = 1;   // blocks (x only: every Switchyard kernel uses a 1-D grid)
  unsigned block = 1;  // threads per block (CUDA); ignored on the CPU
  unsigned shared_bytes = 0;
};

/// CUDA: a thread per item, in blocks of `block` threads.
inline LaunchConfig thread_per_item(int64_t items, unsigned block) {
  return {static_cast<unsigned>((items + block - 1) / block), block, 0};
}

/// CPU: a block per `grain` items (at least one block, at most `max_blocks`).
inline LaunchConfig cpu_blocks(int64_t items, int64_t grain, int64_t max_blocks) {
  return {static_cast<unsigned>(std::clamp<int64_t>(items / grain, 1, std::max<int64_t>(max_blocks, 1))), 1, 0};
}

}  // namespace switchyard

// How a kernel is launched, as each kernel family's launch_config computes it from a spec and a
// problem: the same shape on the CPU (blocks of the grid run across the thread pool) and CUDA.
#pragma once

namespace switchyard {

struct LaunchConfig {
  unsigned grid = 1;   // blocks (x only: every Switchyard kernel uses a 1-D grid)
  unsigned block = 1;  // threads per block (CUDA); ignored on the CPU
  unsigned shared_bytes = 0;
};

}  // namespace switchyard

// Launch-shape rules shared by the host (to size the grid) and the CUDA templates (to lay out
// threads), so the two can never disagree.
#pragma once

#include <switchyard/common/macros.h>

namespace switchyard {
namespace kernels {

constexpr int kDispatchThreadsPerBlock = 128;

// Threads that cooperate on one token row of `model_dim / vec` packs: the next power of two,
// capped at the block size.
SY_HOST_DEVICE constexpr int dispatch_threads_per_token(int model_dim, int vec) {
  int packs = model_dim / vec;
  int threads = 1;
  while (threads < packs && threads < kDispatchThreadsPerBlock) threads *= 2;
  return threads;
}

SY_HOST_DEVICE constexpr int dispatch_tokens_per_block(int model_dim, int vec) {
  return kDispatchThreadsPerBlock / dispatch_threads_per_token(model_dim, vec);
}

}  // namespace kernels
}  // namespace switchyard

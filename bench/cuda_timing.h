// Timing on a CUDA device for the GPU benchmarks: every call is followed by a synchronization of
// the whole context, because cuBLAS runs on its own stream, which synchronizing the device's
// compute stream would not wait for.
#pragma once

#include <algorithm>
#include <chrono>
#include <vector>

#include "runtime/cuda_driver.h"

namespace switchyard::bench {

/// Median seconds of `body` over `reps` synchronized calls, after one warm-up call.
template <typename F>
double median_cuda_seconds(int reps, F body) {
  const CudaDriver& driver = CudaDriver::get();
  body();
  cuda_check(driver.cuCtxSynchronize(), "cuCtxSynchronize");
  std::vector<double> times;
  for (int i = 0; i < reps; ++i) {
    const auto start = std::chrono::steady_clock::now();
    body();
    cuda_check(driver.cuCtxSynchronize(), "cuCtxSynchronize");
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace switchyard::bench

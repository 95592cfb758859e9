// The CUDA templates run on the host, so that CI machines without a GPU check what the kernels
// compute and not only that they compile. Each block's threads are fibers on the calling thread
// that switch at __syncthreads; between two barriers they run in turn, in an order that alternates
// (first to last, then last to first), so that a thread reading another's shared-memory writes
// without a barrier between them reads stale data in one of the two orders. Only what the SIMT
// templates use is here: no warp shuffles, atomics or inline PTX (the tensor-core kernels are
// checked on a GPU, by scripts/device-check). Include it before any template.
#pragma once

#include <cmath>
#include <cstring>
#include <functional>

struct dim3 {
  unsigned x = 0, y = 0, z = 0;
};

namespace switchyard::emulation {

extern dim3 thread_index;
extern dim3 block_index;

/// The barrier of the running block (only inside launch()).
void syncthreads();

/// Runs `kernel` as every thread of `grid` blocks of `block_threads` threads, block after block.
/// Throws switchyard::Error where some threads of a block returned while others wait at a
/// barrier (undefined on a GPU), or where the kernel threw.
void launch(unsigned grid, unsigned block_threads, const std::function<void()>& kernel);

}  // namespace switchyard::emulation

#define threadIdx (::switchyard::emulation::thread_index)
#define blockIdx (::switchyard::emulation::block_index)
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
// One block runs at a time, so a block's shared memory is the kernel's static storage.
#define __shared__ static
#define __syncthreads() ::switchyard::emulation::syncthreads()

inline float __uint_as_float(unsigned bits) {
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}
inline unsigned __float_as_uint(float f) {
  unsigned bits;
  std::memcpy(&bits, &f, sizeof bits);
  return bits;
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

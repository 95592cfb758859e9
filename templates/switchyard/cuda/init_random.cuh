// Counter-based parameter initialization on CUDA (the generator is common/init_args.h): the
// same bits as the CPU, rounded once from double to the dtype (nearest even).
#pragma once

#include <switchyard/common/init_args.h>
#include <switchyard/cuda/types.cuh>

namespace switchyard {
namespace cuda {

template <typename T>
__global__ void __launch_bounds__(256) init_random(kernels::InitArgs args) {
  const long stride = static_cast<long>(gridDim.x) * blockDim.x;
  for (long i = static_cast<long>(blockIdx.x) * blockDim.x + threadIdx.x; i < args.count; i += stride)
    static_cast<T*>(args.out)[i] = from_double<T>(kernels::init_value(args, args.first + i));
}

}  // namespace cuda
}  // namespace switchyard

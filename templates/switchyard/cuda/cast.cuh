// Element-wise dtype conversion on CUDA through fp32 (e.g. the fp32 gate of a half layer).
#pragma once

#include <switchyard/common/cast_args.h>
#include <switchyard/cuda/types.cuh>

namespace switchyard {
namespace cuda {

template <typename From, typename To>
__global__ void __launch_bounds__(256) cast(kernels::CastArgs args) {
  const long i = static_cast<long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < args.count)
    static_cast<To*>(args.output)[i] = from_float<To>(to_float(static_cast<const From*>(args.input)[i]));
}

}  // namespace cuda
}  // namespace switchyard

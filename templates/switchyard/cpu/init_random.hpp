// Counter-based parameter initialization on the CPU (the generator is common/init_args.h).
#pragma once

#include <switchyard/common/init_args.h>
#include <switchyard/cpu/types.hpp>

namespace switchyard {
namespace cpu {

template <typename T>
void init_random(const kernels::InitArgs& args, unsigned block, unsigned grid) {
  T* __restrict out = static_cast<T*>(args.out);
  const long begin = args.count * block / grid, end = args.count * (block + 1) / grid;
  for (long i = begin; i < end; ++i) out[i] = store_double<T>(kernels::init_value(args, args.first + i));
}

}  // namespace cpu
}  // namespace switchyard

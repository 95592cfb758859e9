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
  const unsigned long long seed = args.seed;
  const long first = args.first;
  const double scale = args.scale;
  // NOTE: one loop per distribution, so that each vectorizes: a branch on args.normal inside the
  // loop, or init_normal left out of line, kept it scalar (10-23 ns an element: 15-23 s to build
  // a Mixtral-size layer on 2 threads, now 5-6 s).
  if (args.normal == 0)
    for (long i = begin; i < end; ++i) out[i] = store_double<T>(kernels::init_uniform(seed, first + i, scale));
  else
    for (long i = begin; i < end; ++i) {
      double value;
      [[clang::always_inline]] value = kernels::init_normal(seed, first + i, scale);  // clang declines it otherwise
      out[i] = store_double<T>(value);
    }
}

}  // namespace cpu
}  // namespace switchyard

// Element-wise dtype conversion on the CPU (e.g. the fp32 gate of a float64 layer).
#pragma once

#include <switchyard/common/cast_args.h>
#include <switchyard/cpu/types.hpp>

namespace switchyard {
namespace cpu {

template <typename From, typename To>
void cast(const kernels::CastArgs& args, unsigned block, unsigned grid) {
  const From* __restrict in = static_cast<const From*>(args.input);
  To* __restrict out = static_cast<To*>(args.output);
  const long begin = args.count * block / grid, end = args.count * (block + 1) / grid;
  for (long i = begin; i < end; ++i) out[i] = store_double<To>(static_cast<double>(load(in[i])));
}

}  // namespace cpu
}  // namespace switchyard

// The gate gradient of dispatch encode (pre-score) and combine decode (post-score) on the CPU:
// dg[j, s] = keep_j(s) * <slots[e_j(s), l_j(s), :], other[s, :]> (tutel-semantics 2.3), zero
// for skipped or dropped choices. One call handles one block of the grid: a range of tokens.
#pragma once

#include <switchyard/common/dispatch_args.h>
#include <switchyard/cpu/types.hpp>

namespace switchyard {
namespace cpu {

template <typename T, int kModelDim, int kTopK, int kVec>
void gate_grad(const kernels::DispatchArgs& args, unsigned block, unsigned grid) {
  static_assert(kModelDim > 0, "gate_grad: model_dim must be positive");
  static_assert(kVec == 1, "gate_grad: the CPU template leaves vectorization to the compiler (vec=1)");
  static_assert(kTopK >= 1 && kTopK <= 4096, "gate_grad: top_k must be in [1, 4096]");
  const T* __restrict slots = static_cast<const T*>(args.input);
  const T* __restrict other = static_cast<const T*>(args.other);
  using C = compute_t<T>;  // the gradient's type: the gates' (float for 16-bit data)
  C* __restrict grad = static_cast<C*>(args.output);
  const long tokens = args.tokens;
  const long begin = tokens * block / grid;
  const long end = tokens * (block + 1) / grid;
  for (long s = begin; s < end; ++s) {
    const T* __restrict row = other + s * kModelDim;
    for (int j = 0; j < kTopK; ++j) {
      const long slot = kernels::dispatch_row(args, j, s);
      C sum = C(0);
      if (slot >= 0) {
        const T* __restrict src = slots + slot * kModelDim;
        for (int m = 0; m < kModelDim; ++m) sum += load(src[m]) * load(row[m]);
      }
      grad[j * tokens + s] = sum;
    }
  }
}

}  // namespace cpu
}  // namespace switchyard

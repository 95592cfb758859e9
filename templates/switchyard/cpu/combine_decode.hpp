// Combine decode on the CPU: gather each token's kept choices back from the expert slots.
// Out[s, :] = sum_j keep_j(s) * gamma_j(s) * Y[e_j(s), l_j(s), :], gamma = gate when kApplyGate
// (post-score mode). One call handles one block of the grid: a contiguous range of tokens.
#pragma once

#include <switchyard/common/dispatch_args.h>
#include <switchyard/cpu/types.hpp>

namespace switchyard {
namespace cpu {

template <typename T, int kModelDim, int kTopK, bool kApplyGate, int kVec>
void combine_decode(const kernels::DispatchArgs& args, unsigned block, unsigned grid) {
  static_assert(kModelDim > 0, "combine_decode: model_dim must be positive");
  static_assert(kVec == 1, "combine_decode: the CPU template leaves vectorization to the compiler (vec=1)");
  static_assert(kTopK >= 1 && kTopK <= 4096, "combine_decode: top_k must be in [1, 4096]");
  using C = compute_t<T>;  // the gates' and the sums' type (float for 16-bit data)
  const T* __restrict slots = static_cast<const T*>(args.input);
  const C* gates = static_cast<const C*>(args.gates);
  T* __restrict output = static_cast<T*>(args.output);
  const long tokens = args.tokens;
  const long begin = tokens * block / grid;
  const long end = tokens * (block + 1) / grid;
  // 16-bit outputs are summed in a float row and rounded once; float and double sum in place.
  C narrow_sum[kIsNarrow<T> ? kModelDim : 1];
  for (long s = begin; s < end; ++s) {
    C* __restrict dst = kIsNarrow<T> ? narrow_sum : reinterpret_cast<C*>(output + s * kModelDim);
    for (int m = 0; m < kModelDim; ++m) dst[m] = C(0);
    for (int j = 0; j < kTopK; ++j) {
      const long row_index = kernels::dispatch_row(args, j, s);
      if (row_index < 0) continue;
      const C gamma = kApplyGate ? gates[j * tokens + s] : C(1);
      const T* __restrict src = slots + row_index * kModelDim;
      for (int m = 0; m < kModelDim; ++m) dst[m] += gamma * load(src[m]);
    }
    if constexpr (kIsNarrow<T>)
      for (int m = 0; m < kModelDim; ++m) output[s * kModelDim + m] = store<T>(dst[m]);
  }
}

}  // namespace cpu
}  // namespace switchyard

// Dispatch encode on the CPU: scatter each kept (token, choice) row into its expert slot.
// D[e_j(s), l_j(s), :] = gamma_j(s) * X[s, :], gamma = gate when kApplyGate (pre-score mode).
// One call handles one block of the grid: a contiguous range of tokens.
#pragma once

#include <switchyard/common/dispatch_args.h>
#include <switchyard/cpu/types.hpp>

namespace switchyard {
namespace cpu {

template <typename T, int kModelDim, int kTopK, bool kApplyGate, int kVec>
void dispatch_encode(const kernels::DispatchArgs& args, unsigned block, unsigned grid) {
  static_assert(kModelDim > 0, "dispatch_encode: model_dim must be positive");
  static_assert(kVec == 1, "dispatch_encode: the CPU template leaves vectorization to the compiler (vec=1)");
  static_assert(kTopK >= 1 && kTopK <= 4096, "dispatch_encode: top_k must be in [1, 4096]");
  using C = compute_t<T>;  // the gates' type (float for 16-bit data)
  const T* __restrict input = static_cast<const T*>(args.input);
  const C* gates = static_cast<const C*>(args.gates);
  T* __restrict output = static_cast<T*>(args.output);
  const long tokens = args.tokens;
  const long begin = tokens * block / grid;
  const long end = tokens * (block + 1) / grid;
  if (args.used_rows != nullptr) {
    const long rows = static_cast<long>(args.num_experts) * args.capacity;
    for (long r = rows * block / grid; r < rows * (block + 1) / grid; ++r) {
      if (args.used_rows[r]) continue;
      T* __restrict dst = output + r * kModelDim;
      for (int m = 0; m < kModelDim; ++m) dst[m] = store<T>(C(0));
    }
  }
  for (long s = begin; s < end; ++s) {
    const T* __restrict row = input + s * kModelDim;
    for (int j = 0; j < kTopK; ++j) {
      const long row_index = kernels::dispatch_row(args, j, s);
      if (row_index < 0) continue;
      const C gamma = kApplyGate ? gates[j * tokens + s] : C(1);
      T* __restrict dst = output + row_index * kModelDim;
      for (int m = 0; m < kModelDim; ++m) dst[m] = store<T>(gamma * load(row[m]));
    }
  }
}

}  // namespace cpu
}  // namespace switchyard

// Dispatch encode on CUDA: D[e_j(s), l_j(s), :] = gamma_j(s) * X[s, :] for every kept choice.
// Each group of dispatch_threads_per_token threads moves one token row in kVec-wide packs.
// The caller zeroes D first; slots are unique by construction, so plain stores suffice.
#pragma once

#include <switchyard/common/dispatch_args.h>
#include <switchyard/common/launch_rules.h>
#include <switchyard/cuda/types.cuh>

namespace switchyard {
namespace cuda {

template <typename T, int kModelDim, int kTopK, bool kApplyGate, int kVec>
__global__ void __launch_bounds__(kernels::kDispatchThreadsPerBlock) dispatch_encode(kernels::DispatchArgs args) {
  static_assert(kModelDim > 0 && kModelDim % kVec == 0, "dispatch_encode: model_dim must be a multiple of vec");
  static_assert(kVec >= 1 && sizeof(T) * kVec <= 16, "dispatch_encode: a pack is at most 16 bytes");
  static_assert(kTopK >= 1 && kTopK <= 4096, "dispatch_encode: top_k must be in [1, 4096]");
  constexpr int kPacks = kModelDim / kVec;
  constexpr int kThreads = kernels::dispatch_threads_per_token(kModelDim, kVec);
  constexpr int kTokensPerBlock = kernels::dispatch_tokens_per_block(kModelDim, kVec);
  using P = Pack<T, kVec>;

  const int s = blockIdx.x * kTokensPerBlock + threadIdx.x / kThreads;
  const int lane = threadIdx.x % kThreads;
  if (s >= args.tokens) return;
  const P* row = reinterpret_cast<const P*>(static_cast<const T*>(args.input) + static_cast<long>(s) * kModelDim);
  const float* gates = static_cast<const float*>(args.gates);
#pragma unroll
  for (int j = 0; j < kTopK; ++j) {
    const long row_index = kernels::dispatch_row(args, j, s);
    if (row_index < 0) continue;
    P* dst = reinterpret_cast<P*>(static_cast<T*>(args.output) + row_index * kModelDim);
    if (kApplyGate) {
      const float gamma = gates[j * args.tokens + s];
      for (int p = lane; p < kPacks; p += kThreads) {
        P pack = row[p];
#pragma unroll
        for (int v = 0; v < kVec; ++v) pack.v[v] = from_float<T>(gamma * to_float(pack.v[v]));
        dst[p] = pack;
      }
    } else {
      for (int p = lane; p < kPacks; p += kThreads) dst[p] = row[p];
    }
  }
}

}  // namespace cuda
}  // namespace switchyard

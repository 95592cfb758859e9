// Combine decode on CUDA: Out[s, :] = sum_j keep_j(s) * gamma_j(s) * Y[e_j(s), l_j(s), :],
// accumulated in fp32 whatever the storage type. Same thread layout as dispatch_encode.
#pragma once

#include <switchyard/common/dispatch_args.h>
#include <switchyard/common/launch_rules.h>
#include <switchyard/cuda/types.cuh>

namespace switchyard {
namespace cuda {

template <typename T, int kModelDim, int kTopK, bool kApplyGate, int kVec>
__global__ void __launch_bounds__(kernels::kDispatchThreadsPerBlock) combine_decode(kernels::DispatchArgs args) {
  static_assert(kModelDim > 0 && kModelDim % kVec == 0, "combine_decode: model_dim must be a multiple of vec");
  static_assert(kVec >= 1 && sizeof(T) * kVec <= 16, "combine_decode: a pack is at most 16 bytes");
  static_assert(kTopK >= 1 && kTopK <= 4096, "combine_decode: top_k must be in [1, 4096]");
  constexpr int kPacks = kModelDim / kVec;
  constexpr int kThreads = kernels::dispatch_threads_per_token(kModelDim, kVec);
  constexpr int kTokensPerBlock = kernels::dispatch_tokens_per_block(kModelDim, kVec);
  using P = Pack<T, kVec>;

  const int s = blockIdx.x * kTokensPerBlock + threadIdx.x / kThreads;
  const int lane = threadIdx.x % kThreads;
  if (s >= args.tokens) return;
  const float* gates = static_cast<const float*>(args.gates);
  long rows[kTopK];
  float gammas[kTopK];
#pragma unroll
  for (int j = 0; j < kTopK; ++j) {
    rows[j] = kernels::dispatch_row(args, j, s);
    gammas[j] = kApplyGate ? gates[j * args.tokens + s] : 1.0f;
  }
  P* out = reinterpret_cast<P*>(static_cast<T*>(args.output) + static_cast<long>(s) * kModelDim);
  for (int p = lane; p < kPacks; p += kThreads) {
    float acc[kVec];
#pragma unroll
    for (int v = 0; v < kVec; ++v) acc[v] = 0.0f;
#pragma unroll
    for (int j = 0; j < kTopK; ++j) {
      if (rows[j] < 0) continue;
      const P* src = reinterpret_cast<const P*>(static_cast<const T*>(args.input) + rows[j] * kModelDim);
      const P pack = src[p];
#pragma unroll
      for (int v = 0; v < kVec; ++v) acc[v] += gammas[j] * to_float(pack.v[v]);
    }
    P result;
#pragma unroll
    for (int v = 0; v < kVec; ++v) result.v[v] = from_float<T>(acc[v]);
    out[p] = result;
  }
}

}  // namespace cuda
}  // namespace switchyard

// The gate gradient of dispatch encode (pre-score) and combine decode (post-score) on CUDA:
// dg[j, s] = keep_j(s) * <slots[e_j(s), l_j(s), :], other[s, :]> in fp32, a warp per token
// (kGateGradTokensPerBlock warps a block), lanes striding over packs of kVec elements.
#pragma once

#include <switchyard/common/dispatch_args.h>
#include <switchyard/cuda/types.cuh>

namespace switchyard {
namespace cuda {

template <typename T, int kModelDim, int kTopK, int kVec>
__global__ void __launch_bounds__(kernels::kGateGradTokensPerBlock * 32) gate_grad(kernels::DispatchArgs args) {
  static_assert(kModelDim > 0 && kModelDim % kVec == 0, "gate_grad: model_dim must be a multiple of vec");
  static_assert(kVec >= 1 && sizeof(T) * kVec <= 16, "gate_grad: a pack is at most 16 bytes");
  static_assert(kTopK >= 1 && kTopK <= 4096, "gate_grad: top_k must be in [1, 4096]");
  constexpr int kPacks = kModelDim / kVec;
  using P = Pack<T, kVec>;
  const int s = blockIdx.x * kernels::kGateGradTokensPerBlock + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (s >= args.tokens) return;  // a whole warp leaves together
  const P* row = reinterpret_cast<const P*>(static_cast<const T*>(args.other) + static_cast<long>(s) * kModelDim);
  float* grad = static_cast<float*>(args.output);
  for (int j = 0; j < kTopK; ++j) {
    const long slot = kernels::dispatch_row(args, j, s);
    float sum = 0.0f;
    if (slot >= 0) {
      const P* src = reinterpret_cast<const P*>(static_cast<const T*>(args.input) + slot * kModelDim);
      for (int p = lane; p < kPacks; p += 32) {
        const P a = src[p], b = row[p];
#pragma unroll
        for (int v = 0; v < kVec; ++v) sum += to_float(a.v[v]) * to_float(b.v[v]);
      }
    }
#pragma unroll
    for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
    if (lane == 0) grad[static_cast<long>(j) * args.tokens + s] = sum;
  }
}

}  // namespace cuda
}  // namespace switchyard

// Bias + activation epilogue shared by the CUDA GEMM kernels.
#pragma once

#include <switchyard/common/gemm_args.h>
#include <switchyard/cuda/types.cuh>

namespace switchyard {
namespace cuda {

template <int kAct>
__device__ __forceinline__ float gemm_activate(float v, float aux) {
  if (kAct == kernels::kActRelu) return fmaxf(v, 0.0f);
  if (kAct == kernels::kActGelu) return 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
  if (kAct == kernels::kActSilu) return v / (1.0f + __expf(-v));
  if (kAct == kernels::kActSwiglu) return aux / (1.0f + __expf(-aux)) * v;
  return v;
}

// Stores one output element: C[m, n] = act(v + bias[n]).
template <typename T, int kN, bool kBias, int kAct>
__device__ __forceinline__ void gemm_store(const kernels::GemmArgs& args, int batch, int m, int n, float v) {
  const long at = args.c_batch_stride * batch + static_cast<long>(m) * kN + n;
  if (kBias) v += to_float(static_cast<const T*>(args.bias)[static_cast<long>(kN) * batch + n]);
  const float aux = kAct == kernels::kActSwiglu ? to_float(static_cast<const T*>(args.aux)[at]) : 0.0f;
  static_cast<T*>(args.c)[at] = from_float<T>(gemm_activate<kAct>(v, aux));
}

}  // namespace cuda
}  // namespace switchyard

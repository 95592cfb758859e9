// The element-wise family on CUDA (see common/elementwise_args.h): a thread per output
// element, math in fp32 whatever the storage type.
#pragma once

#include <switchyard/common/elementwise_args.h>
#include <switchyard/cuda/gemm_epilogue.cuh>

namespace switchyard {
namespace cuda {

constexpr int kElementwiseThreads = 256;

__device__ __forceinline__ float silu_of(float v) {
  return v / (1.0f + __expf(-v));
}

template <typename T, int kOp, int kAct>
__global__ void __launch_bounds__(kElementwiseThreads) elementwise(kernels::ElementwiseArgs args) {
  static_assert(kOp >= kernels::kEwActivate && kOp <= kernels::kEwTranspose, "elementwise: unknown op");
  static_assert(kOp != kernels::kEwActivate || (kAct >= kernels::kActRelu && kAct <= kernels::kActSilu),
                "elementwise: activate takes relu, gelu or silu");
  const long i = static_cast<long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= args.count) return;
  const T* x = static_cast<const T*>(args.x);
  const T* y = static_cast<const T*>(args.y);
  const T* z = static_cast<const T*>(args.z);
  T* out = static_cast<T*>(args.out);
  T* out2 = static_cast<T*>(args.out2);
  if (kOp == kernels::kEwSumRows) {  // one thread per (batch, column): coalesced along columns
    const long b = i / args.cols, c = i % args.cols;
    const int rows = (args.row_counts && args.row_counts[b] < args.rows ? args.row_counts[b] : args.rows);
    float sum = 0.0f;
    for (int r = 0; r < rows; ++r) sum += to_float(x[(b * args.rows + r) * args.cols + c]);
    out[i] = from_float<T>(sum);
  }
  if (kOp == kernels::kEwActivate) out[i] = from_float<T>(gemm_activate<kAct>(to_float(x[i]), 0.0f));
  if (kOp == kernels::kEwSwiglu) out[i] = from_float<T>(silu_of(to_float(x[i])) * to_float(y[i]));
  if (kOp == kernels::kEwSwigluBackward) {
    const float gate = to_float(x[i]), grad = to_float(z[i]);
    out2[i] = from_float<T>(grad * silu_of(gate));
    out[i] = from_float<T>(gemm_activate<kernels::kActSiluGrad>(grad * to_float(y[i]), gate));
  }
  if (kOp == kernels::kEwAdd) out[i] = from_float<T>(to_float(x[i]) + to_float(y[i]));
  // NOTE: the exact product of the float scale and x (at most 48 bits: exact in double), rounded
  // once to T, as the host and the CPU template (float product, rounded once) compute it.
  if (kOp == kernels::kEwScale)
    out[i] = from_double<T>(static_cast<double>(static_cast<float>(args.scale)) * to_float(x[i]));
  if (kOp == kernels::kEwTranspose) {  // a thread per output element: coalesced writes
    const long per_matrix = static_cast<long>(args.rows) * args.cols;
    const long b = i / per_matrix, c = i % per_matrix / args.rows, r = i % args.rows;
    out[i] = x[b * per_matrix + r * args.cols + c];
  }
  if (kOp == kernels::kEwSgd) {
    const float p = to_float(out[i]);
    float step = to_float(y[i]) + static_cast<float>(args.weight_decay) * p;
    if (out2) {
      step = static_cast<float>(args.momentum) * to_float(out2[i]) + step;
      out2[i] = from_float<T>(step);
    }
    out[i] = from_float<T>(p - static_cast<float>(args.lr) * step);
  }
}

}  // namespace cuda
}  // namespace switchyard

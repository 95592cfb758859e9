// Tutel's ExampleModel loss on CUDA (switchyard/common/example_loss_args.h): a warp per token
// sums it over M in double; a block per batch row takes the softmax and the loss; the gradient
// fill is element-wise. Only the B losses go back to the host.
#pragma once

#include <switchyard/common/example_loss_args.h>
#include <switchyard/cuda/types.cuh>

namespace switchyard {
namespace cuda {

// The block's reduction of `v` (max or sum) over kLossThreads threads; every thread gets it.
template <bool kMax>
__device__ __forceinline__ double block_reduce(double v, double* scratch) {
  for (int offset = 16; offset > 0; offset /= 2) {
    const double other = __shfl_down_sync(0xffffffffu, v, offset);
    v = kMax ? (other > v ? other : v) : v + other;
  }
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  double total = scratch[0];
  for (int w = 1; w < kernels::kLossThreads / 32; ++w)
    total = kMax ? (scratch[w] > total ? scratch[w] : total) : total + scratch[w];
  __syncthreads();
  return total;
}

template <typename T, int kOp>
__global__ void __launch_bounds__(kernels::kLossThreads) example_loss(kernels::ExampleLossArgs args) {
  static_assert(kOp >= kernels::kLossLogits && kOp <= kernels::kLossGrad, "example_loss: unknown op");
  const long rows = static_cast<long>(args.batch) * args.tokens, m = args.model_dim;
  if (kOp == kernels::kLossLogits) {
    const long r = static_cast<long>(blockIdx.x) * kernels::kLossRowsPerBlock + threadIdx.x / 32;
    if (r >= rows) return;
    const T* y = static_cast<const T*>(args.y) + r * m;
    double sum = 0;
    for (long k = threadIdx.x % 32; k < m; k += 32) sum += static_cast<double>(to_float(y[k]));
    for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_down_sync(0xffffffffu, sum, offset);
    if (threadIdx.x % 32 == 0) args.logits[r] = sum;
  } else if (kOp == kernels::kLossSoftmax) {
    __shared__ double scratch[kernels::kLossThreads / 32];
    double* logits = args.logits + static_cast<long>(blockIdx.x) * args.tokens;
    double max = __longlong_as_double(static_cast<long long>(0xfff0000000000000ull));  // -inf
    for (int j = threadIdx.x; j < args.tokens; j += blockDim.x) max = logits[j] > max ? logits[j] : max;
    max = block_reduce<true>(max, scratch);
    double sum = 0;
    for (int j = threadIdx.x; j < args.tokens; j += blockDim.x) sum += exp(logits[j] - max);
    sum = block_reduce<false>(sum, scratch);
    if (threadIdx.x == 0) args.loss[blockIdx.x] = -(logits[0] - max - log(sum));
    __syncthreads();  // logits[0] is read above before it is overwritten below
    for (int j = threadIdx.x; j < args.tokens; j += blockDim.x)
      logits[j] = (exp(logits[j] - max) / sum - (j == 0 ? 1.0 : 0.0)) / args.batch;
  } else {
    const long e = static_cast<long>(blockIdx.x) * blockDim.x + threadIdx.x;
    if (e < rows * m) static_cast<T*>(args.grad)[e] = from_double<T>(args.logits[e / m]);
  }
}

}  // namespace cuda
}  // namespace switchyard
